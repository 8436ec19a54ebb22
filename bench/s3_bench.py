"""Benchmark: the lake on an S3 endpoint through DuckDB's httpfs extension or through fsspec's s3fs.

    uv run --locked python bench/s3_bench.py [--rows 1000000] [--repeat 3]

Starts moto's standalone S3 server (`python -m moto.server`, from moto[server]) on a free 127.0.0.1
port, creates a bucket, builds one month of 15-minute readings shaped like `meter_readings`
(device_id, interval_end, channel, value) and times, for each way of reaching the endpoint:

- `copy`: DuckDB writes the frame as one Parquet file to s3://bucket/<way>/x.parquet (COPY ... TO);
- `read`: DuckDB reads the same file back whole (to Arrow);
- `ducklake`: an INSERT of the same rows into a DuckLake (SQLite catalog) whose DATA_PATH is on the
  bucket, then a full read of the table (what a publish and a report do).

httpfs is DuckDB's own S3 client (C++, a `CREATE SECRET (TYPE s3 ...)`); s3fs is the fsspec
filesystem DuckDB calls back into Python for (`register_filesystem`), as the lake did before
(pipelines/warehouse/catalog.py). Each figure is the median of --repeat runs, in seconds. The server
and its data live only while the benchmark runs.

Measured 2026-12-06 on the shared 2-core machine (five other sessions running, load average 25-40),
990,720 rows (a 3.8 MB Parquet file), median of 3 (docs/scale-out.md, "Storage on S3"):

    way      copy (write)   read   ducklake (insert+read)
    httpfs           0.96   0.04                     0.97
    s3fs             1.28   0.33                     1.23"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.warehouse import catalog  # noqa: E402  (the extension loader from the wheels)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("moto's server did not start within 30 s")


def readings(rows: int) -> pl.DataFrame:
    points = max(1, rows // (30 * 96 * 4))
    n = points * 30 * 96 * 4
    return pl.select(i=pl.int_range(0, n, dtype=pl.Int64)).select(
        device_id=pl.format("M{}", (pl.col("i") // (30 * 96 * 4)).cast(pl.String).str.zfill(6)),
        interval_end=pl.lit(datetime(2026, 4, 1)) + pl.duration(minutes=15 * (1 + (pl.col("i") // 4) % 2880)),
        channel=pl.format("ch{}", pl.col("i") % 4),
        value=(pl.col("i").hash(seed=7) % 1_000_000).cast(pl.Float64) / 1000.0,  # not compressible to nothing
    )


def connection(way: str, port: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    catalog._install(con, "ducklake")
    catalog._install(con, "sqlite")
    # DuckLake refuses an s3:// DATA_PATH unless httpfs is loaded, whoever then does the I/O: loaded for
    # both; for s3fs no secret is made, so httpfs could reach no endpoint and the registered
    # filesystem does the I/O (DuckDB asks registered filesystems first)
    catalog._install(con, "httpfs")
    if way == "httpfs":
        con.execute(
            "CREATE TEMPORARY SECRET bench (TYPE s3, KEY_ID 'bench', SECRET 'bench', REGION 'us-east-1', "
            f"ENDPOINT '127.0.0.1:{port}', URL_STYLE 'path', USE_SSL false)"
        )
    else:
        import s3fs

        fs = s3fs.S3FileSystem(
            key="bench",
            secret="bench",
            client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"},
            skip_instance_cache=True,
        )
        con.register_filesystem(fs)
    return con


def timed(fn) -> float:  # noqa: ANN001
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    proc = start_moto(port)
    try:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        frame = readings(args.rows)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "x.parquet"
            frame.write_parquet(local)
            print(f"{frame.height:,} rows, Parquet {local.stat().st_size / 1e6:.1f} MB, moto on 127.0.0.1:{port}")
            results: dict[str, dict[str, list[float]]] = {}
            for _ in range(args.repeat):
                for way in ("httpfs", "s3fs"):
                    con = connection(way, port)
                    con.register("frame", frame.to_arrow())
                    run = uuid.uuid4().hex[:8]
                    url = f"s3://bench/{way}/{run}/x.parquet"
                    got = results.setdefault(way, {})
                    got.setdefault("copy", []).append(
                        timed(lambda: con.execute(f"COPY frame TO {catalog.literal(url)} (FORMAT parquet)"))
                    )
                    got.setdefault("read", []).append(
                        timed(lambda: con.execute(f"SELECT * FROM read_parquet({catalog.literal(url)})").arrow())
                    )
                    data_path = f"s3://bench/{way}/{run}/lake/"
                    cat = Path(tmp) / f"{way}-{run}.sqlite"

                    def ducklake() -> None:
                        con.execute(
                            f"ATTACH {catalog.literal('ducklake:sqlite:' + str(cat))} AS dl "
                            f"(DATA_PATH {catalog.literal(data_path)}, DATA_INLINING_ROW_LIMIT 0)"
                        )
                        con.execute("CREATE TABLE dl.readings AS SELECT * FROM frame")
                        con.execute("SELECT * FROM dl.readings").arrow()
                        con.execute("DETACH dl")

                    got.setdefault("ducklake", []).append(timed(ducklake))
                    con.close()
            print(
                f"{'way':8} {'copy (write)':>14} {'read':>10} {'ducklake (insert+read)':>24}   median of {args.repeat}, s"
            )
            for way, got in results.items():
                med = {k: statistics.median(v) for k, v in got.items()}
                print(f"{way:8} {med['copy']:14.2f} {med['read']:10.2f} {med['ducklake']:24.2f}")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
