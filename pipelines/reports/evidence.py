"""A VPN-change rule's evidence, and an unreadable input row's reason, in the reader's language.

The delivery run publishes each evidence twice (pipelines/delivery/rules.py): `detail` / `reason`, an
English sentence for analysts, and `detail_key` + `detail_args` / `reason_key` + `reason_args`, the
same without words: a key of the catalogue's [evidence] table and a JSON object of its values. A
letter words the second through the catalogue (strings/es.toml, strings/en.toml), so a Spanish
letter holds no English sentence. How a value is written follows from what it is, not from the key:

- an object with a "key" is a nested fact (why a date cannot be used, a closed day...), worded by
  `evidence.<key>` in turn;
- a list is its items, each worded, joined by `evidence.sep`; when the catalogue has
  `evidence.list.<name>`, a non-empty list is wrapped by it and an empty (or null) one is left out;
- `column`: the name of an input column, worded by `evidence.column.<column>`;
- `kind`: why a day is not a business day, worded by `evidence.day.<kind>`; a public holiday is
  named in the reader's language (the `holidays` package, as the business-day calendar uses it);
- `pct`: a percentage as exact text ("99.96"), written as fmt.pct writes every percentage;
- an integer: fmt.num (comma thousands); an ISO date (AAAA-MM-DD): fmt.prose_date (DD/MM/AAAA);
- null: fmt.MISSING; any other text (an identifier, a value as the participant wrote it) as it is.

Rows published before these columns existed have no key: their letter shows the English `detail`
(re-run the month to have it worded)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

import holidays

from pipelines.reports import fmt
from pipelines.reports.i18n import Words

logger = logging.getLogger(__name__)

# nested facts that are there only sometimes: null is nothing to say, not a missing value ("—")
_OPTIONAL = frozenset({"moved"})
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# the holidays package's names for the languages of the catalogues
_HOLIDAY_LANGUAGE = {"es": "es", "en": "en_US"}


@cache
def _holidays(year: int, lang: str) -> dict:
    return dict(holidays.country_holidays("GT", years=year, language=_HOLIDAY_LANGUAGE.get(lang, "es")))


def holiday_name(day: str | None, lang: str) -> str:
    """The Guatemalan public holiday on `day` (ISO) in `lang`, '' when there is none."""
    if not day or not _ISO_DATE.fullmatch(day):
        return ""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        return ""
    return _holidays(d.year, lang).get(d, "")


def _value(t: Words, name: str, value: Any, fields: dict[str, Any]) -> str:
    if isinstance(value, dict) and "key" in value:
        return phrase(t, value["key"], value)
    if isinstance(value, list) or (value is None and t.has(f"evidence.list.{name}")):
        items = t("evidence.sep").join(_value(t, "item", item, fields) for item in value or [])
        if t.has(f"evidence.list.{name}"):
            return t(f"evidence.list.{name}", items=items) if items else ""
        return items
    if value is None:
        # an optional part of a sentence (the notice moved off a closed day) says nothing when absent
        return "" if name in _OPTIONAL else fmt.MISSING
    if name == "column":
        return t(f"evidence.column.{value}") if t.has(f"evidence.column.{value}") else str(value)
    if name == "kind":
        return t(f"evidence.day.{value}", name=holiday_name(fields.get("date"), t.lang))
    if name == "pct":
        try:
            return fmt.pct(Decimal(str(value)))
        except InvalidOperation:
            return str(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return fmt.num(value)
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return fmt.prose_date(value)
    return str(value)


def phrase(t: Words, key: str, fields: dict[str, Any]) -> str:
    """`evidence.<key>` filled with `fields`, each written as the module says."""
    # only the values the sentence names are written (a value the row does not hold is one that does
    # not exist, or an empty list: never a KeyError)
    names = set(re.findall(r"{(\w+)}", t(f"evidence.{key}")))
    return t(f"evidence.{key}", **{name: _value(t, name, fields.get(name), fields) for name in names})


def words(t: Words, key: str | None, args: str | None, fallback: str | None) -> str:
    """The evidence of one row (`key` and its JSON `args`) as a sentence in `t`'s language; the
    English `fallback` (detail / reason) when the row has no key (published before keys existed)."""
    if not key:
        return fallback or ""
    try:
        fields = json.loads(args) if args else {}
    except json.JSONDecodeError:
        logger.warning("evidence %s: its values are not JSON (%r); the English text is shown", key, args)
        return fallback or ""
    text = phrase(t, key, fields)
    return text[:1].upper() + text[1:]
