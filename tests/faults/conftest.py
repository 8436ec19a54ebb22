"""Fixtures of the fault-injection suite and its session summary line:

    faults: N injected, N survived, 0 lost

"lost" counts the cases whose previously published data was not intact afterwards; the session
fails if it is not 0. Under xdist each worker counts its own cases and the controller adds them up."""

from __future__ import annotations

import os
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
        return
    if support.LEDGER.lost and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
