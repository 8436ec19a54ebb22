"""Hostile input (reliability issue, fault injection 6): values that are not numbers, names that look
like paths, files that are not CSV. Each run stops with exit 2 and a message naming what is wrong
(no traceback), the previous results stay intact, the failed run is recorded, and nothing is written
outside the lake."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.faults import support


@pytest.fixture
def hostile(baseline: support.Place, tmp_path: Path) -> support.Place:
    """A copy of the baseline with its own copy of the inputs, to spoil."""
    return support.copy_place(baseline, tmp_path / "case", copy_inputs=True)


def _check_failed(
    place: support.Place, fault: support.Fault, before: support.Fingerprint, pipeline: str, result: support.Result
) -> str:
    after = support.assert_intact(fault, before, place)
    text = support.assert_clear_failure(result, pipeline)
    support.assert_failed_row(before, after, pipeline, support.PIPELINES[pipeline].period)
    return text


# --- NaN / inf prices ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "inf"])
def test_a_price_that_is_not_a_number_is_named_with_its_line(value, hostile, baseline_fp, faults):
    path = hostile.inputs / "ncc11" / "nodal_prices.csv"
    lines = path.read_text().splitlines(keepends=True)
    node, hour, _ = lines[10].rstrip("\n").split(",")
    lines[10] = f"{node},{hour},{value}\n"  # line 11 of the file (the header is line 1)
    path.write_text("".join(lines))
    fault = faults.inject(f"nodal_prices.csv price {value} on line 11")
    result = hostile.run("ncc11")
    text = _check_failed(hostile, fault, baseline_fp, "ncc11", result)
    assert "nodal_prices" in text and "price_usd_mwh" in text, f"file or column not named:\n{result}"
    assert re.search(r"line\W{0,4}11\b", text), f"the line (11) is not named:\n{result}"
    fault.survived = True


# --- names that look like paths ----------------------------------------------------------------------


def _files(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.mark.parametrize(
    "pipeline,participant", [("meters", "../../evil"), ("meters", "A/B"), ("delivery", "../../evil")]
)
def test_a_participant_named_like_a_path_writes_nothing_outside_the_lake(
    pipeline, participant, hostile, baseline_fp, tmp_path, faults
):
    path = hostile.inputs / "smec" / "metering_points.csv"
    text = path.read_text().replace(",COMLUZ,", f",{participant},")
    path.write_text(text)
    changes = hostile.inputs / "smec" / "vpn_changes.csv"  # delivery letters are written per participant
    changes.write_text(changes.read_text().replace(",INDPAC,", f",{participant},"))
    watched = tmp_path.parent  # this session's temporary root: the case and its neighbours
    before_files = _files(watched)
    fault = faults.inject(f"{pipeline}: participant {participant!r} in metering_points.csv")
    result = hostile.run(pipeline)
    new = _files(watched) - before_files
    allowed = (str(hostile.lake) + os.sep, str(hostile.scratch) + os.sep, str(hostile.wh))
    outside = sorted(p for p in new if not p.startswith(allowed))
    assert not outside, f"files written outside the lake: {outside}"
    escaped = [
        p
        for p in _files(watched)
        if "evil" in Path(p).name and not p.startswith((str(hostile.inputs) + os.sep, str(hostile.lake) + os.sep))
    ]
    assert not escaped, f"a file named after the participant appeared outside the lake: {escaped}"
    inside = [p for p in new if p.startswith(str(hostile.lake) + os.sep)]
    assert all(".." not in Path(p).relative_to(hostile.lake).parts for p in inside), inside
    assert "Traceback" not in result.stderr, result
    if result.returncode == 0:  # accepted and stored under a safe (encoded) name
        after = support.fingerprint(hostile)
        changed = [
            t
            for t, v in baseline_fp.exact.items()
            if t not in support.PIPELINES[pipeline].tables and after.exact.get(t) != v
        ]
        if changed:
            fault.lost = True
        assert not changed, f"other pipelines' tables changed: {changed}"
        assert not support.duplicate_problems(hostile)
    else:
        text = _check_failed(hostile, fault, baseline_fp, pipeline, result)
        assert "metering_points" in text and participant in text, f"the value or file is not named:\n{result}"
    fault.survived = True


# --- files that are not the CSV they should be -----------------------------------------------------------


def _spoil(path: Path, how: str) -> None:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "semicolons":
        path.write_text(text.replace(",", ";"))
    elif how == "ragged":
        lines[5] = lines[5].rstrip("\n") + ",extra,fields\n"
        path.write_text("".join(lines))
    elif how == "binary":
        path.write_bytes(bytes(range(256)) * 64 + b"\x00\xff\xfe" * 100)
    else:
        raise AssertionError(how)


MALFORMED = [("ncc11", "ncc11/nodal_prices.csv", how) for how in ("empty", "semicolons", "ragged", "binary")] + [
    ("meters", "smec/metering_points.csv", "semicolons"),
    ("meters", "smec/metering_points.csv", "binary"),
    ("delivery", "smec/vpn_changes.csv", "empty"),
    ("delivery", "smec/vpn_changes.csv", "ragged"),
]


@pytest.mark.parametrize("pipeline,file,how", MALFORMED)
def test_a_malformed_file_stops_the_run_with_a_message(pipeline, file, how, hostile, baseline_fp, faults):
    _spoil(hostile.inputs / file, how)
    fault = faults.inject(f"{pipeline}: {how} {file}")
    result = hostile.run(pipeline)
    text = _check_failed(hostile, fault, baseline_fp, pipeline, result)
    assert Path(file).stem in text, f"the file is not named:\n{result}"
    fault.survived = True
