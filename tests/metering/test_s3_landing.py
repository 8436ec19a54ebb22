"""The landing zone on s3:// (issue #22, item 3), against a real S3 endpoint: moto's server in its own
process (tests/s3server.py), the lake on the same bucket.

A small meter month (tests/metering/fixtures.py: three points, two participant files) is uploaded under
s3://bucket/landing/smec and ingested from there; the same files in a local folder give the reference
rows. The ledger keys each object by its key under the input prefix, size, last-modified and sha256;
a second run downloads nothing (the server's request log counts the GETs of each object); a resend
wins by landing order (last-modified); an object key is data (a quote in it is kept as text)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines import warehouse
from pipelines.metering.job import ingest_month
from tests import s3server
from tests.metering import fixtures

TABLES = ("meter_readings", "meter_hourly", "meter_completeness", "vee_findings", "landed_files")
NOW = fixtures.APRIL.replace(month=11)  # every April interval has ended


@pytest.fixture
def zone(s3: s3server.S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A new bucket with the month's files landed under landing/smec, the AWS_* variables set, and the
    same files in a local folder."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # a folder named "s3:" would appear here if a URL were taken for a path
    local = tmp_path / "smec"
    fixtures.standard_month(local)
    bucket = s3server.make_bucket(s3)
    s3server.upload(s3, local, f"s3://{bucket}/landing/smec")
    return bucket, local


def _client(s3: s3server.S3Server):  # noqa: ANN202
    import boto3

    return boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1", **_keys(s3))


def _keys(s3: s3server.S3Server) -> dict[str, str]:
    env = s3.env()
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}


def test_a_month_from_an_s3_landing_zone_equals_a_local_run(zone, s3, tmp_path):
    bucket, local = zone
    lake = f"s3://{bucket}/lake"
    remote = ingest_month(
        "2026-04", f"s3://{bucket}/landing/smec", warehouse=tmp_path / "s3.sqlite", lake_root=lake, now=NOW
    )
    ingest_month("2026-04", local, warehouse=tmp_path / "local.sqlite", lake_root=tmp_path / "lake", now=NOW)
    got, want = s3server.tables(tmp_path / "s3.sqlite", TABLES), s3server.tables(tmp_path / "local.sqlite", TABLES)
    for table in TABLES:
        assert got[table].height > 0 or table == "vee_findings", table  # a clean month has no findings
        assert_frame_equal(got[table], want[table], check_exact=False, rel_tol=1e-12, abs_tol=1e-9)
    assert "2 new file(s) read" in remote.summary
    # each readings object was fetched once; the registry copied once; nothing written to a folder "s3:"
    for name in ("PA.csv", "PB.csv"):
        assert s3.requests("GET", f"/{bucket}/landing/smec/readings/2026-04/{name}") == 1
    assert not any(tmp_path.glob("s3:*"))


def test_the_ledger_keys_an_object_by_key_size_last_modified_and_sha256(zone, s3, tmp_path):
    bucket, local = zone
    ingest_month(
        "2026-04", f"s3://{bucket}/landing/smec", warehouse=tmp_path / "wh.sqlite", lake_root=tmp_path / "lake", now=NOW
    )
    con = warehouse.connect(tmp_path / "wh.sqlite", read_only=True)
    try:
        ledger = con.sql(
            "SELECT path, sha256, size_bytes, modified_at, status FROM landed_files ORDER BY path"
        ).fetchall()
    finally:
        con.close()
    listed = {
        o["Key"]: o for o in _client(s3).list_objects_v2(Bucket=bucket, Prefix="landing/smec/readings/")["Contents"]
    }
    assert [row[0] for row in ledger] == ["readings/2026-04/PA.csv", "readings/2026-04/PB.csv"]
    for path, digest, size, modified, status in ledger:
        obj = listed[f"landing/smec/{path}"]
        body = (local / path).read_bytes()
        assert status == "ingested"
        assert digest == hashlib.sha256(body).hexdigest()
        assert size == obj["Size"] == len(body)
        assert modified == obj["LastModified"].astimezone(UTC).replace(tzinfo=None)


def test_a_second_run_downloads_nothing_and_a_resend_wins_by_landing_order(zone, s3, tmp_path):
    bucket, _ = zone
    url, catalog, lake = f"s3://{bucket}/landing/smec", tmp_path / "wh.sqlite", f"s3://{bucket}/lake"
    ingest_month("2026-04", url, warehouse=catalog, lake_root=lake, now=NOW)
    gets = s3.requests("GET", f"/{bucket}/landing/smec/readings/")
    again = ingest_month("2026-04", url, warehouse=catalog, lake_root=lake, now=NOW)
    assert s3.requests("GET", f"/{bucket}/landing/smec/readings/") == gets  # listed, never fetched again
    assert "0 new file(s) read, 2 already ingested" in again.summary

    # PA re-sends one interval of DEV1 under a new name, then overwrites PB with a corrected first day:
    # both land after the originals, so their values win; only these two objects are fetched
    time.sleep(1.1)  # a later last-modified, whatever the endpoint's clock resolution
    first = fixtures.APRIL.replace(minute=15).strftime("%Y-%m-%d %H:%M")
    client = _client(s3)
    resend = f"device_id,interval_end,channel,value\nDEV1,{first},kwh_del,77.5\n"
    client.put_object(Bucket=bucket, Key="landing/smec/readings/2026-04/PA it's a resend.csv", Body=resend.encode())
    fixed = fixtures.series("DEV3", 1, 10).with_columns(
        value=pl.when(pl.col("interval_end") == first).then(pl.lit("55.25")).otherwise(pl.col("value"))
    )
    client.put_object(Bucket=bucket, Key="landing/smec/readings/2026-04/PB.csv", Body=fixed.write_csv().encode())
    third = ingest_month("2026-04", url, warehouse=catalog, lake_root=lake, now=NOW)
    assert "2 new file(s) read, 1 already ingested" in third.summary, third.summary
    assert s3.requests("GET", f"/{bucket}/landing/smec/readings/") == gets + 2
    con = warehouse.connect(catalog, read_only=True)
    try:
        values = dict(
            con.execute(
                "SELECT point_id, value FROM meter_readings WHERE channel = 'kwh_del' AND interval_end = ?", [first]
            ).fetchall()
        )
        paths = {r[0] for r in con.sql("SELECT DISTINCT path FROM landed_files").fetchall()}
        digests = {
            r[0] for r in con.sql("SELECT sha256 FROM landed_files WHERE path = 'readings/2026-04/PB.csv'").fetchall()
        }
    finally:
        con.close()
    assert values["P1"] == 77.5 and values["P3"] == 55.25
    assert "readings/2026-04/PA it's a resend.csv" in paths  # the key, quote and all, kept as text
    assert hashlib.sha256(fixed.write_csv().encode()).hexdigest() in digests  # the new version is recorded
