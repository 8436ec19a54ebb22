"""Start-up of the command line (run: `uv run python bench/sql_startup.py [--repeat N]`; issue #25).

Builds a small warehouse in a temporary folder (the sample NCC-11 quarter, published by `mayorista
ncc11`), then measures, interleaved in one run (each figure the median of N rounds, every command run
once per round, so that all of them see the same machine state on a shared 2-core machine):

- the floor: bare Python DuckDB doing what `mayorista sql` does for one query (import duckdb, LOAD the
  DuckLake and SQLite extensions, installed beforehand from the wheels' files, ATTACH the catalog
  read-only, run the query, print CSV);
- `mayorista sql --csv QUERY`, `mayorista sql QUERY` (the table view), and a session (`mayorista sql`
  with the query on standard input; and with nothing on it: the session's start alone);
- `mayorista --help`, and each subcommand's import: `import pipelines.cli` plus the modules its
  handler imports (`run()` in pipelines/cli.py imports them per command, so `mayorista X --help`
  alone would not show them).

Prints a table and the ratio `mayorista sql --csv` / floor (target <= 1.5). `--baseline DIR` (a copy
of another commit's tree, e.g. `git archive main | tar -x -C DIR`) adds every `mayorista` and import
case again, run with that tree's `pipelines` (PYTHONPATH), in the same rounds: a before/after
comparison that sees the same machine load."""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

QUERY = "select count(*) from ncc11_energy"

# what `pipelines.cli.run` imports for each subcommand (keep in step with it)
HANDLER_IMPORTS = {
    "ncc11": "pipelines.ncc11.job",
    "expost": "pipelines.ncc11.expost",
    "meters": "pipelines.metering.job",
    "delivery": "pipelines.delivery.job",
    "report ncc11": "pipelines.reports.ncc11",
    "report meters": "pipelines.reports.meters",
    "report delivery": "pipelines.reports.delivery",
    "sample": "pipelines.sample, pipelines.delivery.sample, pipelines.metering.sample, pipelines.ncc11.sample",
    "backfill": "pipelines.backfill",
    "summary": "pipelines.summary",
    "sql, history": "pipelines.analyst",
    "maintain": "pipelines.maintenance",
}

BARE = """
import csv, sys, duckdb
catalog, query = sys.argv[1:]
con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
con.execute("LOAD ducklake")
con.execute("LOAD sqlite_scanner")
con.execute(f"ATTACH 'ducklake:sqlite:{catalog}' AS wh (READ_ONLY)")
con.execute("USE wh")
rel = con.sql(query)
out = csv.writer(sys.stdout, lineterminator="\\n")
out.writerow(rel.columns)
out.writerows(rel.fetchall())
"""


def _install_extensions() -> None:
    """Install the two extensions from the wheels' files (once, untimed), so the floor only LOADs them."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for package, name in (("duckdb_extension_ducklake", "ducklake"), ("duckdb_extension_sqlite", "sqlite")):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, f"{package} is not installed"
        path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        con.execute("INSTALL '" + str(path).replace("'", "''") + "'")
    con.close()


def _timed(cmd: list[str], stdin: str | None, env: dict[str, str] | None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{done.stderr}")
    return wall, done.stdout


def _build(root: Path, mayorista: str) -> Path:
    """The sample quarter (4 distributors), published once: a warehouse of a few hundred rows."""
    from pipelines.ncc11 import sample

    inputs = sample.generate(root / "in", sample.SAMPLE_QUARTER)
    catalog = root / "warehouse.sqlite"
    subprocess.run(
        [
            mayorista,
            "ncc11",
            "--quarter",
            sample.SAMPLE_QUARTER,
            "--input",
            str(inputs),
            "--warehouse",
            str(catalog),
            "--lake",
            str(root / "lake"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds (each figure is their median)")
    parser.add_argument("--no-imports", action="store_true", help="skip the subcommands' import times")
    parser.add_argument("--baseline", type=Path, default=None, help="another tree to compare with (see above)")
    options = parser.parse_args()

    python = sys.executable
    mayorista = str(Path(python).with_name("mayorista"))
    with tempfile.TemporaryDirectory(prefix="sql-startup-") as tmp:
        catalog = _build(Path(tmp), mayorista)
        _install_extensions()
        sql = [mayorista, "sql", "--warehouse", str(catalog)]
        floor_cmd = [
            python,
            "-c",
            BARE,
            str(catalog.resolve()),
            QUERY,
        ]
        # (label, command, standard input)
        cases: list[tuple[str, list[str], str | None]] = [
            ("floor: bare DuckDB, one query", floor_cmd, None),
            ("mayorista sql --csv QUERY", [*sql, "--csv", QUERY], None),
            ("mayorista sql QUERY (table)", [*sql, QUERY], None),
            ("mayorista sql (session, QUERY; on stdin)", sql, QUERY + ";\n"),
            ("mayorista sql (session, empty stdin)", sql, ""),
            ("mayorista --help", [mayorista, "--help"], None),
            ("python -c pass (the interpreter)", [python, "-c", "pass"], None),
        ]
        if not options.no_imports:
            cases += [
                # -P: the current folder does not come first on sys.path, so --baseline's PYTHONPATH wins
                (f"import: {command}", [python, "-P", "-c", f"import pipelines.cli, {modules}"], None)
                for command, modules in HANDLER_IMPORTS.items()
            ]
        envs = {label: None for label, _, _ in cases}
        if options.baseline is not None:
            baseline_env = {**os.environ, "PYTHONPATH": str(options.baseline.resolve())}
            for label, cmd, stdin in list(cases):
                if label.startswith(("mayorista", "import")):
                    cases.append((f"baseline: {label}", cmd, stdin))
                    envs[f"baseline: {label}"] = baseline_env
        times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        outputs: dict[str, str] = {}
        for _ in range(options.repeat):
            for label, cmd, stdin in cases:
                wall, out = _timed(cmd, stdin, envs[label])
                times[label].append(wall)
                outputs[label] = out
        assert outputs["floor: bare DuckDB, one query"].split() == outputs["mayorista sql --csv QUERY"].split(), outputs

    medians = {label: statistics.median(values) for label, values in times.items()}
    floor = medians["floor: bare DuckDB, one query"]
    width = max(map(len, medians))
    print(f"{'what':<{width}}  median s  min s   x floor   ({options.repeat} rounds, interleaved)")
    for label, values in times.items():
        print(f"{label:<{width}}  {medians[label]:8.3f}  {min(values):5.3f}  {medians[label] / floor:6.2f}")
    ratio = medians["mayorista sql --csv QUERY"] / floor
    print(f"\nratio mayorista sql --csv / bare DuckDB: {ratio:.2f} (target <= 1.5)")
    if "baseline: mayorista sql --csv QUERY" in medians:
        print(f"baseline's ratio: {medians['baseline: mayorista sql --csv QUERY'] / floor:.2f}")


if __name__ == "__main__":
    main()
