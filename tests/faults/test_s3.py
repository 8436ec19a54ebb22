"""The lake's S3 endpoint failing (issue #22, items 2-4): unreachable, refusing the credentials, without
the bucket, and lost in the middle of a publish. Each ends in ONE sentence naming the S3 endpoint (never
a key), exit 2, classed as a fault of the machine (EnvironmentFault: "check the endpoint and the AWS_*
variables"), never as bad input; what was published before stays exactly as it was, and the same
command succeeds once the endpoint is back.

The endpoint is moto's S3 server (tests/s3server.py) reached through a small TCP relay (tests/s3server.py), so
that the network can be cut while moto keeps its objects (stopping moto would lose them: it keeps
everything in memory). The catalog is a local SQLite file; the previous snapshot is an NCC-11 quarter
whose data files are on the bucket."""

from __future__ import annotations

import os
import time

import pytest

from pipelines import objectstore
from pipelines.errors import EnvironmentFault
from tests import s3server
from tests.faults import support
from tests.metering import fixtures


@pytest.fixture(scope="module")
def lake_on_s3(s3: s3server.S3Server, tmp_path_factory: pytest.TempPathFactory):
    """A warehouse (local catalog) whose NCC-11 quarter has its data files on the bucket, behind a relay;
    a small meter month to publish next."""
    base = tmp_path_factory.mktemp("s3faults")
    relay = s3server.Relay(s3.port)
    bucket = s3server.make_bucket(s3)
    smec = base / "smec"
    fixtures.standard_month(smec)
    place = {"base": base, "relay": relay, "bucket": bucket, "smec": smec, "wh": base / "wh.sqlite"}
    env = _env(place)
    done = support.run_cli(
        [support.MAYORISTA, "ncc11", "--quarter", "2026-05", "--input", str(support.SAMPLE / "ncc11" / "2026-05")]
        + ["--warehouse", str(place["wh"]), "--lake", f"s3://{bucket}/lake"],
        env,
        cwd=base,
    )
    assert done.returncode == 0, done
    yield place
    relay.cut()


def _env(place: dict, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAYORISTA_"))}
    env.update(
        AWS_ACCESS_KEY_ID="mayorista-test",
        AWS_SECRET_ACCESS_KEY="mayorista-test-secret",
        AWS_ENDPOINT_URL=place["relay"].url,
        AWS_REGION="us-east-1",
        MAYORISTA_SCRATCH=str(place["base"] / "scratch"),
        MAYORISTA_LOCK_WAIT_S="5",
    )
    env.update(extra)
    return env


def _meters(place: dict, env: dict[str, str], lake: str | None = None, input_: str | None = None) -> support.Result:
    argv = [support.MAYORISTA, "meters", "ingest", "--month", "2026-04", "--input", input_ or str(place["smec"])]
    argv += ["--warehouse", str(place["wh"]), "--lake", lake or f"s3://{place['bucket']}/lake"]
    return support.run_cli(argv, env, cwd=place["base"])


def _state(place: dict) -> tuple[list[tuple], int]:
    """(NCC-11's published rows, the meter readings published), read through the relay. A failed run is
    recorded in run_manifests (a snapshot of its own), and a publish creates missing tables in a commit
    of their own first: what must not change is the data."""
    from pipelines import warehouse

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")}
    os.environ.update({k: v for k, v in _env(place).items() if k.startswith("AWS_")})
    try:
        con = warehouse.connect(place["wh"], read_only=True)
        try:
            rows = con.sql("SELECT * FROM ncc11_energy ORDER BY ALL").pl().drop("run_id", strict=False).rows()
            tables = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
            meters = con.sql("SELECT count(*) FROM meter_readings").fetchone()[0] if "meter_readings" in tables else 0
            return rows, meters
        finally:
            con.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _assert_s3_fault(result: support.Result, command: str, reason: str) -> str:
    text = support.assert_clear_failure(result, command)
    assert "S3 endpoint" in text and reason in text, text
    assert "check the endpoint and the AWS_* variables" in text, text  # the machine's fault, not the input's
    assert "mayorista-test-secret" not in result.stderr + result.stdout
    return text


def test_unreachable_endpoint_and_missing_bucket(lake_on_s3, faults):
    place = lake_on_s3
    before = _state(place)
    closed = f"http://127.0.0.1:{s3server.free_port()}"
    cases = [
        ("endpoint unreachable (lake)", _env(place, AWS_ENDPOINT_URL=closed), {}, "unreachable"),
        (
            "endpoint unreachable (landing)",
            _env(place, AWS_ENDPOINT_URL=closed),
            {"input_": f"s3://{place['bucket']}/landing/smec"},
            "unreachable",
        ),
        (
            "bucket missing (landing)",
            _env(place),
            {"input_": "s3://mayorista-no-such-bucket/landing/smec"},
            "bucket does not exist",
        ),
    ]
    for name, env, where, reason in cases:
        fault = faults.inject(name)
        result = _meters(place, env, **where)
        _assert_s3_fault(result, "meters", reason)
        assert _state(place) == before, f"{name}: the previous snapshot changed"
        fault.survived = True
    # an analyst's query that reads data files: the endpoint's fault, never "a damaged data file"
    argv = [support.MAYORISTA, "sql", "--warehouse", str(place["wh"]), "SELECT * FROM ncc11_energy"]
    query = support.run_cli(argv, _env(place, AWS_ENDPOINT_URL=closed), cwd=place["base"])
    text = _assert_s3_fault(query, "sql", "unreachable")
    assert "damaged" not in text and "maintain" not in text, text


def test_missing_bucket_for_a_new_warehouse_is_an_environment_fault(lake_on_s3, tmp_path, monkeypatch, faults):
    from pipelines.metering.job import ingest_month

    fault = faults.inject("bucket missing (new warehouse)")
    for key, value in _env(lake_on_s3).items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    with pytest.raises(EnvironmentFault, match="the bucket does not exist") as caught:
        ingest_month(
            "2026-04",
            lake_on_s3["smec"],
            warehouse=tmp_path / "new.sqlite",
            lake_root="s3://mayorista-no-such-bucket/lake",
            now=fixtures.APRIL.replace(month=11),
        )
    assert "mayorista-test-secret" not in str(caught.value)
    fault.survived = True


def test_bad_credentials(tmp_path, faults):
    """An endpoint that checks credentials (moto with IAM auth on) refuses an unknown access key."""
    fault = faults.inject("bad credentials")
    if s3server.importlib.util.find_spec("moto") is None:
        pytest.skip("moto[server] is not installed")
    os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "")
    saved = os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT")
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # moto's switch: authenticate every request
    try:
        server = s3server.start(tmp_path / "auth.log")
    finally:
        os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT")
        if saved:
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = saved
    try:
        smec = tmp_path / "smec"
        fixtures.standard_month(smec)
        place = {"base": tmp_path, "relay": server, "smec": smec, "wh": tmp_path / "wh.sqlite", "bucket": "any"}
        result = _meters(place, _env(place, AWS_ENDPOINT_URL=server.url), input_=str(smec))
        text = support.assert_clear_failure(result, "meters")
        assert "S3 endpoint" in text and ("access key" in text or "access denied" in text), text
        assert "mayorista-test-secret" not in result.stderr + result.stdout
        fault.survived = True
    finally:
        server.stop()


