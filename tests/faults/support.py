"""Shared machinery of the fault-injection suite (tests/faults/).

Every case works on a COPY of one good baseline warehouse (catalog + lake) built once per session
(per xdist worker group: the first worker builds it under a file lock, the others reuse it), runs the
real `mayorista` command in a subprocess, and checks afterwards that:

- what was published before is intact (every table's rows fingerprinted, compared with the baseline),
- no key is duplicated,
- no stray files are left (killed runs' scratch folders, Parquet files no catalog references),
- the message is one clear paragraph on stderr (no traceback) with exit code 2 for failures."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.warehouse_copy import copy_warehouse

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
MAYORISTA = str(Path(sys.executable).parent / "mayorista")

RUN_TIMEOUT = 300  # seconds: a bound for any single CLI run (they take 5-30 s on a busy 2-core box)


@dataclass(frozen=True)
class Pipeline:
    name: str
    argv: tuple[str, ...]
    input: str  # folder under the case's inputs
    period: str
    period_column: str
    tables: tuple[str, ...]  # the tables a run of this pipeline replaces


PIPELINES = {
    "ncc11": Pipeline(
        "ncc11",
        ("ncc11", "--quarter", "2026-05"),
        "ncc11",
        "2026-05",
        "quarter",
        ("ncc11_energy", "ncc11_energy_month", "ncc11_power_month", "ncc11_power", "ncc11_total_cost"),
    ),
    "meters": Pipeline(
        "meters",
        ("meters", "ingest", "--month", "2026-04"),
        "smec",
        "2026-04",
        "month",
        (
            "meter_readings",
            "meter_readings_superseded",
            "meter_estimates",
            "meter_hourly",
            "meter_completeness",
            "vee_findings",
            "quarantine",
            "metering_points",
            "landed_files",
        ),
    ),
    "delivery": Pipeline(
        "delivery",
        ("delivery", "check", "--month", "2026-04"),
        "smec",
        "2026-04",
        "month",
        (
            "vpn_change_review",
            "delivery_compliance",
            "delivery_points",
            "estimated_hourly",
            "delivery_unreadable_rows",
            "vpn_changes",
        ),
    ),
}

# contract keys: one row per key (duplicates are a defect)
KEYS = {
    "ncc11_energy": ("quarter", "distributor", "band"),
    "ncc11_power_month": ("quarter", "month", "distributor"),
    "ncc11_power": ("quarter", "distributor"),
    "meter_completeness": ("point_id", "month", "channel"),
    "meter_hourly": ("point_id", "hour", "channel"),
    "meter_readings": ("point_id", "channel", "interval_end"),
    "delivery_compliance": ("month", "change_id"),
    "delivery_points": ("month", "change_id", "point_id"),
    "vpn_changes": ("month", "change_id"),
    "vpn_change_review": ("month", "change_id", "rule"),
    "estimated_hourly": ("month", "point_id", "hour"),
    "metering_points": ("point_id", "valid_from", "source_file"),
    "run_manifests": ("run_id",),
}
HISTORY_TABLES = ("run_manifests", "validation_results")  # appended to by every run, failed ones included


# --- running the CLI ---------------------------------------------------------------------------


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.returncode} after {self.seconds:.1f} s\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "MAYORISTA_WAREHOUSE",
            "MAYORISTA_LAKE",
            "MAYORISTA_KILL_AT",
            "MAYORISTA_PAUSE_AT",
            "MAYORISTA_PAUSE_FILE",
            "MAYORISTA_MAINTENANCE_MIN_AGE_HOURS",
            "MAYORISTA_SCRATCH",
            "PYTEST_CURRENT_TEST",
            "PYTEST_XDIST_WORKER",
            "COV_CORE_SOURCE",
        )
    }
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    env["MAYORISTA_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


@dataclass
class Place:
    """One case's warehouse (catalog + lake), scratch root and inputs."""

    root: Path
    wh: Path
    lake: Path
    scratch: Path
    inputs: Path  # holds ncc11/ and smec/

    def argv(self, pipeline: str) -> list[str]:
        p = PIPELINES[pipeline]
        return [
            MAYORISTA,
            *p.argv,
            "--input",
            str(self.inputs / p.input),
            "--warehouse",
            str(self.wh),
            "--lake",
            str(self.lake),
        ]

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(MAYORISTA_SCRATCH=str(self.scratch), **extra)

    def start(self, pipeline: str, **env: str) -> tuple[subprocess.Popen, list[str]]:
        argv = self.argv(pipeline)
        proc = subprocess.Popen(
            argv, env=self.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.root
        )
        return proc, argv

    def run(self, pipeline: str, *, timeout: float = RUN_TIMEOUT, **env: str) -> Result:
        return run_cli(self.argv(pipeline), self.env(**env), cwd=self.root, timeout=timeout)

    def maintain(self) -> Result:
        """Maintenance that deletes every unneeded file at once (safe age 0: no run is in progress)."""
        return run_cli(
            [MAYORISTA, "maintain", "--warehouse", str(self.wh), "--retention-days", "0", "--min-age-hours", "0"],
            self.env(),
            cwd=self.root,
        )


