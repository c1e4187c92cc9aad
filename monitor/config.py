"""Load and validate the configuration folder into typed objects.

Every problem is collected (not just the first) and names the file, the key and the fix,
so `newsmon check` can report a whole broken config in one go. Past this module no code
reads raw TOML.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor.models import (
    ALL_TOPICS,
    DIMENSIONS,
    ENCODER_ID,
    Feed,
    Subscription,
    Topic,
    TopicModel,
)

DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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
    delivery_timeout_seconds: float = 15.0
    retry_schedule_seconds: tuple[int, ...] = DEFAULT_RETRY_SCHEDULE
    max_in_flight_per_endpoint: int = 4
    disable_after_hours: float = 120.0
    dead_letter_days: float = 14.0
    websub_callback_url: str = ""
    data_dir: Path = field(default_factory=lambda: default_data_dir())


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


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsmon"


def config_dir(cli_value: str | None) -> Path:
    """`--config DIR`, else `$NEWSMON_CONFIG`, else `./config`."""
    return Path(cli_value or os.environ.get("NEWSMON_CONFIG") or "config")


def load_config(directory: Path) -> Config:
    """Read all four files of `directory`; raise ConfigError listing every problem found."""
    problems: list[Problem] = []
    if not directory.is_dir():
        raise ConfigError(
            [
                Problem(
                    str(directory), "-", "no such folder; pass --config DIR or set NEWSMON_CONFIG"
                )
            ]
        )
    settings = _settings(_Reader(directory / "newsmon.toml", problems, required=False))
    topics = _topics(_Reader(directory / "topics.toml", problems))
    topic_model = _topic_model(directory / TOPIC_MODEL, topics, problems)
    feeds = _feeds(_Reader(directory / "feeds.toml", problems), settings)
    subscriptions = _subscriptions(
        _Reader(directory / "subscriptions.toml", problems), {t.name for t in topics}
    )
    if problems:
        raise ConfigError(problems)
    return Config(directory, settings, feeds, topics, subscriptions, topic_model)


class _Reader:
    """Typed access to one TOML (or, by its suffix, JSON) file that records problems instead
    of raising. A `hint` ends every problem of the file: how to fix any of them."""

    def __init__(self, path: Path, problems: list[Problem], required: bool = True, hint: str = ""):
        self.path, self.problems, self.hint = path, problems, hint
        self.data: dict[str, Any] = {}
        parse, form = (json.loads, "JSON") if path.suffix == ".json" else (tomllib.loads, "TOML")
        try:
            data = parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if required:
                self.problem("-", "file is missing; create it (see the shipped config/ folder)")
        except UnicodeDecodeError:
            self.problem("-", "not UTF-8 text; save the file as UTF-8")
        except ValueError as exc:  # tomllib's and json's decode errors both are
            self.problem("-", f"not valid {form} ({exc}); fix the syntax")
        else:
            if isinstance(data, dict):
                self.data = data
            else:
                self.problem("-", f"must be a {form} object")

    def problem(self, key: str, message: str) -> None:
        message = f"{message}; {self.hint}" if self.hint else message
        self.problems.append(Problem(str(self.path), key, message))

    def get(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """table[key] if well typed and passing `check`; else record a problem, return default."""
        if key not in table:
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            self.problem(f"{where}{key}", f"must be {names}, not {type(value).__name__} {value!r}")
            return default
        if check and (message := check(value)):
            self.problem(f"{where}{key}", message)
            return default
        return value

    def require(
        self,
        table: dict[str, Any],
        key: str,
        where: str,
        kind: type | tuple[type, ...],
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        if key not in table:
            self.problem(f"{where}{key}", "is required; add it")
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
                f"{where}{key}", f"unknown key; expected one of: {', '.join(sorted(allowed))}"
            )


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be between 0 (exclusive) and 1"


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{value!r} is not an http(s) URL; write it as https://host/path"
    return None


def _strings(value: list[Any]) -> str | None:
    return None if all(isinstance(v, str) for v in value) else "must be a list of strings"


def _name(value: str) -> str | None:
    if NAME_PATTERN.match(value):
        return None
    return (
        f"{value!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    )


def _schedule(value: list[Any]) -> str | None:
    if value and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    return "must be a non-empty list of whole seconds >= 0, e.g. [0, 5, 300]"


NUMBER = (int, float)
# newsmon.toml: (section, key, Settings field, accepted types, check)
SETTINGS_KEYS = (
    ("poller", "interval_seconds", "poll_interval_seconds", int, _positive),
    ("poller", "min_interval_seconds", "min_interval_seconds", int, _positive),
    ("poller", "max_interval_seconds", "max_interval_seconds", int, _positive),
    ("poller", "timeout_seconds", "fetch_timeout_seconds", NUMBER, _positive),
    ("poller", "max_body_bytes", "max_feed_bytes", int, _positive),
    ("poller", "concurrency", "fetch_concurrency", int, _positive),
    ("poller", "per_host", "fetch_per_host", int, _positive),
    ("poller", "seen_per_feed", "seen_per_feed", int, _positive),
    ("dedupe", "window_hours", "dedupe_window_hours", NUMBER, _positive),
    ("dedupe", "similarity", "near_duplicate_similarity", NUMBER, _fraction),
    ("delivery", "timeout_seconds", "delivery_timeout_seconds", NUMBER, _positive),
    ("delivery", "retry_schedule_seconds", "retry_schedule_seconds", list, _schedule),
    ("delivery", "max_in_flight", "max_in_flight_per_endpoint", int, _positive),
    ("delivery", "disable_after_hours", "disable_after_hours", NUMBER, _positive),
    ("delivery", "dead_letter_days", "dead_letter_days", NUMBER, _positive),
    ("websub", "callback_url", "websub_callback_url", str, _http_url),
    ("storage", "data_dir", "data_dir", str, None),
)


def _settings(reader: _Reader) -> Settings:
    section_names = sorted({section for section, *_ in SETTINGS_KEYS})
    reader.unknown_keys(reader.data, set(section_names), "")
    sections = {name: reader.get(reader.data, name, "", dict, default={}) for name in section_names}
    for name in section_names:
        known = {key for section, key, *_ in SETTINGS_KEYS if section == name}
        reader.unknown_keys(sections[name], known, f"{name}.")
    values: dict[str, Any] = {}
    for section, key, field_name, kind, check in SETTINGS_KEYS:
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
    for i, table in enumerate(reader.array_of_tables("feeds")):
        where = f"feeds[{i}]."
        reader.unknown_keys(table, {"name", "url", "interval_seconds", "tags"}, where)
        name = reader.require(table, "name", where, str, _name)
        url = reader.require(table, "url", where, str, _http_url)
        # A feed given its own interval keeps it; the others adapt to their update rate.
        interval = reader.get(
            table, "interval_seconds", where, int, settings.poll_interval_seconds, _positive
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
        where = f"topics.{name}."
        if (message := _name(name)) or name == ALL_TOPICS:
            reader.problem(f"topics.{name}", message or "'*' is reserved for 'every entry'")
            continue
        if not isinstance(spec, dict):
            reader.problem(
                f"topics.{name}", "must be a table: [topics.NAME] with threshold and terms"
            )
            continue
        reader.unknown_keys(spec, {"threshold", "terms", "ignore", "description"}, where)
        threshold = reader.get(spec, "threshold", where, (int, float), 2.0, _positive)
        terms = reader.require(spec, "terms", where, dict) or {}
        clean_terms = {}
        for term, weight in terms.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                reader.problem(f"{where}terms.{term}", "weight must be a number, e.g. 2 or -1.5")
            elif not term.strip():
                reader.problem(f"{where}terms", "a term is empty; remove it")
            else:
                clean_terms[term] = float(weight)
        ignore = reader.get(spec, "ignore", where, list, [], _strings)
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


def _subscriptions(reader: _Reader, topic_names: set[str]) -> tuple[Subscription, ...]:
    subscriptions, seen_ids = [], set()
    for i, table in enumerate(reader.array_of_tables("subscriptions")):
        where = f"subscriptions[{i}]."
        reader.unknown_keys(table, {"id", "url", "topics", "secret", "secret_env"}, where)
        sub_id = reader.require(table, "id", where, str, _name)
        url = reader.require(table, "url", where, str, _http_url)
        topics = reader.require(table, "topics", where, list) or []
        for topic in topics:
            if topic != ALL_TOPICS and topic not in topic_names:
                known = ", ".join(sorted(topic_names)) or "none defined"
                reader.problem(f"{where}topics", f"unknown topic {topic!r}; known: {known}, or '*'")
        if "topics" in table and not topics:
            reader.problem(f"{where}topics", 'is empty; list topics, or ["*"] for every entry')
        secrets = _secrets(reader, table, where)
        if sub_id in seen_ids:
            reader.problem(
                f"{where}id", f"{sub_id!r} is used by another subscription; ids must be unique"
            )
            continue
        seen_ids.add(sub_id)
        if sub_id and url and topics and secrets:
            subscriptions.append(Subscription(sub_id, url, frozenset(topics), secrets))
    return tuple(subscriptions)


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


def _topic_model(
    path: Path, topics: tuple[Topic, ...], problems: list[Problem]
) -> TopicModel | None:
    """The learned model beside the rules, if `newsmon classify --train` wrote one."""
    if not path.exists():
        return None
    found_before = len(problems)
    hint = "retrain with `newsmon classify --train LABELLED.jsonl`, or delete the file"
    reader = _Reader(path, problems, hint=hint)
    if len(problems) > found_before:
        return None
    reader.require(reader.data, "encoder", "", str, _encoder)
    threshold = reader.require(reader.data, "threshold", "", NUMBER, _probability)
    table = reader.require(reader.data, "topics", "", dict, _mapping) or {}
    known = {t.name for t in topics}
    weights = {}
    for name in table:
        if name not in known:
            reader.problem(f"topics.{name}", "is not a topic of topics.toml")
        elif values := reader.get(table, name, "topics.", list, check=_weights):
            weights[name] = tuple(float(v) for v in values)
    if len(problems) > found_before:
        return None
    return TopicModel(ENCODER_ID, float(threshold), weights)


def _encoder(value: str) -> str | None:
    return None if value == ENCODER_ID else f"trained on {value!r}, but newsmon runs {ENCODER_ID!r}"


def _probability(value: float) -> str | None:
    return None if 0 < value < 1 else "must be a probability between 0 and 1, e.g. 0.7"


def _mapping(value: dict[str, Any]) -> str | None:
    return None if value else "must map each topic to its weights"


def _weights(value: list[Any]) -> str | None:
    numbers = all(isinstance(v, NUMBER) and not isinstance(v, bool) for v in value)
    return None if numbers and len(value) == DIMENSIONS + 1 else f"must be {DIMENSIONS + 1} numbers"
