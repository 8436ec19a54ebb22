"""The warehouse held by another process (reliability issue, fault injection 5).

- An analyst's `mayorista sql` session left open must not block a publish, and its next statement
  sees the new rows.
- Another process holding an EXCLUSIVE lock on the SQLite catalog for a bounded time: the run either
  waits and succeeds once it is released, or stops with exit 2 and a message about the lock; never a
  traceback, never blaming the input."""

from __future__ import annotations

import queue
import re
import sqlite3
import subprocess
import threading
import time

import pytest

from tests.faults import support
from tests.faults.support import INPUT_BLAME, PIPELINES


class Session:
    """`mayorista sql --csv` reading statements from a pipe kept open."""

    def __init__(self, place: support.Place) -> None:
        self.proc = subprocess.Popen(
            [support.MAYORISTA, "sql", "--csv", "--warehouse", str(place.wh)],
            env=place.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=place.root,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        with self.proc.stdout:  # closed by its reader at the end, so that no pipe is left open
            for line in self.proc.stdout:
                self.lines.put(line.rstrip("\n"))

    def ask(self, statement: str, header: str, timeout: float = 120.0) -> str:
        """Send one statement and return the single value under `header`."""
        self.proc.stdin.write(statement.strip() + "\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"the session ended: {self.proc.stderr.read()}"
                continue
            seen.append(line)
            if len(seen) >= 2 and seen[-2] == header:
                return line
        raise AssertionError(f"no answer to {statement!r} within {timeout} s (saw {seen})")

    def close(self) -> tuple[int, str]:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with self.proc.stderr:
            return self.proc.returncode, self.proc.stderr.read()


def _drain(stream, into: list[str]) -> None:
    """Read a child's pipe to its end into a list, then close it (no pipe is left open)."""
    with stream:
        into.extend(stream)


PUBLISH_BOUND = 180  # seconds
PUBLISHED = "SELECT count(*) AS published FROM run_manifests WHERE status = 'published';"


def test_an_open_analyst_session_does_not_block_a_publish(place, baseline_fp, faults):
    fault = faults.inject("ncc11 publishing while an analyst session is open")
    session = Session(place)
    try:
        assert session.ask(PUBLISHED, "published") == str(len(baseline_fp.manifests))
        try:  # a whole run takes 5-60 s on a busy 2-core machine; a blocked publish would never end
            result = place.run("ncc11", timeout=PUBLISH_BOUND)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the publish did not finish within {PUBLISH_BOUND} s with a session open") from None
        assert result.returncode == 0, f"the publish failed with a session open:\n{result}"
        after = support.assert_intact(fault, baseline_fp, place, replaced=PIPELINES["ncc11"])
        # the session's next statement sees the new run
        assert session.ask(PUBLISHED, "published") == str(len(baseline_fp.manifests) + 1)
        assert session.ask("SELECT max(snapshot_id) AS latest FROM run_manifests;", "latest") == str(after.snapshot)
    finally:
        code, err = session.close()
    assert code == 0 and "Traceback" not in err, err
    fault.survived = True


@pytest.mark.parametrize("wait", [None, "2"], ids=["default-wait", "wait-2s"])
def test_an_exclusive_lock_on_the_catalog_is_waited_for_or_reported(wait, place, baseline_fp, faults):
    """Another process takes an EXCLUSIVE lock on the catalog before the run starts. By default it is
    released 5 s after the run says it is waiting for it (or 60 s after the start if it never says so):
    the run must then publish, or have stopped naming the lock. With MAYORISTA_LOCK_WAIT_S=2 the lock
    is held until the run ends: it must stop with exit 2, naming the lock."""
    fault = faults.inject(
        f"ncc11 publishing while another process holds an EXCLUSIVE lock on the catalog (lock wait {wait or 'default'})"
    )
    holder = sqlite3.connect(place.wh, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    released = False
    started = time.monotonic()
    proc, argv = place.start("ncc11", **({"MAYORISTA_LOCK_WAIT_S": wait} if wait else {}))
    out_lines: list[str] = []
    err_lines: list[str] = []
    pumps = [
        threading.Thread(target=_drain, args=(proc.stdout, out_lines), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err_lines), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    try:
        said_waiting = None
        while proc.poll() is None and time.monotonic() - started < 150:
            if wait is None:
                if said_waiting is None and any("lock" in line.lower() for line in list(err_lines)):
                    said_waiting = time.monotonic()
                if (said_waiting and time.monotonic() - said_waiting > 5) or time.monotonic() - started > 60:
                    break
            time.sleep(0.05)
        holder.execute("ROLLBACK")
        released = True
        try:
            proc.wait(timeout=support.RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pump in pumps:
            pump.join(timeout=10)
        result = support.Result(
            argv, proc.returncode, "".join(out_lines), "".join(err_lines), time.monotonic() - started
        )
    finally:
        if not released:
            holder.execute("ROLLBACK")
        holder.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in result.stderr, result
    print(
        f"exclusive lock: the run {'waited and published' if result.returncode == 0 else 'stopped'} "
        f"(exit {result.returncode}, {result.seconds:.0f} s): {support.error_text(result).strip()[:300]}"
    )
    if wait:
        assert result.returncode != 0, (
            f"the run published although the lock was held longer than it may wait:\n{result}"
        )
    if result.returncode == 0:  # it waited for the lock
        support.assert_intact(fault, baseline_fp, place, replaced=PIPELINES["ncc11"])
    else:
        support.assert_intact(fault, baseline_fp, place)
        text = support.assert_clear_failure(result, "ncc11")
        assert re.search(r"lock", text, re.I), f"the message does not mention the lock:\n{result}"
        assert "not a warehouse catalog" not in text, f"a locked catalog is called 'not a warehouse catalog':\n{result}"
        assert not INPUT_BLAME.search(text), result
    fault.survived = True
