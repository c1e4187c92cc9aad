"""Load and validate the configuration folder into typed objects.

Every problem is collected (not just the first) and names the file, the key and the fix,
so `newsmon check` can report a whole broken config in one go. Past this module no code
reads raw TOML.
"""

from __future__ import annotations

import base64
import difflib
import json
import math
import os
import re
import reprlib
import stat
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from monitor.core.models import (
    ALL_TOPICS,
    DIMENSIONS,
    ENCODER_ID,
    Feed,
    Format,
    Subscription,
    Topic,
    TopicModel,
)
from monitor.core.redact import redact_url
from monitor.core.text import words

DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
MINUTE, DAY = 60, 86400
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Settings:
    """`newsmon.toml`: every key is optional; these defaults apply."""

    poll_interval_seconds: int = 300
    min_interval_seconds: int = 60
    max_interval_seconds: int = 3600
    fetch_timeout_seconds: float = 20.0
    max_feed_bytes: int = 15 * 1024 * 1024
    fetch_concurrency: int = 100
    fetch_per_host: int = 2
    seen_per_feed: int = 5000
    dedupe_window_hours: float = 72.0
    near_duplicate_similarity: float = 0.6
    story_probability: float = 0.965
    delivery_timeout_seconds: float = 15.0
    retry_schedule_seconds: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    max_in_flight_per_endpoint: int = 4
    disable_after_hours: float = 120.0
    dead_letter_days: float = 14.0
    websub_callback_url: str = ""
    max_age_hours: float = 24.0
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    require_durable_redis: bool = False


@dataclass(frozen=True)
class Config:
    directory: Path
    settings: Settings
    feeds: tuple[Feed, ...]
    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    topic_model: TopicModel | None = None


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


TOPIC_MODEL = "topic_model.json"
TOPIC_MODEL_VERSION = 2


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsmon"


def config_dir(cli_value: str | None) -> Path:
    """`--config DIR`, else `$NEWSMON_CONFIG`, else `./config`."""
    return Path(cli_value or os.environ.get("NEWSMON_CONFIG") or "config")


def load_config(directory: Path) -> Config:
    """Read all four files of `directory`; raise ConfigError listing every problem found."""
    problems: list[Problem] = []
    if not _is_dir(directory):
        raise ConfigError(
            [
                Problem(
                    _printable(str(directory)),
                    "-",
                    "no such folder; pass --config DIR or set NEWSMON_CONFIG",
                )
            ]
        )
    settings = _settings(_Reader(directory / "newsmon.toml", problems, required=False), os.environ)
    topics = _topics(_Reader(directory / "topics.toml", problems))
    topic_model = _topic_model(directory / TOPIC_MODEL, topics, problems)
    feeds = _feeds(_Reader(directory / "feeds.toml", problems), settings)
    subscriptions = _subscriptions(
        _Reader(directory / "subscriptions.toml", problems), {t.name for t in topics}, feeds
    )
    if problems:
        raise ConfigError(problems)
    return Config(directory, settings, feeds, topics, subscriptions, topic_model)


def _is_dir(directory: Path) -> bool:
    try:
        return directory.is_dir()
    except (OSError, ValueError):  # no permission to look, or a NUL in the name
        return False


def _shown(value: Any) -> str:
    """A value as a problem quotes it: its repr, cut short when long or deeply nested."""
    return reprlib.repr(value)


def _printable(text: str) -> str:
    """`text` with control characters (and lone surrogates) escaped, safe for a terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _not_a_file(mode: int) -> str | None:
    """Why a path of this mode cannot be read as a config file (a folder would raise, a pipe
    or a device would never end); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file; replace it with the file"
    return "is not a regular file (a pipe, socket or device); replace it with the file"


def table_key(array: str, index: int, tables: list[dict[str, Any]], name_key: str) -> str:
    """How problems name a table of `[[array]]`: by its name (`feeds[name="blog"]`,
    `subscriptions[id="desk"]`) when it has a valid one no other table shares, else by its
    place (`feeds[0]`)."""
    name = tables[index].get(name_key)
    valid = isinstance(name, str) and not _name(name)
    if valid and sum(table.get(name_key) == name for table in tables) == 1:
        return f'{array}[{name_key}="{name}"]'
    return f"{array}[{index}]"


