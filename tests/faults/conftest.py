"""Fixtures of the fault-injection suite and its session summary line:

    faults: N injected, N survived, 0 lost

"lost" counts the cases whose previously published data was not intact afterwards; the session
fails if it is not 0. Under xdist each worker counts its own cases and the controller adds them up."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.faults import support


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> support.Place:
    """One good warehouse with every pipeline's results (built once per session, shared by workers)."""
    kept = os.environ.get("MAYORISTA_FAULTS_BASELINE")  # a folder to keep it in between sessions (development)
    if kept:
        return support.build_baseline(Path(kept))
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, common to every worker
    return support.build_baseline(base / "faults-baseline")


@pytest.fixture(scope="session")
def baseline_fp(baseline: support.Place) -> support.Fingerprint:
    return support.fingerprint(baseline)


@pytest.fixture
def place(baseline: support.Place, tmp_path: Path) -> support.Place:
    """This case's own copy of the baseline warehouse (catalog + lake) and a fresh scratch root."""
    return support.copy_place(baseline, tmp_path / "case")


@pytest.fixture
def faults(request: pytest.FixtureRequest):
    """Record the faults a test injects; they count in the session summary."""
    case = support.Faults(request.node.name)
    yield case
    report = getattr(request.node, "_faults_call_report", None)
    passed = report is not None and report.passed
    for fault in case.items:
        support.LEDGER.injected += 1
        if fault.lost:
            support.LEDGER.lost += 1
            support.LEDGER.lost_names.append(fault.name)
        elif fault.survived and passed:
            support.LEDGER.survived += 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item._faults_call_report = report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput["faults"] = support.LEDGER.as_dict()
        workerinput = session.config.workerinput
        if not workerinput.get("faults_summary_on_controller"):
            _last_worker_prints(workerinput)
        return
    if support.LEDGER.lost and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _last_worker_prints(workerinput: dict) -> None:
    """`pytest -n 2` over tests/ (as `make test` runs it): the controller never loads this conftest
    (it does not collect), so the workers add up their counts in a file and the last one to finish
    writes the summary line to the session's stderr (which xdist workers share with the controller)."""
    path = Path(tempfile.gettempdir()) / f"mayorista-faults-{workerinput['testrunuid']}.json"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        totals = json.loads(path.read_text()) if path.exists() else {"workers": 0}
        ledger = support.Ledger(**{k: v for k, v in totals.items() if k != "workers"})
        ledger.add(support.LEDGER.as_dict())
        workers = totals["workers"] + 1
        path.write_text(json.dumps({"workers": workers, **ledger.as_dict()}))
    if workers >= int(workerinput.get("workercount", 1)):
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
        if ledger.injected:
            lost = "".join(f"\n  LOST: {name}" for name in ledger.lost_names)
            os.write(2, f"\n{ledger.line()}{lost}\n".encode())


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # xdist controller, when it loaded this conftest
    node.workerinput["faults_summary_on_controller"] = True


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # xdist controller: a worker finished
    counts = getattr(node, "workeroutput", {}).get("faults")
    if counts:
        support.LEDGER.add(counts)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if getattr(config, "workeroutput", None) is not None or not support.LEDGER.injected:
        return
    terminalreporter.write_sep("-", "fault injection")
    terminalreporter.write_line(support.LEDGER.line())
    for name in support.LEDGER.lost_names:
        terminalreporter.write_line(f"  LOST: {name}")
