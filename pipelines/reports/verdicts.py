"""One verdict per rule and per VPN change, one word for it, everywhere: the letters, `mayorista
summary` and the tables say the same (`cumple` / `no cumple` / `no evaluable`, or met / not met /
not evaluable with `--lang en`).

- a rule is `no evaluable` when the change was never executed (no execution date at all) and the
  rule needs an execution: rule 6(a) (interrogation in the supply month) and NCC-14 14.10 (delivery
  within 2 days of the notification). The reason is shown with it; it is never a red 'no cumple';
- otherwise a rule is `cumple` when the review says ok, else `no cumple` (a date that is present but
  unusable is a finding, not a reason to skip the rule);
- a change is `no cumple` when any of its rules is, else `no evaluable` when any is, else `cumple`.

`delivery_compliance.compliant` is only 14.10 (the 2-day delivery); it is not the change's verdict."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

NEEDS_EXECUTION = ("interrogation", "delivery")
VERDICTS = ("met", "not_met", "not_evaluable")  # keys of verdict.<key> in the string catalogues


def rule_sql(with_changes: bool) -> str:
    """Each review row, all its columns (the evidence's detail_key and detail_args where the snapshot
    has them), with its verdict key (`{r}`: vpn_change_review; `{c}`: vpn_changes, the month's changes
    with their dates, when the warehouse has it)."""
    never_executed = "coalesce(trim(c.executed_on), '') = ''" if with_changes else "false"
    join = (
        "LEFT JOIN (SELECT * FROM {c}) AS c ON c.month = r.month AND c.change_id = r.change_id" if with_changes else ""
    )
    rules = ", ".join(f"'{rule}'" for rule in NEEDS_EXECUTION)
    return (
        "SELECT r.*, "
        f"CASE WHEN r.ok THEN 'met' WHEN r.rule IN ({rules}) AND {never_executed} THEN 'not_evaluable' "
        "ELSE 'not_met' END AS verdict "
        f"FROM (SELECT * FROM {{r}}) AS r {join}"
    )


def change_sql(with_changes: bool) -> str:
    """One row per (month, change_id, participant) with the change's verdict key."""
    return (
        "SELECT month, change_id, participant, CASE WHEN bool_or(verdict = 'not_met') THEN 'not_met' "
        "WHEN bool_or(verdict = 'not_evaluable') THEN 'not_evaluable' ELSE 'met' END AS verdict "
        f"FROM ({rule_sql(with_changes)}) GROUP BY ALL"
    )