def test_endpoint_lost_in_the_middle_of_a_publish(lake_on_s3, s3, faults):
    """The network to the endpoint is cut once the meter run has started writing its data files to the
    bucket: the publish fails in one sentence, the previous snapshot is intact, and the same command
    succeeds once the endpoint is back."""
    place = lake_on_s3
    relay: s3server.Relay = place["relay"]
    before = _state(place)
    assert before[1] == 0, "the meter month is published by this test only"
    fault = faults.inject("endpoint lost mid-publish")
    marker = f"/{place['bucket']}/lake/main/meter_"
    puts = s3.requests("PUT", marker)
    argv = [support.MAYORISTA, "meters", "ingest", "--month", "2026-04", "--input", str(place["smec"])]
    argv += ["--warehouse", str(place["wh"]), "--lake", f"s3://{place['bucket']}/lake"]
    import subprocess

    started = time.monotonic()
    proc = subprocess.Popen(
        argv, env=_env(place), cwd=place["base"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        while proc.poll() is None and s3.requests("PUT", marker) == puts and time.monotonic() - started < 240:
            time.sleep(0.05)
        cut_while_running = proc.poll() is None
        relay.cut()
        result = support.finish(proc, argv, started)
    finally:
        if proc.poll() is None:
            proc.kill()
        relay.restore()
    assert cut_while_running and s3.requests("PUT", marker) > puts, "the run ended before it wrote to the bucket"
    _assert_s3_fault(result, "meters", "unreachable")
    after = _state(place)
    if after != before:
        fault.lost = True
        pytest.fail("the previous snapshot changed after the endpoint was lost mid-publish")
    again = _meters(place, _env(place))  # the endpoint is back: the retry publishes
    assert again.returncode == 0, again
    rows, meters = _state(place)
    assert rows == before[0] and meters > 0
    fault.survived = True


def test_the_classifier_on_the_clients_words():
    """What httpfs and botocore said here (captured from moto's server), and AWS's own words for a
    refused key, each become the one sentence; a missing object is not the endpoint's fault."""
    said = {
        "IO Error: Could not connect to server error for HTTP PUT to 'http://127.0.0.1:55147/bkt1/y.parquet'": (
            "unreachable"
        ),
        "HTTP Error: Unable to connect to URL s3://nobucket/x.parquet: Not Found (HTTP code 404)\n\n"
        "NoSuchBucket: The specified bucket does not exist": "bucket does not exist",
        'Could not connect to the endpoint URL: "http://127.0.0.1:56937/bkt1?list-type=2"': "unreachable",
        "An error occurred (InvalidAccessKeyId) when calling the PutObject operation: The AWS Access Key Id you "
        "provided does not exist in our records.": "access key",
        "An error occurred (SignatureDoesNotMatch) when calling the ListObjectsV2 operation: The request "
        "signature we calculated does not match the signature you provided.": "secret key",
    }
    for text, reason in said.items():
        fault = objectstore.fault(RuntimeError(text), "s3://bkt1/lake", "publish to the warehouse")
        assert isinstance(fault, EnvironmentFault) and reason in str(fault), text
    missing = "HTTP Error: HTTP GET error reading 's3://bkt1/nofile.parquet' in region 'us-east-1' (HTTP 404 Not Found)"
    assert objectstore.fault(RuntimeError(missing), "s3://bkt1/lake", "read") is None
    # a PostgreSQL catalog's lost server is the catalog's fault, not the endpoint's
    assert objectstore.fault(RuntimeError("could not connect to server: Connection refused"), "x", "read") is None
