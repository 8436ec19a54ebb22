"""Processes of the cluster: start each in a session of its own, stop each by its process id.

Every wait polls with a deadline; nothing sleeps for a fixed time."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import EnvironmentFault

log = logging.getLogger(__name__)


class ClusterFault(EnvironmentFault):
    """A component did not start or answer in time (the machine, not the data)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, every: float = 0.5, on_timeout: Callable[[], str] = lambda: ""
) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds saying what."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout()
            raise ClusterFault(
                f"timed out after {timeout:.0f} s waiting for {what}" + (f"\n{detail}" if detail else "")
            )
        time.sleep(every)


@dataclass
class Service:
    """One component: its command, environment and working folder (its "host"), and its process."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    home: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"

    def start(self) -> Service:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # a session of its own: its leader's pid is also the id of the group its children join
            self.proc = subprocess.Popen(
                list(self.argv),
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("started %s, pid %d: %s", self.name, self.proc.pid, " ".join(self.argv))
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ClusterFault(f"{self.name} exited with {self.proc.returncode}; its log {self.log}:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def session_pids(self) -> set[int]:
        """Live processes of this service's session: the service and all it started, including what took
        a process group of its own (Airflow's task processes do: `os.setpgid(0, 0)` in the supervisor)."""
        if self.proc is None:
            return set()
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.proc.pid:
                        found.add(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    pass
        return found

    def _gone(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not self.session_pids()

    def kill(self) -> None:
        """The host dies: SIGKILL to every process of this service's session at once (only those: the
        session's id is this service's pid), then wait for them to be gone."""
        if self.proc is None:
            return
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(f"{self.name} to be killed", self._gone, 30, 0.2)
        log.info("killed %s (pid %d) and its session", self.name, self.proc.pid)

    def terminate(self) -> None:
        """SIGTERM to this service's process group (a Celery worker lets its running tasks finish),
        without waiting: several services then stop side by side (`stop` waits)."""
        if self.proc is None or self._gone() or self._terminated:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self._terminated = True

    def stop(self, grace: float = 20) -> None:
        """`terminate`, then SIGKILL whatever is left of its session after `grace` seconds. Only this
        session: its id is this service's pid."""
        if self.proc is None or self._gone():
            return  # never started, or already stopped
        self.terminate()
        try:
            wait_for(f"{self.name} to stop", self._gone, grace, 0.2)
        except ClusterFault:
            self.kill()
        self.proc.wait(timeout=10)
        log.info("stopped %s (pid %d)", self.name, self.proc.pid)