def run_cli(argv: list[str], env: dict[str, str], *, cwd: Path, timeout: float = RUN_TIMEOUT) -> Result:
    start = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    return Result(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def finish(proc: subprocess.Popen, argv: list[str], started: float, timeout: float = RUN_TIMEOUT) -> Result:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return Result(argv, proc.returncode, out, err, time.monotonic() - started)


# --- the baseline --------------------------------------------------------------------------------


def build_baseline(base: Path) -> Place:
    """Good runs of every pipeline into one warehouse: NCC-11 2026-05, meters 2026-03 and 2026-04,
    delivery 2026-04 (it reads March's meter_hourly). Built once; cases copy it."""
    place = Place(base, base / "wh.sqlite", base / "lake", base / "scratch", base / "inputs")
    done_marker = base / "DONE"
    base.mkdir(parents=True, exist_ok=True)
    with open(base.parent / f"{base.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # xdist: the first worker builds, the others wait and reuse
        try:
            if done_marker.exists():
                return place
            for stale in (place.wh, place.lake, place.scratch, place.inputs):
                if stale.is_dir():
                    shutil.rmtree(stale)
                elif stale.exists():
                    stale.unlink()
            place.inputs.mkdir(parents=True)
            shutil.copytree(SAMPLE / "ncc11" / "2026-05", place.inputs / "ncc11")
            copy_smec_small(place.inputs / "smec")
            place.scratch.mkdir()
            march = [
                MAYORISTA,
                "meters",
                "ingest",
                "--month",
                "2026-03",
                "--input",
                str(place.inputs / "smec"),
                "--warehouse",
                str(place.wh),
                "--lake",
                str(place.lake),
            ]
            steps = [place.argv("ncc11"), march, place.argv("meters"), place.argv("delivery")]
            for argv in steps:
                result = run_cli(argv, place.env(), cwd=base)
                if result.returncode != 0:
                    pytest.fail(f"the baseline run failed, nothing to inject faults into:\n{result}")
            done_marker.write_text("ok")
            return place
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


POINTS_PER_PARTICIPANT = 2


def copy_smec_small(dest: Path) -> None:
    """The sample's SMEC inputs with the readings of the first POINTS_PER_PARTICIPANT points of each
    participant only (15 of 55 points, PM-001 among them; 28 % of the rows). Every fault a case injects (a kill, a full
    disk, a bad file) acts on the run, not on how many points it reads; a quarter of the rows makes
    every one of the suite's runs cheaper. The registry, VPN changes and deliveries stay whole, so the
    other points are registered but unread (completeness 0: a warning, as in the market)."""
    import polars as pl

    shutil.copytree(SAMPLE / "smec", dest)
    registry = pl.read_csv(dest / "metering_points.csv", infer_schema=False)
    first = (
        registry.select("participant", "point_id")
        .unique()
        .sort("point_id")
        .group_by("participant")
        .head(POINTS_PER_PARTICIPANT)
    )
    devices = registry.join(first, on=["participant", "point_id"])["device_id"].unique().to_list()
    for path in sorted((dest / "readings").glob("*/*.parquet")):
        pl.read_parquet(path).filter(pl.col("device_id").is_in(devices)).write_parquet(path)


def copy_place(
    baseline: Place,
    root: Path,
    *,
    catalog_dir: Path | None = None,
    lake_dir: Path | None = None,
    copy_inputs: bool = False,
) -> Place:
    """A case's own copy of the baseline: catalog (optionally in `catalog_dir`) and lake (optionally at
    `lake_dir`); the catalog's data path is pointed at the copied lake (DuckLake keeps file paths
    relative to it). Inputs are shared read-only unless `copy_inputs`."""
    root.mkdir(parents=True, exist_ok=True)
    wh = (catalog_dir or root) / "wh.sqlite"
    lake = lake_dir or root / "lake"
    copy_warehouse(baseline.wh, baseline.lake, wh, lake)
    inputs = baseline.inputs
    if copy_inputs:
        inputs = root / "inputs"
        shutil.copytree(baseline.inputs, inputs)
    scratch = root / "scratch"
    scratch.mkdir(exist_ok=True)
    return Place(root, wh, lake, scratch, inputs)


# --- reading the warehouse -----------------------------------------------------------------------


def _connect(place: Place, *, write: bool = False):
    from pipelines import warehouse

    if write:
        return warehouse.connect(str(place.wh), lake_root=str(place.lake))
    return warehouse.connect(str(place.wh), read_only=True)


def _columns(con, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'wh' AND table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Fingerprint:
    """Every table's rows as (count, order-independent hash of whole rows), plus per-column sums of
    floating columns with hashes of the others (compared with a tolerance: DuckDB sums in parallel)."""

    exact: dict[str, tuple[int, int]] = field(default_factory=dict)
    loose: dict[str, tuple] = field(default_factory=dict)
    manifests: dict[str, dict] = field(default_factory=dict)  # run_id -> row
    history_rows: dict[str, int] = field(default_factory=dict)  # validation_results rows per run_id
    history_hash: dict[str, int] = field(default_factory=dict)
    snapshot: int = 0


def fingerprint(place: Place) -> Fingerprint:
    from pipelines import warehouse

    con = _connect(place)
    try:
        fp = Fingerprint()
        fp.snapshot = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('wh')").fetchone()[0]
        for table in sorted(warehouse.tables(con)):
            cols = _columns(con, table)
            if table in HISTORY_TABLES:
                continue
            count, whole = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {_q(table)} t").fetchone()
            fp.exact[table] = (count, int(whole))
            parts = [
                f"sum({_q(c)})::DOUBLE"
                if t in ("DOUBLE", "FLOAT") or t.startswith("DECIMAL")
                else f"coalesce(sum(hash({_q(c)})), 0)"
                for c, t in cols
            ]
            fp.loose[table] = tuple(con.execute(f"SELECT count(*), {', '.join(parts)} FROM {_q(table)}").fetchone())
        for row in con.execute(
            "SELECT run_id, pipeline, period, status, snapshot_id, manifest, hash(t) AS h FROM run_manifests t"
        ).fetchall():
            fp.manifests[row[0]] = {
                "pipeline": row[1],
                "period": row[2],
                "status": row[3],
                "snapshot_id": row[4],
                "manifest": json.loads(row[5]) if row[5] else {},
                "hash": int(row[6]),
            }
        for run_id, n, h in con.execute(
            "SELECT run_id, count(*), sum(hash(t)) FROM validation_results t GROUP BY run_id"
        ).fetchall():
            fp.history_rows[run_id] = n
            fp.history_hash[run_id] = int(h)
        return fp
    finally:
        con.close()


def intact_problems(before: Fingerprint, after: Fingerprint, *, replaced: Pipeline | None = None) -> list[str]:
    """What changed in the previously published data (empty = intact). New `failed` manifests and
    their validation results are allowed; anything else that differs is listed. With `replaced`, that
    pipeline's period was re-published from the same inputs: its tables must hold the same rows up
    to float rounding, and its new manifest rows may be `published`."""
    problems = []
    if replaced:
        problems += same_content_problems(before, after, replaced.tables)
    for table, value in before.exact.items():
        if replaced and table in replaced.tables:
            continue
        now = after.exact.get(table)
        if now != value:
            problems.append(
                f"{table}: {value[0]} rows before, {now[0] if now else 'no table'} now"
                + (" (same count, different content)" if now and now[0] == value[0] else "")
            )
    for run_id, row in before.manifests.items():
        if after.manifests.get(run_id, {}).get("hash") != row["hash"]:
            problems.append(f"run_manifests row of {run_id} changed or vanished")
        if after.history_hash.get(run_id) != before.history_hash.get(run_id):
            problems.append(f"validation_results of {run_id} changed or vanished")
    for run_id, row in after.manifests.items():
        if run_id in before.manifests:
            continue
        if (
            replaced
            and row["status"] == "published"
            and (row["pipeline"], row["period"]) == (replaced.name, replaced.period)
        ):
            if row["snapshot_id"] is None:
                problems.append(f"the published run {run_id} has no snapshot_id")
            continue
        if row["status"] != "failed":
            problems.append(f"a new run_manifests row {run_id} has status {row['status']!r}, not 'failed'")
    return problems


def same_content_problems(before: Fingerprint, after: Fingerprint, tables: tuple[str, ...]) -> list[str]:
    """`tables` hold the same rows as before up to float rounding (a re-run of the same inputs)."""
    problems = []
    for table in tables:
        a, b = before.loose.get(table), after.loose.get(table)
        if a is None or b is None or len(a) != len(b):
            problems.append(f"{table}: {a} vs {b}")
            continue
        for x, y in zip(a, b):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or abs(x - y) > 1e-9 * max(1.0, abs(x), abs(y)):
                    problems.append(f"{table}: a float column sums to {x} before, {y} now")
            elif x != y:
                problems.append(f"{table}: rows differ ({a[0]} rows before, {b[0]} now)")
                break
    return problems


def duplicate_problems(place: Place) -> list[str]:
    from pipelines import warehouse

    con = _connect(place)
    try:
        problems = []
        present = warehouse.tables(con)
        for table, key in KEYS.items():
            if table not in present:
                continue
            cols = ", ".join(_q(c) for c in key)
            dups = con.execute(
                f"SELECT {cols}, count(*) FROM {_q(table)} GROUP BY ALL HAVING count(*) > 1 LIMIT 3"
            ).fetchall()
            if dups:
                problems.append(f"{table}: duplicated keys {key}, e.g. {dups}")
        return problems
    finally:
        con.close()


def orphan_files(place: Place) -> list[str]:
    """Data files under the lake that no snapshot of the catalog references (a dry run of
    ducklake_delete_orphaned_files), plus any other stray file under <lake>/main."""
    con = _connect(place, write=True)
    try:
        listed = [
            r[0]
            for r in con.execute(
                "SELECT * FROM ducklake_delete_orphaned_files('wh', dry_run => true, cleanup_all => true)"
            ).fetchall()
        ]
    finally:
        con.close()
    strays = [str(p) for p in (place.lake / "main").rglob("*") if p.is_file() and p.suffix != ".parquet"]
    return sorted(listed + strays)


def current_files(place: Place) -> set[str]:
    from pipelines import warehouse

    con = _connect(place)
    try:
        found = set()
        for table in warehouse.tables(con):
            found |= {
                str(Path(r[0]).resolve())
                for r in con.execute("SELECT data_file FROM ducklake_list_files('wh', ?)", [table]).fetchall()
            }
        return found
    finally:
        con.close()


# --- messages --------------------------------------------------------------------------------------

INPUT_BLAME = re.compile(r"could not be read|cannot be read|unreadable|invalid input|\binput file", re.I)


def message_problems(result: Result, *, command: str) -> list[str]:
    """A failure must be exit 2 with one clear paragraph on stderr: `mayorista <cmd>: error: ...`,
    no traceback, no bare exception dump."""
    problems = []
    if result.returncode != 2:
        problems.append(f"exit code {result.returncode}, expected 2")
    err = result.stderr
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    if f"mayorista {command}: error:" not in err:
        problems.append(f"no 'mayorista {command}: error:' message on stderr")
    raw = re.search(r"_duckdb\.\w+|duckdb\.duckdb\.\w+|polars\.exceptions\.\w+|\bException:", error_text(result))
    if raw:
        problems.append(f"a raw exception ({raw.group(0)}) in the message")
    return problems


def error_text(result: Result) -> str:
    """The error message (from `mayorista X: error:` to the end), without log lines before it."""
    at = result.stderr.find(": error:")
    return result.stderr[at:] if at >= 0 else result.stderr


# --- processes --------------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def maps_contain(pid: int, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def kill_when(proc: subprocess.Popen, ready, *, within: float = 90.0) -> float:
    """SIGKILL `proc` as soon as `ready()` holds (polled every 20 ms), or after `within` seconds at the
    latest: either way it dies mid-run. Returns the seconds waited."""
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < within:
        if ready():
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return time.monotonic() - start


# --- mounts ----------------------------------------------------------------------------------------


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (not root here)")


@contextlib.contextmanager
def tmpfs(where: Path, size: str):
    """A real tmpfs of `size` at `where` (unmounted afterwards); skips the test if it cannot mount."""
    need_root()
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield where
    finally:
        for _attempt in range(20):
            gone = subprocess.run(["umount", str(where)], capture_output=True, text=True)
            if gone.returncode == 0:
                break
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, options: str) -> None:
    done = subprocess.run(["mount", "-o", f"remount,{options}", str(where)], capture_output=True, text=True)
    assert done.returncode == 0, f"remount {options} of {where} failed: {done.stderr}"


def fill(where: Path) -> Path:
    """Fill the filesystem holding `where` until the next write fails with ENOSPC."""
    filler = where / f"filler-{uuid.uuid4().hex[:6]}"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: max(1, len(chunk) // 8)]
    return filler


# --- the faults ledger -------------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected fault. `lost`: previously published data was not intact afterwards; `survived`:
    every check of the case passed for it."""

    name: str
    lost: bool = False
    survived: bool = False


@dataclass
class Ledger:
    injected: int = 0
    survived: int = 0
    lost: int = 0
    lost_names: list[str] = field(default_factory=list)

    def add(self, other: dict) -> None:
        self.injected += other.get("injected", 0)
        self.survived += other.get("survived", 0)
        self.lost += other.get("lost", 0)
        self.lost_names += other.get("lost_names", [])

    def as_dict(self) -> dict:
        return {"injected": self.injected, "survived": self.survived, "lost": self.lost, "lost_names": self.lost_names}

    def line(self) -> str:
        return f"faults: {self.injected} injected, {self.survived} survived, {self.lost} lost"


LEDGER = Ledger()  # this process's totals (one per xdist worker; the controller adds them up)


class Faults:
    """The faults of one test (the `faults` fixture)."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.items: list[Fault] = []

    def inject(self, name: str) -> Fault:
        fault = Fault(f"{self.test}: {name}")
        self.items.append(fault)
        return fault


def assert_intact(
    fault: Fault, before: Fingerprint, place: Place, *, when: str = "", replaced: Pipeline | None = None
) -> Fingerprint:
    """The previously published rows are all there, unchanged (or, for `replaced`, re-published
    whole from the same inputs); no duplicated keys."""
    after = fingerprint(place)
    problems = intact_problems(before, after, replaced=replaced)
    if problems:
        fault.lost = True
        pytest.fail(f"previous good data NOT intact {when}after {fault.name}:\n  " + "\n  ".join(problems))
    dups = duplicate_problems(place)
    if dups:
        fault.lost = True
        pytest.fail(f"duplicated keys {when}after {fault.name}:\n  " + "\n  ".join(dups))
    return after


def assert_clear_failure(result: Result, command: str) -> str:
    problems = message_problems(result, command=command)
    assert not problems, f"{'; '.join(problems)}\n{result}"
    return error_text(result)


def new_runs(before: Fingerprint, after: Fingerprint) -> dict[str, dict]:
    return {k: v for k, v in after.manifests.items() if k not in before.manifests}


def assert_failed_row(before: Fingerprint, after: Fingerprint, pipeline: str, period: str) -> dict:
    """The failed run is recorded in run_manifests: status failed, no snapshot, the reason."""
    rows = [v for v in new_runs(before, after).values() if v["pipeline"] == pipeline and v["period"] == period]
    assert len(rows) == 1, f"expected one new run_manifests row for {pipeline} {period}, found {rows}"
    row = rows[0]
    assert row["status"] == "failed" and row["snapshot_id"] is None, row
    assert row["manifest"].get("reason"), row
    return row


def meters_accounting_problems(place: Place, run_id: str, manifest: dict) -> list[str]:
    """Every row read is accounted for (rows read = ingested + duplicates + superseded + quarantined), in
    the manifest and in the warehouse as published by that run."""
    c = manifest.get("counts", {})
    need = ("rows_read", "ingested", "duplicates_dropped", "superseded", "quarantined", "files_read", "files_skipped")
    missing = [k for k in need if k not in c]
    if missing:
        return [f"{run_id}: counts {missing} missing from the manifest ({sorted(c)})"]
    problems = []
    if c["rows_read"] != c["ingested"] + c["duplicates_dropped"] + c["superseded"] + c["quarantined"]:
        problems.append(
            f"{run_id}: rows_read {c['rows_read']} != ingested {c['ingested']} + duplicates_dropped "
            f"{c['duplicates_dropped']} + superseded {c['superseded']} + quarantined {c['quarantined']}"
        )
    if manifest.get("status") == "published":
        from pipelines import warehouse

        con = _connect(place)
        try:
            stored = con.execute("SELECT count(*) FROM meter_readings WHERE run_id = ?", [run_id]).fetchone()[0]
            stored += (
                con.execute(
                    "SELECT count(*) FROM meter_readings_superseded WHERE source_run = ? AND superseded_by_run <> ?",
                    [run_id, run_id],
                ).fetchone()[0]
                if "meter_readings_superseded" in warehouse.tables(con)
                else 0
            )
            held = con.execute("SELECT count(*) FROM quarantine WHERE line IS NOT NULL").fetchone()[0]
        finally:
            con.close()
        if stored != c["ingested"]:
            problems.append(
                f"{run_id}: the warehouse holds {stored} readings brought by this run, "
                f"the manifest says {c['ingested']} ingested"
            )
        if c["files_skipped"] == 0 and held != c["quarantined"]:  # the run that read every file
            problems.append(
                f"{run_id}: the warehouse holds {held} quarantined rows, the manifest says {c['quarantined']}"
            )
    return problems