def _key_name(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so "" or "a.b" show)."""
    return key if BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


# How to write a value of each type, ending a "must be int, not str" problem.
WRITE_KIND = {
    bool: "write true or false",
    int: "write a whole number",
    float: "write a number",
    str: "write it in quotes",
    list: 'write a list, e.g. ["a", "b"]',
    dict: "write a table",
}


def _value_problem(value: Any, kind: type | tuple[type, ...], check: Check | None) -> str | None:
    """What is wrong with a value that should be of `kind` and pass `check`; None if nothing."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        fix = WRITE_KIND.get(kinds[-1])
        problem = f"must be {names}, not {type(value).__name__} {_shown(value)}"
        return f"{problem}; {fix}" if fix else problem
    if isinstance(value, float) and not math.isfinite(value):
        bounds = check(value) if check else None
        return f"is {value}; {bounds or 'must be a finite number'}"
    return check(value) if check else None


UNREAD = object()  # what a _Reader parsed from a file it could not read


class Unreadable(ValueError):
    """Well-formed TOML or JSON that Python cannot hold: the message says what and the fix."""


def _loads(text: str, form: str) -> Any:
    """`text` parsed as TOML or JSON, for a file and an environment variable alike. A value
    nested deeper than Python's recursion limit, or an integer longer than its digit limit,
    raises Unreadable; bad syntax raises the parser's own ValueError."""
    parse = json.loads if form == "JSON" else tomllib.loads
    try:
        return parse(text)
    except RecursionError:
        raise Unreadable("arrays or tables nest too deeply to read; flatten them") from None
    except ValueError as exc:
        # int() refuses more digits than sys.get_int_max_str_digits(), under both parsers.
        if "integer string conversion" not in str(exc):
            raise
        limit = sys.get_int_max_str_digits()
        raise Unreadable(
            f"holds a number of more than {limit} digits; write a smaller number"
        ) from None


class _Reader:
    """Typed access to one TOML (or, by its suffix, JSON) file that records problems instead
    of raising. A `hint` ends every problem of the file: how to fix any of them."""

    def __init__(self, path: Path, problems: list[Problem], required: bool = True, hint: str = ""):
        self.path, self.problems, self.hint = path, problems, hint
        self.data: dict[str, Any] = {}
        self.found = True  # False when the file does not exist
        form = "JSON" if path.suffix == ".json" else "TOML"
        data = self._parse(form, required)
        if isinstance(data, dict):
            self.data = data
        elif data is not UNREAD:
            self.problem("-", f"must be a {form} object")

    @classmethod
    def of(cls, data: dict[str, Any], source: str, problems: list[Problem]) -> _Reader:
        """A reader of `data` already parsed (a JSON body), its problems named after `source`."""
        reader = cls.__new__(cls)
        reader.path, reader.problems, reader.hint = Path(source), problems, ""
        reader.data, reader.found = data, True
        return reader

    def _parse(self, form: str, required: bool) -> Any:
        """The file's content; UNREAD, with any problem recorded, when it cannot be read."""
        try:
            if message := _not_a_file(self.path.stat().st_mode):
                self.problem("-", message)
                return UNREAD
            return _loads(self.path.read_text(encoding="utf-8"), form)
        except FileNotFoundError:
            self.found = False
            if required:
                self.problem(
                    "-", "file is missing; create it (`newsmon init DIR` writes the shipped ones)"
                )
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.problem("-", f"cannot be read ({reason}); make it a file newsmon can read")
        except UnicodeDecodeError:
            self.problem("-", "not UTF-8 text; save the file as UTF-8")
        except Unreadable as exc:
            self.problem("-", str(exc))
        except ValueError as exc:  # tomllib's and json's decode errors both are
            self.problem("-", f"not valid {form} ({exc}); fix the syntax")
        return UNREAD

    def problem(self, key: str, message: str) -> None:
        message = f"{message}; {self.hint}" if self.hint else message
        self.problems.append(
            Problem(_printable(str(self.path)), _printable(key), _printable(message))
        )

    def get(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        check: Check | None = None,
    ) -> Any:
        """table[key] if well typed and passing `check`; else record a problem, return default.

        A bool is never taken for a number, nor inf or nan for any number."""
        if key not in table:
            return default
        if message := _value_problem(table[key], kind, check):
            self.problem(f"{where}{_key_name(key)}", message)
            return default
        return table[key]

    def require(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        check: Check | None = None,
    ) -> Any:
        if key not in table:
            self.problem(f"{where}{_key_name(key)}", "is required; add it")
            return None
        return self.get(table, key, where, kind, check=check)

    def array_of_tables(self, key: str) -> list[dict[str, Any]]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(key, f"must be an array of tables, written [[{key}]]")
            return []
        return value

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in sorted(set(table) - allowed):
            self.problem(
                f"{where}{_key_name(key)}",
                f"unknown key; expected one of: {', '.join(sorted(allowed))}",
            )


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Between:
    """A check that a number is at least `low` (more than it, when `above`) and at most `high`:
    every number newsmon reads has both bounds, so none can overflow or stall what uses it.
    The bounds are attributes, for the API's OpenAPI document to state them as checked."""

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


