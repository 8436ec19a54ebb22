"""A real S3 endpoint for the tests: moto's standalone server (`python -m moto.server`, from the dev
dependency moto[server]) in its own process on a free 127.0.0.1 port, started once per test module that
uses it and stopped by its process id. Its request log (one line per HTTP request) is kept, so a test
can count the GETs of an object.

The code under test sees only the standard AWS variables (`s3_env`), as it would on AWS or MinIO."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    port: int
    log: Path  # moto's request log
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "mayorista-test",
            "AWS_SECRET_ACCESS_KEY": "mayorista-test-secret",
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": "us-east-1",
        }

    def requests(self, method: str, path_part: str) -> int:
        """How many `method` requests whose path contains `path_part` the server has answered."""
        text = self.log.read_text(errors="replace")
        return sum(1 for line in text.splitlines() if f'"{method} ' in line and path_part in line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Relay:
    """A TCP relay 127.0.0.1:port -> the endpoint, which can be cut (every connection reset, new ones
    refused) and restored on the same port."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            listener, self._listener = self._listener, None
        for s in [listener, *socks]:
            if s is None:
                continue
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def start(log: Path, port: int | None = None) -> S3Server:
    port = port or free_port()
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped by its id
        )
    server = S3Server(port, log, proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{server.url}/", timeout=1).close()
            return server
        except urllib.error.HTTPError:  # it answers (an endpoint checking credentials refuses this request)
            return server
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"moto's S3 server did not start on port {port} (log: {log})")


def s3_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        pytest.skip("moto[server] is not installed (a dev dependency: `uv sync`): no S3 endpoint to test against")
    if importlib.util.find_spec("duckdb_extension_httpfs") is None or importlib.util.find_spec("s3fs") is None:
        pytest.skip("duckdb-extension-httpfs or s3fs is not installed (`uv sync`)")
    server = start(tmp_path_factory.mktemp("moto") / "requests.log")
    try:
        yield server
    finally:
        server.stop()


def make_bucket(server: S3Server) -> str:
    """A new bucket with a unique name on the server."""
    import boto3

    name = f"mayorista-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="mayorista-test",
        aws_secret_access_key="mayorista-test-secret",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)
    return name


def upload(server: S3Server, local: Path, url: str) -> None:
    """Copy a local folder (recursively) or file to s3://bucket/prefix, as a participant's upload would."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id="mayorista-test",
        aws_secret_access_key="mayorista-test-secret",
        region_name="us-east-1",
    )
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    for p in files:
        key = prefix if local.is_file() else f"{prefix}/{p.relative_to(local).as_posix()}"
        client.upload_file(str(p), bucket, key)


# the published rows two runs of the same inputs must agree on (run ids differ between runs by design)
COMPARED = {
    "ncc11_energy": "SELECT * EXCLUDE (run_id) FROM ncc11_energy ORDER BY ALL",
    "ncc11_total_cost": "SELECT * EXCLUDE (run_id) FROM ncc11_total_cost ORDER BY ALL",
    "meter_readings": "SELECT * EXCLUDE (run_id) FROM meter_readings ORDER BY ALL",
    "meter_hourly": "SELECT * EXCLUDE (run_id) FROM meter_hourly ORDER BY ALL",
    "meter_completeness": "SELECT * EXCLUDE (run_id) FROM meter_completeness ORDER BY ALL",
    "vee_findings": "SELECT * EXCLUDE (run_id) FROM vee_findings ORDER BY ALL",
    "landed_files": "SELECT path, sha256, size_bytes, month, rows, status FROM landed_files ORDER BY ALL",
}


def tables(catalog: Path, names: tuple[str, ...]) -> dict:
    """{table: its COMPARED rows as a polars frame} of a warehouse's catalog, read-only."""
    from pipelines import warehouse

    con = warehouse.connect(catalog, read_only=True)
    try:
        out = {}
        for table in names:
            sql = COMPARED[table]
            columns = {r[0] for r in con.sql(f"DESCRIBE {table}").fetchall()}
            out[table] = con.sql(sql if "run_id" in columns else sql.replace(" EXCLUDE (run_id)", "")).pl()
        return out
    finally:
        con.close()
