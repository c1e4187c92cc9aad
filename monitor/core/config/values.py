"""What the values of the config files must be: the checks the files share, each returning
the problem (with its fix) or None."""

from __future__ import annotations

import json
import re
import reprlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.config.reading import shown
from monitor.core.redact import redact_url
from monitor.core.text import words

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MINUTE, DAY = 60, 86400


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Between:
    """A check that a number is at least `low` (more than it, when `above`) and at most `high`:
    every number newsmon reads has both bounds, so none can overflow or stall what uses it.
    The bounds are attributes, for a JSON Schema to state them as checked."""

    low: float
    high: float
    unit: str = ""
    above: bool = False

    def __call__(self, value: float) -> str | None:
        fits = (value > self.low if self.above else value >= self.low) and value <= self.high
        if fits:
            return None
        floor = f"more than {_amount(self.low)}" if self.above else f"at least {_amount(self.low)}"
        return f"must be {floor} and at most {_amount(self.high)}{self.unit}"


def fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be between 0 (exclusive) and 1"


def share(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 (off) and 1"


# Longer than any URL a server takes: no typo to find in it.
LONGEST_URL_SHOWN = 2048


def http_url(value: str) -> str | None:
    if reason := _url_problem(value):
        # Whole, not cut as other values are: a typo can sit anywhere in it; but no password.
        quoted = (
            json.dumps(redact_url(value), ensure_ascii=False)
            if len(value) <= LONGEST_URL_SHOWN
            else reprlib.repr(value)
        )
        return f"{quoted} is not a usable http(s) URL ({reason}); write https://host/path"
    return None


def _url_problem(value: str) -> str | None:
    """Why the poller or a worker could not use `value` as a URL; None when they can."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return "it holds spaces or control characters"
    try:
        parts = urlsplit(value)
        port, host = parts.port, parts.hostname
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL) as exc:
        return str(exc)
    if parts.scheme not in ("http", "https") or not host:
        return "it needs http:// or https:// and a host"
    return "port 0 cannot be reached" if port == 0 else None


# An address as SMTP takes it: one @, no spaces, brackets or commas (a list is a list).
EMAIL_ADDRESS = re.compile(r"[^@\s<>,;\"()\[\]]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def email_address(value: str) -> str | None:
    if EMAIL_ADDRESS.fullmatch(value):
        return None
    return f"{shown(value)} is not an email address; write e.g. news@example.org"


def strings(value: list[Any]) -> str | None:
    if all(isinstance(v, str) for v in value):
        return None
    return 'must be a list of strings, each in quotes: ["a", "b"]'


def phrases(value: list[Any]) -> str | None:
    """Strings with at least one word each: a phrase of no words matches nothing."""
    if message := strings(value):
        return message
    wordless = next((v for v in value if not words(v)), None)
    return None if wordless is None else f"{shown(wordless)} has no words; remove it"


def name(value: str) -> str | None:
    if NAME_PATTERN.fullmatch(value):
        return None
    return (
        f"{shown(value)} must be 1-64 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit"
    )


def table_key(array: str, index: int, tables: list[dict[str, Any]], name_key: str) -> str:
    """How problems name a table of `[[array]]`: by its name (`feeds[name="blog"]`,
    `subscriptions[id="desk"]`) when it has a valid one no other table shares, else by its
    place (`feeds[0]`)."""
    value = tables[index].get(name_key)
    valid = isinstance(value, str) and not name(value)
    if valid and sum(table.get(name_key) == value for table in tables) == 1:
        return f'{array}[{name_key}="{value}"]'
    return f"{array}[{index}]"
