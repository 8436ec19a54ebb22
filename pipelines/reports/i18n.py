"""The words of the reports, one catalogue per language: `strings/es.toml` (the default: the market,
the regulator and the participants work in Spanish, in the norm's own terms) and `strings/en.toml`
(`--lang en`). Templates and view-models name a string by its key (`t("verdict.met")`), never
spell it; `{name}` placeholders are filled from keyword arguments. Both catalogues hold the same keys
(tests/reports/test_language.py checks it), and a key missing at render time is an error, not a
blank."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipelines.errors import InputError

logger = logging.getLogger(__name__)

STRINGS = Path(__file__).with_name("strings")
LANGUAGES = ("es", "en")
DEFAULT = "es"


def _flatten(table: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise InputError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    with open(STRINGS / f"{lang}.toml", "rb") as fh:
        return _flatten(tomllib.load(fh))


@dataclass(frozen=True)
class Words:
    """One language's strings: `words("key", name=value)`."""

    lang: str

    def __call__(self, key: str, **values: object) -> str:
        try:
            text = catalogue(self.lang)[key]
        except KeyError:
            raise KeyError(f"no string {key!r} in pipelines/reports/strings/{self.lang}.toml") from None
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in catalogue(self.lang)


def words(lang: str | None = None) -> Words:
    lang = lang or DEFAULT
    catalogue(lang)  # an unknown language fails here, in one sentence
    return Words(lang)
