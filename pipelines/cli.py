"""`mayorista`: the command line. It only parses arguments and calls the pipeline functions, so the
CLI and the Airflow DAGs run exactly the same code. Heavy libraries are imported per command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import MayoristaError


def _common(parser: argparse.ArgumentParser, period: str) -> None:
    parser.add_argument(f"--{period}", required=True, help="YYYY-MM")
    parser.add_argument("--input", required=True, type=Path, help="directory with the input files")
    parser.add_argument("--warehouse", type=Path, default=None, help="DuckDB file (default data/warehouse.duckdb)")
    parser.add_argument("--lake", default=None, help="Parquet lake root: a path or a URI such as s3://bucket/lake (default data/lake)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mayorista", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    ncc11 = sub.add_parser("ncc11", help="quarterly NCC-11 wholesale cost report")
    _common(ncc11, "quarter")

    meters = sub.add_parser("meters", help="commercial metering (SMEC)").add_subparsers(dest="action", required=True)
    _common(meters.add_parser("ingest", help="ingest a month of 15-minute readings"), "month")

    delivery = sub.add_parser("delivery", help="VPN changes and Direct@mm deliveries").add_subparsers(dest="action", required=True)
    _common(delivery.add_parser("check", help="review a month's VPN changes and deliveries"), "month")

    sample = sub.add_parser("sample", help="regenerate the bundled sample data (deterministic)")
    sample.add_argument("--out", type=Path, default=None, help="default data/sample")

    backfill = sub.add_parser("backfill", help="re-run a range of past periods without a scheduler")
    backfill.add_argument("domain", choices=["ncc11", "meters", "delivery"])
    backfill.add_argument("--from", dest="start", required=True,
                          help="first period: YYYY-MM (ncc11: first month of a quarter; meters/delivery: also YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", required=True, help="last period, inclusive, same form")
    backfill.add_argument("--landing", type=Path, default=None, help="inputs root (default $MAYORISTA_LANDING or data/sample)")
    backfill.add_argument("--warehouse", type=Path, default=None)
    backfill.add_argument("--lake", default=None)
    backfill.add_argument("--no-progress", action="store_true", help="no progress bar")

    summary = sub.add_parser("summary", help="print what the warehouse holds for analysts")
    summary.add_argument("--warehouse", type=Path, default=None)
    return parser


def run(args: argparse.Namespace) -> str:
    if args.command == "ncc11":
        from pipelines.ncc11 import job

        return job.run(args.quarter, args.input, warehouse=args.warehouse, lake_root=args.lake).summary
    if args.command == "meters":
        from pipelines.metering import job as metering

        return metering.ingest_month(args.month, args.input, warehouse=args.warehouse, lake_root=args.lake).summary
    if args.command == "delivery":
        from pipelines.delivery import job as delivery

        return delivery.check_month(args.month, args.input, warehouse=args.warehouse, lake_root=args.lake).summary
    if args.command == "sample":
        from pipelines import sample

        return sample.generate_all(args.out)
    if args.command == "backfill":
        from pipelines import backfill

        result = backfill.backfill(args.domain, args.start, args.end, landing=args.landing, warehouse=args.warehouse,
                                   lake_root=args.lake, progress=not args.no_progress)
        if result.failed:
            raise MayoristaError(result.summary)
        return result.summary
    if args.command == "summary":
        from pipelines import summary

        return summary.render(args.warehouse)
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(run(args))
    except MayoristaError as exc:
        print(f"mayorista {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
