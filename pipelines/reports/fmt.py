"""How every figure and date of a report is written: one module, no locale of the machine.

Guatemala writes numbers with a decimal point and comma thousands (1,234,567.89), as English does,
so both languages share these functions. The rounding rules, stated in every document's notes:

- amounts (USD, MWh, kW, counts) are rounded half away from zero (`ROUND_HALF_UP`), which is what
  SQL's `round()` does, so `mayorista summary` and `mayorista sql` print the same digits;
- percentages are cut (floored) to 2 decimals, never rounded up: 99.995 % shows 99.99 %, so a
  figure below 100 % never shows as 100.00 % (NCC-14's rule 6(a) requires 100 %; the delivery
  review's evidence floors the same way).

Dates: DD/MM/AAAA in prose (`prose_date`), ISO 8601 in tables (`iso`)."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

MISSING = "—"  # a value that does not exist (NULL, a zero denominator): never 0, and nothing else


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return Decimal(repr(value))  # the shortest repr: 99.9 stays 99.9, not 99.8999...
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return None


def rounded(value: object, decimals: int = 0) -> Decimal | None:
    """An amount as displayed: half away from zero to `decimals` places."""
    d = _decimal(value)
    return None if d is None else d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def floored_pct(value: object, decimals: int = 2) -> Decimal | None:
    """A percentage as displayed: cut (towards minus infinity) to `decimals` places."""
    d = _decimal(value)
    return None if d is None else d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_FLOOR)


def _group(d: Decimal, decimals: int) -> str:
    if d == 0:
        d = abs(d)  # never "-0"
    return f"{d:,.{decimals}f}"


def num(value: object, decimals: int = 0) -> str:
    """1234567.5 -> '1,234,568'; 1234567.891 (2) -> '1,234,567.89'; NULL/NaN -> '—'."""
    d = rounded(value, decimals)
    return MISSING if d is None else _group(d, decimals)


def pct(value: object, decimals: int = 2) -> str:
    """99.996 -> '99.99 %' (floored); NULL -> '—'."""
    d = floored_pct(value, decimals)
    return MISSING if d is None else f"{_group(d, decimals)} %"


def iso(value: object) -> str:
    """Tables: 2026-04-07, or 2026-04-07 14:30 for a time; a non-date text (a raw input value) as is."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def prose_date(value: object) -> str:
    """Prose: 07/04/2026 (DD/MM/AAAA); a datetime keeps its time (07/04/2026 14:30)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)
