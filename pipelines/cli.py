"""`mayorista`: the command line. It only parses arguments and calls the pipeline functions, so the
CLI and the Airflow DAGs run exactly the same code. Heavy libraries are imported per command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipelines.errors import MayoristaError, environment_fault
from pipelines.periods import Month, Quarter

_WAREHOUSE_HELP = (
    "warehouse catalog: a SQLite file or postgresql://user:pass@host:port/db "
    "(default $MAYORISTA_WAREHOUSE or data/warehouse.sqlite)"
)


def _warehouse(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", default=None, help=_WAREHOUSE_HELP)


def _location(text: str) -> Path | str:
    """A folder, or an s3:// landing zone kept as text (a Path would fold its `//`)."""
    return text if text.startswith(("s3://", "s3a://")) else Path(text)


def _common(parser: argparse.ArgumentParser, period: str) -> None:
    parser.add_argument(f"--{period}", required=True, help="YYYY-MM")
    parser.add_argument(
        "--input", required=True, type=_location, help="directory with the input files, or s3://bucket/prefix"
    )
    _warehouse(parser)
    parser.add_argument(
        "--lake",
        default=None,
        help="where new data files go: a path or a URI such as s3://bucket/lake (default data/lake)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mayorista", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ncc11 = sub.add_parser("ncc11", help="quarterly NCC-11 wholesale cost report")
    _common(ncc11, "quarter")

    expost = sub.add_parser(
        "expost", help="an NCC-11 quarter's projection against metered energy (reads only the warehouse)"
    )
    expost.add_argument("--quarter", required=True, help="YYYY-MM, first month of the programming quarter")
    _warehouse(expost)
    expost.add_argument(
        "--lake",
        default=None,
        help="where new data files go: a path or a URI such as s3://bucket/lake (default data/lake)",
    )

    meters = sub.add_parser("meters", help="commercial metering (SMEC)").add_subparsers(dest="action", required=True)
    _common(meters.add_parser("ingest", help="ingest a month of 15-minute readings"), "month")

    delivery = sub.add_parser("delivery", help="VPN changes and Direct@mm deliveries").add_subparsers(
        dest="action", required=True
    )
    _common(delivery.add_parser("check", help="review a month's VPN changes and deliveries"), "month")

    report = sub.add_parser("report", help="write a report (self-contained HTML and PDF) under <lake>/reports/")
    kinds = report.add_subparsers(dest="action", required=True)
    ncc11_report = kinds.add_parser("ncc11", help="an NCC-11 quarter, or the annual Informe of a tariff year")
    which = ncc11_report.add_mutually_exclusive_group(required=True)
    which.add_argument("--quarter", help="YYYY-MM, first month of the programming quarter")
    which.add_argument("--year", help="YYYY: the annual Informe (tariff quarters Feb, May, Aug, Nov)")
    for kind, what in (("meters", "the metering month report"), ("delivery", "the month's Direct@mm delivery letters")):
        kinds.add_parser(kind, help=what).add_argument("--month", required=True, help="YYYY-MM")
    for parser_ in kinds.choices.values():
        parser_.add_argument(
            "--as-of",
            dest="as_of",
            default=None,
            metavar="RUN_ID",
            help="render the warehouse as that run published it (see `mayorista history`)",
        )
        parser_.add_argument(
            "--lang",
            choices=["es", "en"],
            default="es",
            help="the document's language: es (default, the market's) or en (files get `.en` before the extension)",
        )
        _warehouse(parser_)
        parser_.add_argument("--lake", default=None, help="where reports go: <lake>/reports/ (default data/lake)")

    sample = sub.add_parser("sample", help="regenerate the bundled sample data (deterministic)")
    sample.add_argument("--out", type=Path, default=None, help="default data/sample")

    backfill = sub.add_parser("backfill", help="re-run a range of past periods without a scheduler")
    backfill.add_argument("domain", choices=["ncc11", "expost", "meters", "delivery"])
    backfill.add_argument(
        "--from",
        dest="start",
        required=True,
        help="first period: YYYY-MM (ncc11, expost: first month of a quarter; meters/delivery: also YYYY-MM-DD)",
    )
    backfill.add_argument("--to", dest="end", required=True, help="last period, inclusive, same form")
    backfill.add_argument(
        "--landing", type=_location, default=None, help="inputs root (default $MAYORISTA_LANDING or data/sample)"
    )
    _warehouse(backfill)
    backfill.add_argument("--lake", default=None)
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar")

    summary = sub.add_parser("summary", help="print what the warehouse holds for analysts")
    _warehouse(summary)

    sql = sub.add_parser(
        "sql",
        help="query the warehouse read-only (an SQL session when no QUERY is given); queries only: "
        "no ATTACH, SET, INSTALL/LOAD, COPY, file reads or BEGIN (docs/warehouse.md)",
    )
    _warehouse(sql)
    sql.add_argument("--csv", action="store_true", help="CSV output: a header row, NULL as an empty field")
    sql.add_argument(
        "query",
        nargs="?",
        default=None,
        help="SQL statements separated by ';' (every result is printed); omit it for a session on standard input",
    )

    history = sub.add_parser("history", help="a period's runs: run id, start, status, snapshot, input hashes")
    history.add_argument("pipeline", choices=["ncc11", "expost", "meters", "delivery"])
    history.add_argument("--period", required=True, help="YYYY-MM (ncc11, expost: the quarter's first month)")
    _warehouse(history)

    maintain = sub.add_parser(
        "maintain", help="merge small files, expire old snapshots (never NCC-11's), delete unneeded files"
    )
    _warehouse(maintain)
    maintain.add_argument(
        "--retention-days",
        type=int,
        default=None,
        help="keep snapshots this recent (default $MAYORISTA_SNAPSHOT_RETENTION_DAYS or 90)",
    )
    maintain.add_argument(
        "--min-age-hours",
        dest="min_age_hours",
        default=None,
        help="the safe age: never delete a file younger than this, so that a run in progress or a running "
        "query keeps its files (default $MAYORISTA_MAINTENANCE_MIN_AGE_HOURS or 24; 0 only when nothing runs)",
    )
    maintain.add_argument(
        "--check",
        action="store_true",
        help="change nothing: verify every data file of the current snapshot (present, recorded size, "
        "Parquet footer) and list the damaged ones (exit 2 if any)",
    )
    maintain.add_argument(
        "--repair",
        action="store_true",
        help="take the partitions of damaged data files out of the current snapshot (one transaction), "
        "then say which periods to re-run to republish them whole",
    )
    return parser


def run(args: argparse.Namespace) -> str:
    if args.command == "ncc11":
        from pipelines.ncc11 import job

        return job.run(Quarter.parse(args.quarter), args.input, warehouse=args.warehouse, lake_root=args.lake).summary
    if args.command == "expost":
        from pipelines.ncc11 import expost

        return expost.run(Quarter.parse(args.quarter), warehouse=args.warehouse, lake_root=args.lake).summary
    if args.command == "meters":
        from pipelines.metering import job as metering

        return metering.ingest_month(
            Month.parse(args.month), args.input, warehouse=args.warehouse, lake_root=args.lake
        ).summary
    if args.command == "delivery":
        from pipelines.delivery import job as delivery

        return delivery.check_month(
            Month.parse(args.month), args.input, warehouse=args.warehouse, lake_root=args.lake
        ).summary
    if args.command == "report":
        return _report(args)
    if args.command == "sample":
        from pipelines import sample

        return sample.generate_all(args.out)
    if args.command == "backfill":
        from pipelines import backfill

        result = backfill.backfill(
            args.domain,
            args.start,
            args.end,
            landing=args.landing,
            warehouse=args.warehouse,
            lake_root=args.lake,
            progress=not args.no_progress,
        )
        if result.failed:
            raise MayoristaError(result.summary)
        return result.summary
    if args.command == "summary":
        from pipelines import summary

        return summary.render(args.warehouse)
    if args.command == "sql":
        from pipelines import analyst

        if args.query is None:
            analyst.session(sys.stdin, sys.stdout, args.warehouse, csv=args.csv)
            return ""
        return analyst.run_query(args.query, args.warehouse, csv=args.csv)
    if args.command == "history":
        from pipelines import analyst

        return analyst.history(args.pipeline, args.period, args.warehouse)
    if args.command == "maintain":
        from pipelines import maintenance

        if args.repair:
            return maintenance.repair(args.warehouse)
        if args.check:
            checked = maintenance.check(args.warehouse)
            if checked.bad:
                raise MayoristaError(checked.summary)
            return checked.summary
        return maintenance.maintain(
            args.warehouse, retention_days=args.retention_days, min_age_hours=args.min_age_hours
        ).summary
    raise AssertionError(args.command)


def _report(args: argparse.Namespace) -> str:
    """`mayorista report ...`: the same entry the DAGs and the runs call (a period, a snapshot, a
    language), then print the files (and why there is no PDF, if so). A period never published exits 2."""
    from pipelines.errors import InputError

    how = {"as_of": args.as_of, "lang": args.lang, "warehouse": args.warehouse, "lake_root": args.lake}
    if args.action == "ncc11":
        from pipelines.reports import ncc11

        if args.year is not None:
            if not (args.year.isdigit() and len(args.year) == 4):
                raise InputError(f"--year must be YYYY (e.g. 2026), got {args.year!r}")
            files = ncc11.render_year(int(args.year), **how)
        else:
            files = ncc11.render_quarter(Quarter.parse(args.quarter), **how)
    elif args.action == "meters":
        from pipelines.reports import meters

        files = meters.render(Month.parse(args.month), **how)
    else:
        from pipelines.reports import delivery

        letters = delivery.render(Month.parse(args.month), **how)
        if not letters:
            return f"no delivery letters for {args.month}: no VPN change was reviewed for that month"
        files = list(letters.values())
    return "\n".join(f.describe() for f in files)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("MAYORISTA_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if "MAYORISTA_LOG_LEVEL" not in os.environ and sys.stderr.isatty() and args.command != "backfill":
        # a person at a terminal sees each step start and end (a month of readings takes a while; a
        # backfill shows its progress bar instead); scripts and pipes keep the quiet default
        logging.getLogger("pipelines.manifest").setLevel(logging.INFO)
    try:
        from pipelines import config

        config.lock_wait_s()  # a bad MAYORISTA_LOCK_WAIT_S stops the command before any work
        out = run(args)
        if out:
            print(out)
    except MayoristaError as exc:
        known = _endpoint_fault(exc) or _damaged_file(exc, args)
        print(f"mayorista {args.command}: error: {known or exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a failure of the machine that no step translated: still one clear sentence
        fault = environment_fault(exc, getattr(exc, "filename", None) or "?", f"run {args.command}")
        if fault is None:
            raise
        print(f"mayorista {args.command}: error: {fault}", file=sys.stderr)
        return 2
    except Exception as exc:  # the PostgreSQL catalog's server gone mid-command; a damaged data file
        known = _endpoint_fault(exc) or _catalog_lost(exc, args) or _damaged_file(exc, args)
        if known is None:
            raise
        print(f"mayorista {args.command}: error: {known}", file=sys.stderr)
        return 2
    return 0


def _endpoint_fault(exc: BaseException) -> MayoristaError | None:
    """The one-sentence fault when `exc` says the S3 endpoint of the lake or the landing zone is
    unreachable, refuses the credentials or lacks the bucket (a read of `sql` or `report` included):
    the machine's fault, never taken for a damaged data file."""
    if "pipelines.objectstore" not in sys.modules:  # nothing reached an S3 endpoint
        return None
    from pipelines import objectstore

    if isinstance(exc, objectstore.EndpointFault):
        return exc
    return objectstore.fault(exc, None, "read the warehouse's data files")


def _catalog_lost(exc: Exception, args: argparse.Namespace) -> MayoristaError | None:
    """The one-sentence fault when `exc` is the warehouse's PostgreSQL catalog lost mid-command."""
    if "duckdb" not in sys.modules:  # no warehouse was opened: not a catalog's error
        return None
    from pipelines import warehouse

    return warehouse.catalog_lost(exc, getattr(args, "warehouse", None))


def _damaged_file(exc: BaseException, args: argparse.Namespace) -> MayoristaError | None:
    """A read that failed on a damaged or missing data file of the warehouse (any command that reads
    it: sql, report, a run recomputing its period): the table, partition, file and how to repair."""
    chain = f"{exc} {exc.__cause__} {exc.__context__}".lower()
    if (
        "parquet" not in chain
        or args.command == "sample"
        or getattr(args, "check", False)
        or getattr(args, "repair", False)
    ):
        return None  # every error of a damaged data file names a Parquet file (or its footer)
    from pipelines import maintenance

    return maintenance.damaged_file_error(exc, getattr(args, "warehouse", None))


if __name__ == "__main__":
    sys.exit(main())
