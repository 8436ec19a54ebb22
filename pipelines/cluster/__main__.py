"""`python -m pipelines.cluster`: start the cluster, run the demo's periods through it, print where each
task instance ran, compare the warehouse with a single-machine run, and stop everything it started.

Run by `make cluster` through `.ci/cluster`, which starts PostgreSQL and sets MAYORISTA_CLUSTER_POSTGRES_URL
(a role that may create databases). Exit status: 0 all ran and the warehouses are equal, 1 a run failed
or rows differ, 2 the machine could not run the cluster."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from pipelines import config
from pipelines.cluster.compare import compare_warehouses
from pipelines.cluster.deployment import (
    DAYS,
    DELIVERY_DATE,
    MONTH,
    QUARTERS,
    Cluster,
    report_tasks,
    running,
    single_machine,
)
from pipelines.errors import MayoristaError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.cluster", description=__doc__)
    parser.add_argument("--root", type=Path, default=config.ROOT / ".cluster", help="working folders (emptied first)")
    parser.add_argument(
        "--one-worker-too",
        action="store_true",
        help="also run the month's backfill with worker-b stopped first, to compare wall times",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=DAYS,
        choices=range(1, DAYS + 1),
        metavar="1-31",
        help="backfill March 1 to this day",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    server = os.environ.get("MAYORISTA_CLUSTER_POSTGRES_URL", "")
    if not server:
        print("cluster: set MAYORISTA_CLUSTER_POSTGRES_URL (make cluster does, through .ci/cluster)", file=sys.stderr)
        return 2
    shutil.rmtree(args.root, ignore_errors=True)
    args.root.mkdir(parents=True)
    shutil.copytree(config.ROOT / "data" / "sample", args.root / "landing")
    try:
        with running(server, args.root) as cluster:
            return _run(cluster, args)
    except MayoristaError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 2


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    began = time.monotonic()
    cluster.start()
    api = cluster.api
    dags = ("ncc11_quarterly", "meter_readings", "vpn_delivery_monthly")
    for dag_id in dags:
        api.wait_dag(dag_id)
    for dag_id in dags[:2]:
        api.unpause(dag_id)
    print(
        f"cluster up in {time.monotonic() - began:.0f} s: {', '.join(f'{s.name} pid {s.pid}' for s in cluster.services.values())}",
        flush=True,
    )

    ids = {api.trigger("ncc11_quarterly", when, {"quarter": q}, f"cluster__{q}") for q, when in QUARTERS}
    api.wait_runs("ncc11_quarterly", ids, len(ids), 1800)

    figures = {}
    if args.one_worker_too:
        cluster.services["worker-b"].stop()
        figures["1 worker"] = cluster.backfill(args.days, reprocess=False)
        cluster.start_worker("worker-b")
    figures["2 workers"] = cluster.backfill(args.days, reprocess=args.one_worker_too)

    api.unpause("vpn_delivery_monthly")
    run = api.trigger("vpn_delivery_monthly", DELIVERY_DATE, {"month": MONTH}, f"cluster__{MONTH}")
    api.wait_runs("vpn_delivery_monthly", {run}, 1, 1800)

    on, skipped, failures = report_tasks(api, dags)
    print(
        f"summary: {sum(on.values())} task instances ran, "
        + ", ".join(f"{w} {on[w]}" for w in sorted(on))
        + f"; {skipped} skipped (short-circuited); {len(failures)} failed"
    )
    for what, seconds in figures.items():
        print(
            f"backfill of {args.days} daily meter runs ({MONTH}-01..{MONTH}-{args.days:02d}) with {what}: {seconds:.0f} s"
        )
    for line in failures:
        print(f"FAILED {line}")
    cluster.stop()
    result = compare_warehouses(cluster.catalog, single_machine(cluster.root / "single"), cluster.lake)
    for line in result.lines:
        print(line)
    return 1 if failures or not result.equal else 0


if __name__ == "__main__":
    sys.exit(main())