def _fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be between 0 (exclusive) and 1"


def _share(value: float) -> str | None:
    return None if 0 <= value <= 1 else "must be between 0 (off) and 1"


# Longer than any URL a server takes: no typo to find in it.
LONGEST_URL_SHOWN = 2048


def _http_url(value: str) -> str | None:
    if reason := _url_problem(value):
        # Whole, not cut as other values are: a typo can sit anywhere in it; but no password.
        shown = (
            json.dumps(redact_url(value), ensure_ascii=False)
            if len(value) <= LONGEST_URL_SHOWN
            else reprlib.repr(value)
        )
        return f"{shown} is not a usable http(s) URL ({reason}); write https://host/path"
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


def _strings(value: list[Any]) -> str | None:
    if all(isinstance(v, str) for v in value):
        return None
    return 'must be a list of strings, each in quotes: ["a", "b"]'


def _phrases(value: list[Any]) -> str | None:
    """Strings with at least one word each: a phrase of no words matches nothing."""
    if message := _strings(value):
        return message
    wordless = next((v for v in value if not words(v)), None)
    return None if wordless is None else f"{_shown(wordless)} has no words; remove it"


def _name(value: str) -> str | None:
    if NAME_PATTERN.fullmatch(value):
        return None
    return (
        f"{_shown(value)} must be 1-64 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit"
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_RETRY_STEPS = 100
MAX_STEP_SECONDS = 7 * DAY


def _schedule(value: list[Any]) -> str | None:
    if 0 < len(value) <= MAX_RETRY_STEPS and all(
        _whole(v) and 0 <= v <= MAX_STEP_SECONDS for v in value
    ):
        return None
    return (
        f"must be a non-empty list of at most {MAX_RETRY_STEPS} whole seconds, each from 0 to "
        f"{MAX_STEP_SECONDS} (7 days), e.g. [0, 5, 300]"
    )


def _data_dir(value: str) -> str | None:
    """A folder the embedded Redis can be given: no NUL, and a `~user` that exists."""
    if "\0" in value:
        return "holds a NUL character; write a folder path"
    try:
        Path(value).expanduser()
    except RuntimeError:
        return f"{_shown(value)}: no such user's home folder; write the full path"
    return None


NUMBER = (int, float)
# The bounds of every number newsmon.toml and feeds.toml hold.
INTERVAL = Between(1, 7 * DAY, " seconds (7 days)")
TIMEOUT = Between(0, 5 * MINUTE, " seconds (5 minutes)", above=True)
BODY_BYTES = Between(1, 1024**3, " bytes (1 GiB)")
CONCURRENCY = Between(1, 1000)
PER_HOST = Between(1, 100)
SEEN_PER_FEED = Between(1, 1_000_000)
# At least 36 s: the window becomes whole seconds of a Redis expiry, which must not be 0.
WINDOW_HOURS = Between(0.01, 30 * 24, " hours (30 days)")
MAX_IN_FLIGHT = Between(1, 100)
DISABLE_AFTER_HOURS = Between(0, 30 * 24, " hours (30 days)", above=True)
DEAD_LETTER_DAYS = Between(0, 365, " days (a year)", above=True)
AGE_HOURS = Between(0, 365 * 24, " hours (a year)", above=True)
# topics.toml
TOPIC_THRESHOLD = Between(0, 1000, above=True)
TERM_WEIGHT = Between(-1000, 1000)
# newsmon.toml: (section, key, Settings field, accepted types, check)
SETTINGS_KEYS = (
    ("poller", "interval_seconds", "poll_interval_seconds", int, INTERVAL),
    ("poller", "min_interval_seconds", "min_interval_seconds", int, INTERVAL),
    ("poller", "max_interval_seconds", "max_interval_seconds", int, INTERVAL),
    ("poller", "timeout_seconds", "fetch_timeout_seconds", NUMBER, TIMEOUT),
    ("poller", "max_body_bytes", "max_feed_bytes", int, BODY_BYTES),
    ("poller", "concurrency", "fetch_concurrency", int, CONCURRENCY),
    ("poller", "per_host", "fetch_per_host", int, PER_HOST),
    ("poller", "seen_per_feed", "seen_per_feed", int, SEEN_PER_FEED),
    ("dedupe", "window_hours", "dedupe_window_hours", NUMBER, WINDOW_HOURS),
    ("dedupe", "similarity", "near_duplicate_similarity", NUMBER, _fraction),
    ("dedupe", "story_probability", "story_probability", NUMBER, _share),
    ("delivery", "timeout_seconds", "delivery_timeout_seconds", NUMBER, TIMEOUT),
    ("delivery", "retry_schedule_seconds", "retry_schedule_seconds", list, _schedule),
    ("delivery", "max_in_flight", "max_in_flight_per_endpoint", int, MAX_IN_FLIGHT),
    ("delivery", "disable_after_hours", "disable_after_hours", NUMBER, DISABLE_AFTER_HOURS),
    ("delivery", "dead_letter_days", "dead_letter_days", NUMBER, DEAD_LETTER_DAYS),
    ("websub", "callback_url", "websub_callback_url", str, _http_url),
    ("alerts", "max_age_hours", "max_age_hours", NUMBER, AGE_HOURS),
    ("storage", "data_dir", "data_dir", str, _data_dir),
    ("storage", "require_durable_redis", "require_durable_redis", bool, None),
)


ENVIRONMENT = "environment"
ENV_PREFIX = "NEWSMON_"


def env_variable(section: str, key: str) -> str:
    """The variable that overrides `[section] key` of newsmon.toml."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def _env_value(raw: str, kind: type | tuple[type, ...]) -> Any:
    """A variable's value read as a TOML value (`120`, `1.5`, `[0, 5]`, `"text"`). A text
    setting also takes its value bare (`/var/lib/newsmon`, `https://host/websub`), as does
    anything that is not one whole TOML value, for the check to judge. Unreadable, as the
    file's value would be, when nested too deeply or too long a number."""
    try:
        parsed = _loads(f"value = {raw}", "TOML")
    except Unreadable:
        if kind is str:
            return raw
        raise
    except ValueError:
        return raw
    if parsed.keys() != {"value"} or (kind is str and not isinstance(parsed["value"], str)):
        return raw
    return parsed["value"]


def _overrides(environ: Mapping[str, str], problems: list[Problem]) -> dict[str, str]:
    """The NEWSMON_<SECTION>__<KEY> variables set, by variable name; an unknown one is a
    problem (a typo would otherwise be silently ignored)."""
    known = {env_variable(section, key) for section, key, *_ in SETTINGS_KEYS}
    found = {name: value for name, value in environ.items() if name.startswith(ENV_PREFIX)}
    for name in sorted(found.keys() - known):
        if "__" in name:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            fix = f"did you mean {close[0]}?" if close else "unset it"
            message = f"no such setting ({ENV_PREFIX}<SECTION>__<KEY> of newsmon.toml); {fix}"
            problems.append(Problem(ENVIRONMENT, _printable(name), message))
    return {name: value for name, value in found.items() if name in known}


def _settings(reader: _Reader, environ: Mapping[str, str]) -> Settings:
    """newsmon.toml, each key overridden by its NEWSMON_<SECTION>__<KEY> variable when set;
    an override is checked as the file's value would be, and its problems name the variable."""
    section_names = sorted({section for section, *_ in SETTINGS_KEYS})
    reader.unknown_keys(reader.data, set(section_names), "")
    sections = {name: reader.get(reader.data, name, "", dict, default={}) for name in section_names}
    for name in section_names:
        known = {key for section, key, *_ in SETTINGS_KEYS if section == name}
        reader.unknown_keys(sections[name], known, f"{name}.")
    overrides = _overrides(environ, reader.problems)
    values: dict[str, Any] = {}
    for section, key, field_name, kind, check in SETTINGS_KEYS:
        variable = env_variable(section, key)
        if variable in overrides:
            try:
                value = _env_value(overrides[variable], kind)
            except Unreadable as exc:
                value, message = None, str(exc)
            else:
                message = _value_problem(value, kind, check)
            if message:
                reader.problems.append(
                    Problem(ENVIRONMENT, variable, f"{_printable(message)}; fix or unset it")
                )
                value = None
        else:
            value = reader.get(sections[section], key, f"{section}.", kind, check=check)
        if value is None:
            continue
        if kind is NUMBER:
            value = float(value)
        elif field_name == "retry_schedule_seconds":
            value = tuple(value)
        elif field_name == "data_dir":  # relative to the config folder
            value = reader.path.parent / Path(value).expanduser()
        values[field_name] = value
    settings = Settings(**values)
    if not (
        settings.min_interval_seconds
        <= settings.poll_interval_seconds
        <= settings.max_interval_seconds
    ):
        reader.problem(
            "poller",
            "needs min_interval_seconds <= interval_seconds <= max_interval_seconds "
            f"(now {settings.min_interval_seconds}, {settings.poll_interval_seconds}, "
            f"{settings.max_interval_seconds})",
        )
    return settings


def _feeds(reader: _Reader, settings: Settings) -> tuple[Feed, ...]:
    feeds, seen_names = [], set()
    tables = reader.array_of_tables("feeds")
    for i, table in enumerate(tables):
        where = f"{table_key('feeds', i, tables, 'name')}."
        reader.unknown_keys(table, {"name", "url", "interval_seconds", "tags"}, where)
        name = reader.require(table, "name", where, str, _name)
        url = reader.require(table, "url", where, str, _http_url)
        # A feed given its own interval keeps it; the others adapt to their update rate.
        interval = reader.get(
            table, "interval_seconds", where, int, settings.poll_interval_seconds, INTERVAL
        )
        adaptive = "interval_seconds" not in table
        tags = reader.get(table, "tags", where, list, [], _strings)
        if name in seen_names:
            reader.problem(
                f"{where}name", f"{name!r} is used by another feed; feed names must be unique"
            )
            continue
        seen_names.add(name)
        if name and url:
            feeds.append(Feed(name, url, interval, tuple(tags), adaptive))
    return tuple(feeds)


def _topics(reader: _Reader) -> tuple[Topic, ...]:
    table = reader.get(reader.data, "topics", "", dict, default={})
    if not table and reader.data:
        reader.problem("topics", "no topics defined; add a [topics.NAME] table")
    topics = []
    for name, spec in table.items():
        at = f"topics.{_key_name(name)}"
        where = f"{at}."
        if (message := _name(name)) or name == ALL_TOPICS:
            reader.problem(at, message or "'*' is reserved for 'every entry'")
            continue
        if not isinstance(spec, dict):
            reader.problem(at, "must be a table: [topics.NAME] with threshold and terms")
            continue
        reader.unknown_keys(spec, {"threshold", "terms", "ignore", "description"}, where)
        threshold = reader.get(spec, "threshold", where, NUMBER, 2.0, TOPIC_THRESHOLD)
        terms = reader.require(spec, "terms", where, dict) or {}
        clean_terms = {}
        for term in terms:
            weight = reader.get(terms, term, f"{where}terms.", NUMBER, check=TERM_WEIGHT)
            if not words(term):
                reader.problem(f"{where}terms", f"{_shown(term)} has no words; remove it")
            elif weight is not None:
                clean_terms[term] = float(weight)
        ignore = reader.get(spec, "ignore", where, list, [], _phrases)
        reader.get(spec, "description", where, str)
        if clean_terms:
            topics.append(Topic(name, float(threshold), clean_terms, tuple(ignore)))
        elif "terms" in spec:
            reader.problem(f"{where}terms", 'has no terms; add at least one "phrase" = weight')
    return tuple(topics)


def _secret_check(value: str) -> str | None:
    if not value.startswith("whsec_"):
        return "must start with 'whsec_' followed by base64 (generate one with: newsmon secret)"
    try:
        key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except ValueError:
        return "the part after 'whsec_' is not valid base64"
    if len(key) < 24:
        return "key is too short: use at least 24 random bytes (newsmon secret makes one)"
    return None


SUBSCRIPTION_KEYS = frozenset(
    {
        *("id", "url", "topics", "secret", "secret_env", "format", "backfill_hours"),
        *("feeds", "tags", "keywords", "exclude_keywords", "digest_minutes"),
    }
)
DIGEST_MINUTES = Between(1, 24 * 60, " minutes (a day); leave it out for one message a story")
BACKFILL_HOURS = Between(0, 365 * 24, " hours (a year); 0 sends none of the feeds' past")


def _subscriptions(
    reader: _Reader, topic_names: set[str], feeds: tuple[Feed, ...]
) -> tuple[Subscription, ...]:
    subscriptions, seen_ids = [], set()
    tables = reader.array_of_tables("subscriptions")
    for i, table in enumerate(tables):
        where = f"{table_key('subscriptions', i, tables, 'id')}."
        subscription = _subscription(reader, table, where, topic_names, feeds, SUBSCRIPTION_KEYS)
        sub_id = table.get("id")
        if isinstance(sub_id, str):  # anything else is already a problem
            if sub_id in seen_ids:
                reader.problem(
                    f"{where}id", f"{sub_id!r} is used by another subscription; ids must be unique"
                )
                continue
            seen_ids.add(sub_id)
        if subscription:
            subscriptions.append(subscription)
    return tuple(subscriptions)


def check_subscription(
    table: dict[str, Any],
    topic_names: set[str],
    feeds: tuple[Feed, ...],
    *,
    source: str,
    keys: frozenset[str],
) -> tuple[Subscription | None, list[Problem]]:
    """One subscription table as it arrives outside subscriptions.toml (the HTTP API, Redis),
    checked exactly as a [[subscriptions]] table is, with `keys` the keys it may hold: the
    subscription, or None and every problem found (each naming the key)."""
    problems: list[Problem] = []
    reader = _Reader.of(table, source, problems)
    subscription = _subscription(reader, table, "", topic_names, feeds, keys)
    return (None if problems else subscription), problems


def _subscription(
    reader: _Reader,
    table: dict[str, Any],
    where: str,
    topic_names: set[str],
    feeds: tuple[Feed, ...],
    allowed: frozenset[str],
) -> Subscription | None:
    """The one check of a subscription table, wherever it comes from."""
    reader.unknown_keys(table, set(allowed), where)
    sub_id = reader.require(table, "id", where, str, _name)
    url = reader.require(table, "url", where, str, _http_url)
    topics = reader.require(table, "topics", where, list, _strings)
    if topics == []:
        reader.problem(f"{where}topics", 'is empty; list topics, or ["*"] for every entry')
    for topic in topics or []:
        if topic != ALL_TOPICS and topic not in topic_names:
            known = ", ".join(sorted(topic_names)) or "none defined"
            reader.problem(
                f"{where}topics", f"unknown topic {_shown(topic)}; known: {known}, or '*'"
            )
    secrets = _secrets(reader, table, where)
    backfill_hours = _backfill_hours(reader, table, where)
    format_ = _format(reader, table, where)
    filters = _filters(reader, table, where, feeds)
    digest_minutes = _digest_minutes(reader, table, where)
    if sub_id and url and topics and secrets:
        return Subscription(
            sub_id,
            url,
            frozenset(topics),
            secrets,
            format=format_,
            backfill_hours=backfill_hours,
            digest_minutes=digest_minutes,
            **filters,
        )
    return None


def _filters(
    reader: _Reader, table: dict[str, Any], where: str, feeds: tuple[Feed, ...]
) -> dict[str, Any]:
    """`feeds` and `tags` (resolved to the feeds they name), `keywords`, `exclude_keywords`:
    the Subscription fields that narrow what it gets beyond its topics."""
    names = _listed(reader, table, "feeds", where, _strings)
    tags = _listed(reader, table, "tags", where, _strings)
    known_names = {f.name for f in feeds}
    known_tags = {t for f in feeds for t in f.tags}
    for name in names:
        if name not in known_names:
            reader.problem(
                f"{where}feeds",
                f"unknown feed {_shown(name)}; name a feed of feeds.toml "
                f"({_some(known_names)}), or remove it",
            )
    for tag in tags:
        if tag not in known_tags:
            reader.problem(
                f"{where}tags",
                f"no feed has the tag {_shown(tag)}; add it to a feed's tags in feeds.toml "
                f"(tags in use: {_some(known_tags)}), or remove it",
            )
    chosen = set(names) | {f.name for f in feeds if set(f.tags) & set(tags)}
    return {
        "feeds": frozenset(chosen),
        "feed_names": frozenset(names),
        "tags": frozenset(tags),
        "keywords": tuple(_listed(reader, table, "keywords", where, _phrases)),
        "exclude_keywords": tuple(_listed(reader, table, "exclude_keywords", where, _phrases)),
    }


def _listed(reader: _Reader, table: dict[str, Any], key: str, where: str, check: Check) -> list:
    """An optional list that, when given, lists something: an empty one is a slip."""
    values = reader.get(table, key, where, list, [], check)
    if key in table and table[key] == []:
        reader.problem(f"{where}{key}", "is empty; list at least one, or remove the key")
    return values


def _some(names: set[str], shown: int = 10) -> str:
    """A few of `names`, for a problem's hint (feeds.toml may hold thousands)."""
    first = sorted(names)[:shown]
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(first) + more if first else "none"


def _digest_minutes(reader: _Reader, table: dict[str, Any], where: str) -> int:
    """Minutes between digests; 0 (the key left out) sends each story as it comes."""
    return reader.get(table, "digest_minutes", where, int, 0, DIGEST_MINUTES)


def _format(reader: _Reader, table: dict[str, Any], where: str) -> Format:
    """The body's shape: newsmon's JSON, or a chat service's incoming-webhook payload."""
    return Format(reader.get(table, "format", where, str, Format.STANDARD, _format_name))


def _format_name(value: str) -> str | None:
    if value in set(Format):
        return None
    names = ", ".join(repr(f.value) for f in Format)
    return f"unknown format {_shown(value)}; write one of {names} (default 'standard')"


def _backfill_hours(reader: _Reader, table: dict[str, Any], where: str) -> float:
    """How far back the feeds' past is alerted to the subscription (0: not at all)."""
    return float(reader.get(table, "backfill_hours", where, NUMBER, 0, BACKFILL_HOURS))


def _secrets(reader: _Reader, table: dict[str, Any], where: str) -> tuple[str, ...]:
    """One secret, or several (a list, or space-separated in the variable) for key rotation."""
    if ("secret" in table) == ("secret_env" in table):
        reader.problem(f"{where}secret", "set exactly one of 'secret' or 'secret_env'")
        return ()
    if "secret" in table:
        value = reader.get(table, "secret", where, (str, list))
        values, key = ([value] if isinstance(value, str) else value or []), f"{where}secret"
    else:
        env_name = reader.get(table, "secret_env", where, str)
        if env_name is None:
            return ()
        if env_name not in os.environ:
            reader.problem(
                f"{where}secret_env", f"environment variable {env_name} is not set; export it"
            )
            return ()
        values, key = os.environ[env_name].split(), f"{where}secret_env ({env_name})"
    if not values:
        reader.problem(key, "no secret given; make one with `newsmon secret`")
        return ()
    problems = [
        m for v in values if (m := _secret_check(v) if isinstance(v, str) else "must be a string")
    ]
    if problems:
        reader.problem(key, problems[0])
        return ()
    return tuple(values)


def load_topics(directory: Path) -> tuple[Topic, ...]:
    """Only `topics.toml`: what `newsmon classify` needs, without feeds or secrets."""
    problems: list[Problem] = []
    topics = _topics(_Reader(directory / "topics.toml", problems))
    if problems:
        raise ConfigError(problems)
    return topics


def load_topic_model(directory: Path, topics: tuple[Topic, ...]) -> TopicModel | None:
    """`topic_model.json`, checked against the topics; None when there is none."""
    problems: list[Problem] = []
    topic_model = _topic_model(directory / TOPIC_MODEL, topics, problems)
    if problems:
        raise ConfigError(problems)
    return topic_model


def save_topic_model(directory: Path, model: TopicModel, written_by: str) -> Path:
    """Write `topic_model.json` in the form `load_topic_model` reads; returns its path."""
    header = {
        "about": f"written by `{written_by}`; retrain, do not edit",
        "version": TOPIC_MODEL_VERSION,
        "encoder": model.encoder,
        "thresholds": model.thresholds,
    }
    # One line per topic keeps the file short and its diffs readable.
    head = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in header.items()]
    rows = [f"  {json.dumps(name)}: {json.dumps(list(w))}" for name, w in model.weights.items()]
    path = directory / TOPIC_MODEL
    path.write_text(
        "{\n" + "\n".join(head) + '\n "topics": {\n' + ",\n".join(rows) + "\n }\n}\n",
        encoding="utf-8",
    )
    return path


