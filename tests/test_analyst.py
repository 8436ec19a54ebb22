"""`mayorista sql`: one query (table or CSV), a session reading statements from a pipe, and a session
left open while a run publishes (the publish must not wait for it; its next statement sees the rows)."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.ncc11 import job as ncc11
from tests.conftest import ROOT
from tests.ncc11.fixtures import write_quarter


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A warehouse holding one NCC-11 quarter (6 ncc11_energy rows)."""
    base = tmp_path_factory.mktemp("analyst")
    catalog, lake = base / "warehouse.sqlite", base / "lake"
    ncc11.run("2026-03", write_quarter(base / "in"), warehouse=catalog, lake_root=lake)
    return catalog, lake


def sql_command(catalog: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "sql", "--warehouse", str(catalog), *args]


def test_query_prints_a_table(published, capsys):
    catalog, _ = published
    assert (
        cli.main(
            [
                "sql",
                "--warehouse",
                str(catalog),
                "SELECT distributor, count(*) AS bands FROM ncc11_energy GROUP BY 1 ORDER BY 1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "distributor" in out and "bands" in out and "D1" in out and "D2" in out


def test_query_as_csv_with_header_and_empty_nulls(published, capsys):
    catalog, _ = published
    query = (
        "SELECT distributor, band, round(peste_usd_mwh, 1) AS peste, NULL AS nothing FROM ncc11_energy "
        "WHERE distributor = 'D1' ORDER BY band"
    )
    assert cli.main(["sql", "--warehouse", str(catalog), "--csv", query]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "distributor,band,peste,nothing",
        "D1,intermedia,100.0,",
        "D1,punta,100.0,",
        "D1,valle,100.0,",
    ]


def test_query_errors_exit_non_zero_and_the_warehouse_is_read_only(published, capsys):
    catalog, _ = published
    assert cli.main(["sql", "--warehouse", str(catalog), "SELECT * FROM no_such_table"]) == 2
    assert "no_such_table" in capsys.readouterr().err
    assert cli.main(["sql", "--warehouse", str(catalog), "DELETE FROM ncc11_energy"]) == 2
    assert "read" in capsys.readouterr().err.lower()  # read-only
    assert cli.main(["sql", "--warehouse", str(catalog), "--csv", "SELECT count(*) AS n FROM ncc11_energy"]) == 0
    assert capsys.readouterr().out.split() == ["n", "6"]


def test_query_as_of_a_snapshot(published, capsys):
    catalog, _ = published
    assert (
        cli.main(
            [
                "sql",
                "--warehouse",
                str(catalog),
                "--csv",
                "SELECT snapshot_id FROM run_manifests WHERE status = 'published'",
            ]
        )
        == 0
    )
    snapshot = capsys.readouterr().out.split()[1]
    assert (
        cli.main(
            [
                "sql",
                "--warehouse",
                str(catalog),
                "--csv",
                f"SELECT count(*) AS n FROM ncc11_energy AT (VERSION => {snapshot})",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.split() == ["n", "6"]


def test_session_reads_statements_from_a_pipe(published):
    catalog, _ = published
    statements = (
        "SELECT count(*) AS n FROM ncc11_energy;\n"
        "SELECT distributor\n  FROM ncc11_power\n ORDER BY 1;\n"  # one statement over three lines
        "SELECT * FROM no_such_table;\n"  # an error is printed and the session goes on
        "SELECT 'a;b' AS text, NULL AS empty;\n"
        "SELECT 42 AS last"
    )  # the last statement may end with the input, without ';'
    done = subprocess.run(
        sql_command(catalog, "--csv"), input=statements, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["n", "6", "distributor", "D1", "D2", "text,empty", "a;b,", "last", "42"]
    assert "no_such_table" in done.stderr


def _lines(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        with stream:  # closed by its reader at the end, so that no pipe is left open
            for line in stream:
                lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next(lines: queue.Queue, timeout: float = 60) -> str:
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"the sql session printed nothing within {timeout} s")
    assert line is not None, "the sql session ended"
    return line


def test_an_open_session_does_not_block_a_publish_and_sees_its_rows(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    ncc11.run("2026-03", write_quarter(tmp_path / "march", "2026-03"), warehouse=catalog, lake_root=lake)
    june = write_quarter(tmp_path / "june", "2026-06")

    session = subprocess.Popen(
        sql_command(catalog, "--csv"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=ROOT,
    )
    try:
        out = _lines(session.stdout)
        session.stdin.write("SELECT count(*) AS n FROM ncc11_energy;\n")
        session.stdin.flush()
        assert (_next(out, 120), _next(out)) == ("n", "6")

        # the session stays open (its stdin too) while a run publishes in this process
        outcome: dict = {}

        def publish() -> None:
            try:
                outcome["result"] = ncc11.run("2026-06", june, warehouse=catalog, lake_root=lake)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        writer = threading.Thread(target=publish, daemon=True)
        writer.start()
        writer.join(timeout=180)
        assert not writer.is_alive(), "the publish is blocked by the open sql session"
        assert "error" not in outcome, outcome.get("error")
        assert outcome["result"].snapshot_id is not None
        assert session.poll() is None  # the session is still open

        session.stdin.write("SELECT count(*) AS n FROM ncc11_energy;\n")
        session.stdin.write("SELECT quarter, count(*) AS n FROM ncc11_energy GROUP BY 1 ORDER BY 1;\n")
        session.stdin.flush()
        assert [_next(out) for _ in range(5)] == ["n", "12", "quarter,n", "2026-03,6", "2026-06,6"]
        session.stdin.close()
        assert session.wait(timeout=60) == 0
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        session.stderr.close()  # never read (stdout is closed by its reader)
        with contextlib.suppress(BrokenPipeError):  # a flush to a killed session
            session.stdin.close()


# --- issue #19: read-only for real, every result printed, no pytz, clear argument errors ------------


def test_timestamptz_columns_print_as_csv_without_pytz(published, capsys):
    catalog, _ = published
    assert (
        cli.main(
            [
                "sql",
                "--warehouse",
                str(catalog),
                "--csv",
                "SELECT snapshot_id, snapshot_time FROM ducklake_snapshots('wh')",
            ]
        )
        == 0
    ), capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "snapshot_id,snapshot_time" and len(lines) > 2
    assert lines[1].startswith("0,20")  # a timestamp with its zone, as DuckDB writes it
    assert cli.main(["sql", "--warehouse", str(catalog), "--csv", "SELECT now() AS t"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "t"


def test_every_statement_of_a_query_prints_its_result(published, capsys):
    catalog, _ = published
    assert cli.main(["sql", "--warehouse", str(catalog), "--csv", "SELECT 1 AS a; SELECT 2 AS b"]) == 0
    assert capsys.readouterr().out.split() == ["a", "1", "b", "2"]


def test_a_refused_statement_stops_the_batch_before_anything_runs(published, capsys):
    catalog, _ = published
    assert cli.main(["sql", "--warehouse", str(catalog), "SELECT 1 AS a; DETACH wh"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "DETACH is not allowed" in captured.err and "read-only" in captured.err


def test_an_analyst_cannot_begin_a_transaction(published, capsys):
    """An open BEGIN in a session held the SQLite catalog against every run (item 10): refused."""
    catalog, _ = published
    for statement in ("BEGIN", "BEGIN TRANSACTION; SELECT 1", "COMMIT", "ROLLBACK"):
        assert cli.main(["sql", "--warehouse", str(catalog), statement]) == 2
        assert "not allowed" in capsys.readouterr().err


def test_queries_analysts_use_still_work(published, capsys):
    catalog, lake = published
    data_file = next(lake.rglob("*.parquet"))
    for query in (
        "DESCRIBE ncc11_energy",
        "SHOW TABLES",
        "SUMMARIZE ncc11_energy",
        "EXPLAIN SELECT * FROM ncc11_energy",
        "FROM ncc11_energy SELECT band LIMIT 1",
        "WITH x AS (SELECT * FROM ncc11_energy) SELECT count(*) FROM x",
        "SELECT count(*) FROM ncc11_energy AT (VERSION => 1)",
        "SELECT * FROM ducklake_snapshots('wh')",
        f"SELECT count(*) FROM read_parquet('{data_file}')",  # the lake's own files stay readable
    ):
        assert cli.main(["sql", "--warehouse", str(catalog), "--csv", query]) == 0, (query, capsys.readouterr().err)
        capsys.readouterr()


def test_history_refuses_a_month_that_does_not_exist(published, capsys):
    catalog, _ = published
    assert cli.main(["history", "ncc11", "--period", "2026-13", "--warehouse", str(catalog)]) == 2
    assert "13 is not a month" in capsys.readouterr().err
    assert cli.main(["history", "ncc11", "--period", "March", "--warehouse", str(catalog)]) == 2
    assert "YYYY-MM" in capsys.readouterr().err


def test_a_quarter_of_month_13_says_13_is_not_a_month(tmp_path, capsys):
    assert cli.main(["ncc11", "--quarter", "2026-13", "--input", str(tmp_path)]) == 2
    assert "13 is not a month" in capsys.readouterr().err


def test_a_lock_wait_that_is_not_a_number_is_one_sentence(published, capsys, monkeypatch):
    catalog, _ = published
    monkeypatch.setenv("MAYORISTA_LOCK_WAIT_S", "abc")
    assert cli.main(["sql", "--warehouse", str(catalog), "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "MAYORISTA_LOCK_WAIT_S must be a number of seconds" in err and "'abc'" in err
    assert "Traceback" not in err


def test_the_postgres_password_is_nowhere_a_query_can_see(tmp_path):
    """A PostgreSQL catalog: its password is in a DuckDB secret (shown `redacted`), not in the ATTACH
    string that duckdb_databases() and duckdb_settings() show."""
    import os
    import uuid

    from pipelines import analyst
    from pipelines import warehouse as wh

    url = os.environ.get("MAYORISTA_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("PostgreSQL not configured: set MAYORISTA_TEST_POSTGRES_URL")
    psycopg2 = pytest.importorskip("psycopg2")
    from sqlalchemy.engine import make_url

    server = make_url(url)
    if not server.password:
        pytest.skip("MAYORISTA_TEST_POSTGRES_URL has no password to hide")
    name = f"mayorista_analyst_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(
        host=server.host, port=server.port or 5432, user=server.username, password=server.password, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        catalog = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        con = wh.connect(catalog, lake_root=tmp_path / "lake")
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
        con.close()
        shown = analyst.run_query(
            "SELECT path FROM duckdb_databases(); SELECT name, value FROM duckdb_settings(); "
            "SELECT * FROM duckdb_secrets(); SELECT * FROM ducklake_options('wh'); SELECT count(*) AS n FROM t",
            catalog,
            csv=True,
        )
        # the password as a value (CI's role is called 'mayorista' with password 'mayorista', so the bare
        # word also stands in user and database names)
        assert f"password={server.password}" not in shown and f":{server.password}@" not in shown
        assert "password=redacted" in shown and shown.splitlines()[-1] == "1"
        with pytest.raises(analyst.Refused):
            analyst.run_query("SELECT * FROM postgres_query('__ducklake_metadata_wh', 'SELECT 1')", catalog)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
