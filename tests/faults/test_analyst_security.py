"""An analyst's `mayorista sql` trying to leave read-only (issue #19, item 4): every escape the issue
names is an injected fault. It survives when the command refuses it (exit 2, one clear sentence, no
traceback), the warehouse is intact (every table's rows, the catalog file's bytes, the lake's files)
and no file outside the warehouse was read or written.

Before the fix, `USE memory; DETACH wh; ATTACH 'ducklake:sqlite:W' AS w2; DELETE FROM ...` deleted
published rows, an ATTACH of the catalog as plain SQLite rewrote it outside any snapshot,
`read_csv('/etc/passwd')` printed the file and `COPY ... TO` wrote anywhere."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from tests.faults import support
from tests.faults.support import MAYORISTA

SECRET = "not-for-analysts-7f3a"  # the content of a file outside the warehouse; must never be printed


def _catalog_sha(place: support.Place) -> str:
    return hashlib.sha256(place.wh.read_bytes()).hexdigest()


def _lake_files(place: support.Place) -> set[str]:
    return {str(p.relative_to(place.lake)) for p in place.lake.rglob("*") if p.is_file()}


# (name, statement): {wh} the catalog, {lake} the lake, {outside} a file outside the warehouse (it
# exists, with SECRET in it), {new} a path outside the warehouse that must not come to exist
ESCAPES = [
    (
        "detach-and-reattach-writable",
        "USE memory; DETACH wh; ATTACH 'ducklake:sqlite:{wh}' AS w2; DELETE FROM w2.ncc11_energy",
    ),
    ("reattach-writable", "ATTACH 'ducklake:sqlite:{wh}' AS w2; DELETE FROM w2.ncc11_energy"),
    ("catalog-as-plain-sqlite", "ATTACH '{wh}' AS raw (TYPE sqlite); DELETE FROM raw.ducklake_snapshot"),
    ("sqlite-attach-function", "SELECT * FROM sqlite_attach('{wh}')"),
    ("query-function", "SELECT * FROM query('SELECT 1')"),
    ("read-a-file", "SELECT * FROM read_csv('{outside}', header = false)"),
    ("read-text", "SELECT content FROM read_text('{outside}')"),
    ("glob-the-disk", "SELECT * FROM glob('{outside_dir}/*')"),
    ("copy-to-a-file", "COPY (SELECT 1 AS x) TO '{new}'"),
    ("copy-over-a-lake-file", "COPY (SELECT * FROM ncc11_energy LIMIT 0) TO '{lake_file}'"),
    ("explain-analyze-copy", "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{new}'"),
    ("export-database", "EXPORT DATABASE '{new}'"),
    ("install-extension", "INSTALL httpfs"),
    ("load-extension", "LOAD httpfs"),
    ("change-a-setting", "SET enable_external_access = true; SELECT * FROM read_csv('{outside}', header = false)"),
    ("reset-a-setting", "RESET lock_configuration"),
    ("ducklake-cleanup", "SELECT * FROM ducklake_cleanup_old_files('wh', cleanup_all => true)"),
    ("call-a-writer", "CALL ducklake_expire_snapshots('wh', older_than => now())"),
    ("open-a-transaction", "BEGIN"),
]


@pytest.mark.parametrize(("name", "statement"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_an_escape_from_read_only_is_refused(name, statement, place, baseline_fp, faults, tmp_path):
    fault = faults.inject(f"mayorista sql: {name}")
    outside = tmp_path / "outside" / "secret.csv"
    outside.parent.mkdir()
    outside.write_text(f"{SECRET}\n")
    new = tmp_path / "outside" / "written"
    lake_file = next(place.lake.rglob("*.parquet"))
    sql = statement.format(
        wh=place.wh, lake=place.lake, outside=outside, outside_dir=outside.parent, new=new, lake_file=lake_file
    )
    catalog_before, lake_before = _catalog_sha(place), _lake_files(place)
    lake_file_before = lake_file.read_bytes()

    result = support.run_cli([MAYORISTA, "sql", "--warehouse", str(place.wh), sql], place.env(), cwd=place.root)

    # what was published first (a loss counts as lost, whatever the command said), then the refusal
    support.assert_intact(fault, baseline_fp, place)
    if _catalog_sha(place) != catalog_before or _lake_files(place) != lake_before:
        fault.lost = True
        pytest.fail(f"the catalog or the lake changed after {name}:\n{result}")
    if lake_file.read_bytes() != lake_file_before:
        fault.lost = True
        pytest.fail(f"a lake data file was rewritten by {name}")
    assert SECRET not in result.stdout + result.stderr, f"a file outside the warehouse was read:\n{result}"
    assert not new.exists(), f"a file outside the warehouse was written: {new}"
    assert result.returncode == 2, f"the escape was not refused:\n{result}"
    text = support.assert_clear_failure(result, "sql")
    assert "read-only" in text or "not allowed" in text, text
    fault.survived = True


def test_a_session_refuses_each_escape_and_goes_on(place, baseline_fp, faults, tmp_path):
    """In a session the same statements are refused one by one; the session stays read-only and usable."""
    fault = faults.inject("mayorista sql session: BEGIN, DETACH/ATTACH, SET and COPY typed in one session")
    new = tmp_path / "written.csv"
    script = (
        "BEGIN;\n"
        "USE memory;\n"
        f"ATTACH 'ducklake:sqlite:{place.wh}' AS w2;\n"
        "SET lock_configuration = false;\n"
        f"COPY (SELECT 1 AS x) TO '{new}';\n"
        "SELECT count(*) AS n FROM ncc11_energy;\n"
    )
    catalog_before = _catalog_sha(place)
    done = subprocess.run(
        [MAYORISTA, "sql", "--csv", "--warehouse", str(place.wh)],
        input=script,
        env=place.env(),
        capture_output=True,
        text=True,
        cwd=place.root,
        timeout=support.RUN_TIMEOUT,
    )
    support.assert_intact(fault, baseline_fp, place)
    if _catalog_sha(place) != catalog_before:
        fault.lost = True
        pytest.fail("the catalog file changed during a read-only session")
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 5, done.stderr  # each of the five refused, in its own sentence
    assert "transaction" in errors[0] and "not allowed" in errors[0]
    expected = baseline_fp.exact["ncc11_energy"][0]
    assert done.stdout.split() == ["n", str(expected)], done.stdout  # still reading the warehouse
    assert not new.exists()
    fault.survived = True


def test_connect_for_notebooks_is_locked_the_same_way(place, baseline_fp, faults, tmp_path):
    """`pipelines.analyst.connect()`: ATTACH, DETACH, SET, INSTALL, COPY, reading a file and BEGIN are
    refused; queries work."""
    from pipelines import analyst
    from pipelines.errors import MayoristaError

    fault = faults.inject("pipelines.analyst.connect(): ATTACH/DETACH/SET/INSTALL/COPY/read_csv/BEGIN")
    outside = tmp_path / "secret.csv"
    outside.write_text(f"{SECRET}\n")
    new = tmp_path / "written.csv"
    catalog_before = _catalog_sha(place)
    con = analyst.connect(place.wh)
    try:
        assert con.sql("SELECT count(*) FROM ncc11_energy").fetchone()[0] == baseline_fp.exact["ncc11_energy"][0]
        for sql in (
            f"ATTACH 'ducklake:sqlite:{place.wh}' AS w2",
            f"ATTACH '{place.wh}' AS raw (TYPE sqlite)",
            "DETACH wh",
            "SET enable_external_access = true",
            "INSTALL httpfs",
            f"COPY (SELECT 1 AS x) TO '{new}'",
            "BEGIN TRANSACTION",
        ):
            with pytest.raises(MayoristaError):
                con.execute(sql)
        with pytest.raises(Exception, match="disabled|not allowed"):
            con.sql(f"SELECT * FROM read_csv('{outside}', header = false)").fetchall()
        with pytest.raises(MayoristaError):
            con.begin()
        assert con.sql("SELECT 1 AS one").fetchone() == (1,)
    finally:
        con.close()
    assert not new.exists()
    support.assert_intact(fault, baseline_fp, place)
    if _catalog_sha(place) != catalog_before:
        fault.lost = True
        pytest.fail("the catalog file changed through a read-only connection")
    fault.survived = True
