"""`newsmon.toml`: the settings, each overridable by a NEWSMON_<SECTION>__<KEY> variable.

Read by hand rather than by a settings library: an override is checked as the file's value
would be, and its problem names the variable (not the file), which a merge of both sources
before the check could not tell apart.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.core.config.reading import (
    NUMBER,
    Problem,
    Reader,
    Unreadable,
    loads,
    printable,
    shown,
    value_problem,
)
from monitor.core.config.values import (
    DAY,
    MINUTE,
    Between,
    email_address,
    fraction,
    http_url,
    share,
)

DEFAULT_RETRY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
HOUR = 3600
TELEGRAM_API = "https://api.telegram.org"
SMTP_SECURITY = ("starttls", "tls", "none")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "newsmon"


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
    data_dir: Path = field(default_factory=default_data_dir)
    require_durable_redis: bool = False
    telegram_api_url: str = TELEGRAM_API
    # [smtp], for `format = "email"`; the password is read from the environment when sending.
    smtp_host: str = ""
    smtp_port: int | None = None  # None: the security's own (587 starttls, 465 tls, 25 none)
    smtp_username: str = ""
    smtp_password_env: str = ""
    smtp_from: str = ""
    smtp_security: str = "starttls"

    @property
    def dedupe_window_seconds(self) -> int:
        """The dedupe and story window as a Redis expiry: whole seconds, at least 36."""
        return int(self.dedupe_window_hours * HOUR)

    @property
    def disable_after_seconds(self) -> float:
        return self.disable_after_hours * HOUR

    @property
    def dead_letter_seconds(self) -> float:
        return self.dead_letter_days * DAY


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


def _security(value: str) -> str | None:
    if value in SMTP_SECURITY:
        return None
    return f"{shown(value)} is not one of {', '.join(map(repr, SMTP_SECURITY))}"


def _host(value: str) -> str | None:
    if value and all(c.isalnum() or c in ".-:[]" for c in value):
        return None
    return f"{shown(value)} is not a host name or address; write e.g. smtp.example.org"


def _env_name(value: str) -> str | None:
    if value.isidentifier():
        return None
    return f"{shown(value)} is not an environment variable's name; write e.g. SMTP_PASSWORD"


def _data_dir(value: str) -> str | None:
    """A folder the embedded Redis can be given: no NUL, and a `~user` that exists."""
    if "\0" in value:
        return "holds a NUL character; write a folder path"
    try:
        Path(value).expanduser()
    except RuntimeError:
        return f"{shown(value)}: no such user's home folder; write the full path"
    return None


# The bounds of every number newsmon.toml holds (and feeds.toml's interval).
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
PORT = Between(1, 65535)
# (section, key, Settings field, accepted types, check)
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
    ("dedupe", "similarity", "near_duplicate_similarity", NUMBER, fraction),
    ("dedupe", "story_probability", "story_probability", NUMBER, share),
    ("delivery", "timeout_seconds", "delivery_timeout_seconds", NUMBER, TIMEOUT),
    ("delivery", "retry_schedule_seconds", "retry_schedule_seconds", list, _schedule),
    ("delivery", "max_in_flight", "max_in_flight_per_endpoint", int, MAX_IN_FLIGHT),
    ("delivery", "disable_after_hours", "disable_after_hours", NUMBER, DISABLE_AFTER_HOURS),
    ("delivery", "dead_letter_days", "dead_letter_days", NUMBER, DEAD_LETTER_DAYS),
    ("websub", "callback_url", "websub_callback_url", str, http_url),
    ("alerts", "max_age_hours", "max_age_hours", NUMBER, AGE_HOURS),
    ("storage", "data_dir", "data_dir", str, _data_dir),
    ("storage", "require_durable_redis", "require_durable_redis", bool, None),
    ("telegram", "api_url", "telegram_api_url", str, http_url),
    ("smtp", "host", "smtp_host", str, _host),
    ("smtp", "port", "smtp_port", int, PORT),
    ("smtp", "username", "smtp_username", str, None),
    ("smtp", "password_env", "smtp_password_env", str, _env_name),
    ("smtp", "from", "smtp_from", str, email_address),
    ("smtp", "security", "smtp_security", str, _security),
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
        parsed = loads(f"value = {raw}", "TOML")
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
            problems.append(Problem(ENVIRONMENT, printable(name), message))
    return {name: value for name, value in found.items() if name in known}


# Keys of earlier releases, each with what replaces it: a file written for them says so.
RENAMED = {
    "dedupe": {
        "story_similarity": "replaced by story_probability, the pair model's probability that "
        "two reports are one event (0.965 by default; 0 turns it off): rename the key and "
        "choose a value, the old one's scale does not carry over"
    }
}


def read_settings(reader: Reader, environ: Mapping[str, str]) -> Settings:
    """newsmon.toml, each key overridden by its NEWSMON_<SECTION>__<KEY> variable when set;
    an override is checked as the file's value would be, and its problems name the variable."""
    section_names = sorted({section for section, *_ in SETTINGS_KEYS})
    reader.unknown_keys(reader.data, set(section_names), "")
    sections = {name: reader.get(reader.data, name, "", dict, default={}) for name in section_names}
    for name in section_names:
        known = {key for section, key, *_ in SETTINGS_KEYS if section == name}
        for key, fix in RENAMED.get(name, {}).items():
            if key in sections[name]:
                reader.problem(f"{name}.{key}", fix)
        renamed = set(RENAMED.get(name, {}))
        reader.unknown_keys(
            {k: v for k, v in sections[name].items() if k not in renamed}, known, f"{name}."
        )
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
                message = value_problem(value, kind, check)
            if message:
                reader.problems.append(
                    Problem(ENVIRONMENT, variable, f"{printable(message)}; fix or unset it")
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
    _check_smtp(reader, settings, environ)
    return settings


def _check_smtp(reader: Reader, settings: Settings, environ: Mapping[str, str]) -> None:
    """What [smtp]'s keys need of each other, and the password's variable set."""
    if settings.smtp_host and not settings.smtp_from:
        reader.problem("smtp.from", "is required with host: the address messages come from")
    if settings.smtp_username and not settings.smtp_password_env:
        reader.problem(
            "smtp.password_env",
            "is required with username: the environment variable holding the password",
        )
    if settings.smtp_password_env and settings.smtp_password_env not in environ:
        reader.problem(
            "smtp.password_env",
            f"environment variable {settings.smtp_password_env} is not set; export it",
        )