def _topic_model(
    path: Path, topics: tuple[Topic, ...], problems: list[Problem]
) -> TopicModel | None:
    """The learned model beside the rules, if `newsmon classify --train` wrote one.

    Version 2 has a threshold per topic; a file without a version (version 1) has one
    threshold for every topic."""
    found_before = len(problems)
    hint = "retrain with `newsmon classify --train LABELLED.jsonl`, or delete the file"
    reader = _Reader(path, problems, required=False, hint=hint)
    if not reader.found or len(problems) > found_before:
        return None
    reader.require(reader.data, "encoder", "", str, _encoder)
    version = reader.get(reader.data, "version", "", int, 1, _model_version)
    if len(problems) > found_before:  # a newer file's other keys would be misread
        return None
    table = reader.require(reader.data, "topics", "", dict, _mapping) or {}
    known = {t.name for t in topics}
    weights = {}
    for name in table:
        if name not in known:
            reader.problem(f"topics.{_key_name(name)}", "is not a topic of topics.toml")
        elif values := reader.get(table, name, "topics.", list, check=_weights):
            weights[name] = tuple(float(v) for v in values)
    if version == 1:
        threshold = reader.require(reader.data, "threshold", "", NUMBER, _probability)
        thresholds = dict.fromkeys(weights, threshold)
    else:
        given = reader.require(reader.data, "thresholds", "", dict, _mapping) or {}
        for name in [n for n in weights if n not in given]:
            reader.problem(f"thresholds.{_key_name(name)}", "is required for every topic; add it")
        thresholds = {
            n: reader.get(given, n, "thresholds.", NUMBER, check=_probability) for n in weights
        }
    if len(problems) > found_before:
        return None
    return TopicModel(ENCODER_ID, {n: float(t) for n, t in thresholds.items()}, weights)


def _encoder(value: str) -> str | None:
    return None if value == ENCODER_ID else f"trained on {value!r}, but newsmon runs {ENCODER_ID!r}"


def _model_version(value: int) -> str | None:
    return None if 1 <= value <= TOPIC_MODEL_VERSION else f"must be 1 or {TOPIC_MODEL_VERSION}"


def _probability(value: float) -> str | None:
    return None if 0 < value < 1 else "must be a probability between 0 and 1, e.g. 0.7"


def _mapping(value: dict[str, Any]) -> str | None:
    return None if value else "must map each topic to its weights"


MODEL_WEIGHT = 1000.0


def _weights(value: list[Any]) -> str | None:
    fits = len(value) == DIMENSIONS + 1 and all(
        isinstance(v, NUMBER) and not isinstance(v, bool) and abs(v) <= MODEL_WEIGHT for v in value
    )
    if fits:
        return None
    return f"must be {DIMENSIONS + 1} numbers, each from -{MODEL_WEIGHT:g} to {MODEL_WEIGHT:g}"
