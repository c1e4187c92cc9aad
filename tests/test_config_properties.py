"""Config checking, by property: whatever is written into any key of any config file,
`newsmon check` exits 0 or 2 and never with a traceback, and whatever it accepts can be run.

Each test writes random values of every TOML (or JSON) type, and values near what a key
takes, into one file of an otherwise valid config folder; the other files stay valid, so a
problem found is that file's.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor.core.config import NAME_PATTERN, SETTINGS_KEYS, TOPIC_MODEL, Config, load_config
from monitor.core.models import DIMENSIONS, ENCODER_ID
from monitor.core.text import words
from monitor.ops.cli import main
from monitor.poller.loop import Poller
from tests.helpers import REPO, SECRET
from workers.pipeline.classify import Classifier

EXAMPLES = settings(
    max_examples=int(os.environ.get("NEWSMON_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECRET_ENV = "NEWSMON_TEST_PROPERTY_SECRET"
# Alerts per delivery job (workers/delivery/schedule.py): its RQ timeout scales with it.
DELIVERY_CHUNK = 100
DAY = 86400

# Values of every TOML type. Integers reach past 64 bits; floats include inf and nan.
integers = st.integers(-(10**30), 10**30) | st.sampled_from([0, 1, -1, 2**63, 10**17, 99999])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e17, 1e-300, 0.5])
texts = st.text(max_size=30) | st.sampled_from(["", " ", "*", "~", "\u2603", "a\nb", "e\u0301"])
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(timezones=st.none() | st.just(UTC) | offsets) | st.dates() | st.times()
hosts = st.sampled_from(
    ["example.org", "127.0.0.1", "[::1]", "[::1", "::1]", "\u2603.-", "xn--", "a b", "", "e.org."]
) | st.text(max_size=10)
ports = st.just("") | st.integers(-5, 10**6).map(lambda p: f":{p}") | texts.map(lambda t: f":{t}")
good_urls = st.builds(
    "{}://{}{}/{}".format,
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){1,2}", fullmatch=True)
    | st.sampled_from(["127.0.0.1", "[::1]", "b\u00fccher.example"]),
    st.just("") | st.integers(1, 65535).map(lambda p: f":{p}"),
    st.from_regex(r"[a-z0-9/._-]{0,12}", fullmatch=True),
)
urls = (
    st.builds(
        "{}://{}{}{}".format,
        st.sampled_from(["http", "https", "ftp", "HTTP", ""]),
        hosts,
        ports,
        st.just("/feed") | texts,
    )
    | st.sampled_from(["http://[::1/feed", "http://e.org:99999/x", "http://e.org:0/"])
    | texts
)
scalars = integers | floats | texts | st.booleans() | moments | urls
toml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
names = st.from_regex(NAME_PATTERN, fullmatch=True)


def toml_string(text: str) -> str:
    escaped = "".join(
        f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )
    return f'"{escaped}"'


def toml(value: Any) -> str:
    """A value as an inline TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml(v)}" for k, v in value.items()) + "}"


def lines(table: dict[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml(value)}\n" for key, value in table.items())


phrases = st.from_regex(r"[a-z]{1,8}( [a-z]{1,8})?", fullmatch=True)


@dataclass(frozen=True)
class Key:
    """What a key takes (`valid`), and values near that, on both sides of its bounds."""

    valid: st.SearchStrategy[Any]
    near: st.SearchStrategy[Any]
    required: bool = False


def number(low: float, high: float, whole: bool = False, above: bool = False) -> Key:
    """A number from `low` (exclusive when `above`) to `high`."""
    first = math.floor(low) + 1 if above or low != math.floor(low) else int(low)
    ints = st.integers(first, math.floor(high))
    valid = ints if whole else ints | st.floats(low, high, exclude_min=above)
    edges = st.sampled_from([low - 1, low, high, high + 1, high * 2, 10**20])
    near = st.integers(int(low) - 2, int(high) + 2) | edges.map(int if whole else float)
    if not whole:
        near = near | st.sampled_from([math.inf, -math.inf, math.nan, high + 1e-9])
    return Key(valid, near)


def required(key: Key) -> Key:
    return Key(key.valid, key.near, required=True)


def tables(
    keys: dict[str, Key], anything: st.SearchStrategy[Any] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Tables of these keys: all valid; valid, near or `anything` (any TOML value); or other
    keys."""
    anything = toml_values if anything is None else anything
    mixed = st.fixed_dictionaries(
        {}, optional={k: key.valid | key.near | anything for k, key in keys.items()}
    )
    others = st.dictionaries(st.sampled_from([*keys, "extra"]) | texts, anything, max_size=3)
    return valid_tables(keys) | mixed | others


def valid_tables(keys: dict[str, Key]) -> st.SearchStrategy[dict[str, Any]]:
    """Tables of the required keys and some others, every value valid."""
    return st.fixed_dictionaries(
        {k: key.valid for k, key in keys.items() if key.required},
        optional={k: key.valid for k, key in keys.items() if not key.required},
    )


SETTINGS = {
    "poll_interval_seconds": number(1, 7 * DAY, whole=True),
    "min_interval_seconds": number(1, 7 * DAY, whole=True),
    "max_interval_seconds": number(1, 7 * DAY, whole=True),
    "fetch_timeout_seconds": number(0, 300, above=True),
    "max_feed_bytes": number(1, 1024**3, whole=True),
    "fetch_concurrency": number(1, 1000, whole=True),
    "fetch_per_host": number(1, 100, whole=True),
    "seen_per_feed": number(1, 10**6, whole=True),
    "dedupe_window_hours": number(0.01, 720),
    "near_duplicate_similarity": number(0, 1, above=True),
    "story_probability": number(0, 1),
    "delivery_timeout_seconds": number(0, 300, above=True),
    "retry_schedule_seconds": Key(
        st.lists(st.integers(0, 7 * DAY), min_size=1, max_size=5),
        st.lists(number(0, 7 * DAY, whole=True).near, max_size=5)
        | st.lists(st.just(0), min_size=99, max_size=102),
    ),
    "max_in_flight_per_endpoint": number(1, 100, whole=True),
    "disable_after_hours": number(0, 720, above=True),
    "dead_letter_days": number(0, 365, above=True),
    "websub_callback_url": Key(good_urls, urls),
    "max_age_hours": number(0, 365 * 24, above=True),
    "data_dir": Key(
        st.from_regex(r"[A-Za-z0-9_./-]{0,20}", fullmatch=True),
        texts | st.sampled_from(["~no-such-user-x/data", "a\x00b", "~"]),
    ),
    "require_durable_redis": Key(st.booleans(), st.sampled_from([0, 1, "true", "yes"])),
    "telegram_api_url": Key(good_urls, urls),
    # A host needs `from`, a username its password's variable, which must be set: none of
    # these is valid alone.
    "smtp_host": Key(st.nothing(), texts | st.sampled_from(["smtp.example.org", "a b"])),
    "smtp_port": number(1, 65535, whole=True),
    "smtp_username": Key(st.nothing(), texts),
    "smtp_password_env": Key(st.nothing(), texts | st.just("NO_SUCH_VARIABLE_SET")),
    "smtp_from": Key(st.just("news@example.org"), texts),
    "smtp_security": Key(st.sampled_from(["starttls", "tls", "none"]), texts),
}
SECTIONS = sorted({section for section, *_ in SETTINGS_KEYS})
newsmon_files = st.fixed_dictionaries(
    {},
    optional={
        section: tables({k: SETTINGS[name] for s, k, name, *_ in SETTINGS_KEYS if s == section})
        | toml_values
        for section in [*SECTIONS, "extra"]
    },
)
feed_tables = tables(
    {
        "name": required(Key(names, texts)),
        "url": required(Key(good_urls, urls)),
        "interval_seconds": number(1, 7 * DAY, whole=True),
        "tags": Key(st.lists(texts, max_size=3), st.lists(toml_values, max_size=2)),
    }
)
# A subscription has `secret` or `secret_env`, not both: each of its two kinds of table has one.
subscription_keys = {
    "id": required(Key(names, texts)),
    "url": required(Key(good_urls, urls)),
    "topics": required(
        Key(
            st.sampled_from([["*"], ["health"], ["health", "*"]]),
            st.lists(st.sampled_from(["*", "health", "sport", ""]) | toml_values, max_size=3),
        )
    ),
    "backfill_hours": number(0, 365 * 24),
    "format": Key(st.sampled_from(["standard", "slack", "discord", "teams"]), texts),
    "digest_minutes": number(1, 24 * 60, whole=True),
    # The valid folder's one feed is "blog", untagged.
    "feeds": Key(st.just(["blog"]), st.lists(texts | toml_values, max_size=2)),
    "tags": Key(st.nothing(), st.lists(texts | toml_values, max_size=2)),
    "keywords": Key(st.lists(phrases, min_size=1, max_size=3), st.lists(texts, max_size=3)),
    "exclude_keywords": Key(st.lists(phrases, min_size=1, max_size=3), st.lists(texts, max_size=3)),
}
secrets = Key(
    st.sampled_from([SECRET, [SECRET, SECRET]]), st.sampled_from([[], "whsec_", "x"]), True
)
secret_envs = Key(st.just(SECRET_ENV), st.sampled_from(["NEWSMON_NO_SUCH_VARIABLE", ""]), True)
subscription_tables = tables({**subscription_keys, "secret": secrets}) | tables(
    {**subscription_keys, "secret_env": secret_envs}
)
TOPIC_KEYS = {
    "threshold": number(0, 1000, above=True),
    "terms": required(
        Key(
            st.dictionaries(phrases, number(-1000, 1000).valid, min_size=1, max_size=4),
            st.dictionaries(texts, number(-1000, 1000).near | toml_values, max_size=4),
        )
    ),
    "ignore": Key(st.lists(phrases, max_size=3), st.lists(texts, max_size=3)),
    "description": Key(texts, toml_values),
}
json_values = st.recursive(
    st.none() | st.booleans() | integers | floats | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def array_of_tables(key: str, tables: list[dict[str, Any]]) -> str:
    return "".join(f"[[{key}]]\n" + lines(table) for table in tables)


@st.composite
def topics_files(draw: st.DrawFn) -> str:
    valid = draw(st.booleans())
    topic_tables = valid_tables(TOPIC_KEYS) if valid else tables(TOPIC_KEYS)
    topics = draw(st.dictionaries(names if valid else texts, topic_tables, min_size=1, max_size=3))
    text = ""
    for name, table in topics.items():
        terms = table.pop("terms", None)
        text += f"[topics.{toml_string(name)}]\n" + lines(table)
        if isinstance(terms, dict):
            text += f"[topics.{toml_string(name)}.terms]\n" + lines(terms)
        elif terms is not None:
            text += f"terms = {toml(terms)}\n"
    return text


MODEL_KEYS = {
    "encoder": Key(st.just(ENCODER_ID), json_values),
    "threshold": Key(st.floats(0, 1, exclude_min=True, exclude_max=True), json_values),
    "extra": Key(json_values, json_values),
}
WEIGHTS = number(-1000, 1000)
WEIGHT_NEAR = WEIGHTS.near | json_values | st.sampled_from([1e308, 10**400])


SHIPPED_MODEL = json.loads((REPO / "config" / TOPIC_MODEL).read_text())


@st.composite
def topic_models(draw: st.DrawFn) -> str:
    """The shipped model with some of its fields, or some of one topic's weights, replaced."""
    model = {**SHIPPED_MODEL, "topics": dict(SHIPPED_MODEL["topics"])}
    model |= draw(tables(MODEL_KEYS, json_values))
    topics = model.get("topics")  # a random key may have replaced them
    if isinstance(topics, dict) and topics and draw(st.booleans()):
        name = draw(st.sampled_from(sorted(topics)))
        weights = list(topics[name]) if isinstance(topics[name], list) else [0] * (DIMENSIONS + 1)
        for _ in range(draw(st.integers(1, 3))):
            value = draw(WEIGHTS.valid | WEIGHT_NEAR)
            weights[draw(st.integers(0, DIMENSIONS))] = value
        model["topics"][name] = weights[: draw(st.sampled_from([DIMENSIONS + 1, DIMENSIONS]))]
    if draw(st.integers(0, 9)) == 0:
        model["topics"] = draw(json_values)
    return json.dumps(model) if draw(st.integers(0, 9)) else draw(json_values.map(json.dumps))


def config_folder(directory: Path, **files: str) -> Path:
    """A valid config folder (one feed, one subscription, one topic, no model) with these
    files in place of the valid ones."""
    valid = {
        "newsmon.toml": "",
        "feeds.toml": '[[feeds]]\nname = "blog"\nurl = "https://example.org/feed.xml"\n',
        "topics.toml": '[topics.health]\n[topics.health.terms]\n"hospital" = 2\n',
        "subscriptions.toml": '[[subscriptions]]\nid = "ops"\nurl = "https://h.example.org/x"\n'
        f'topics = ["*"]\nsecret = "{SECRET}"\n',
    }
    for name, text in {**valid, **files}.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def check(directory: Path, capsys: pytest.CaptureFixture[str]) -> Config | None:
    """`newsmon check` in this process: exit 0 with a config that can run, or exit 2 with every
    problem on a line of its own naming the file and the key. None when it exits 2."""
    capsys.readouterr()
    with mock.patch.dict(os.environ, {SECRET_ENV: SECRET}):
        code = main(["check", "--config", str(directory)])
        out, err = capsys.readouterr()
        assert code in (0, 2), (code, out, err)
        assert "Traceback" not in err + out
        if code == 2:
            header, *problems = err.splitlines()
            assert header.startswith("newsmon: configuration has ")
            assert len(problems) == int(header.split()[3].split("(")[0])
            for problem in problems:
                file, key, message = problem.strip().split(": ", 2)
                assert file.startswith(str(directory)) and key and message, problem
            event("rejected")
            return None
        config = load_config(directory)
    event("accepted")
    assert_runnable(config)
    return config


def assert_runnable(config: Config) -> None:
    """What the poller and the workers do with the settings at run time cannot fail."""
    s = config.settings
    for value, low, high in [
        (s.poll_interval_seconds, 1, 7 * DAY),
        (s.min_interval_seconds, 1, 7 * DAY),
        (s.max_interval_seconds, 1, 7 * DAY),
        (s.max_feed_bytes, 1, 1024**3),
        (s.fetch_concurrency, 1, 1000),
        (s.fetch_per_host, 1, 100),
        (s.seen_per_feed, 1, 10**6),
        (s.max_in_flight_per_endpoint, 1, 100),
        *[(feed.interval_seconds, 1, 7 * DAY) for feed in config.feeds],
        *[(step, 0, 7 * DAY) for step in s.retry_schedule_seconds],
    ]:
        assert type(value) is int and low <= value <= high, (value, low, high)
    for value, high in [
        (s.fetch_timeout_seconds, 300),
        (s.delivery_timeout_seconds, 300),
        (s.dedupe_window_hours, 720),
        (s.near_duplicate_similarity, 1),
        (s.disable_after_hours, 720),
        (s.dead_letter_days, 365),
    ]:
        assert type(value) is float and math.isfinite(value) and 0 < value <= high, value
    assert 1 <= int(s.dedupe_window_hours * 3600) <= 30 * DAY  # a Redis expiry in seconds
    assert 0 < len(s.retry_schedule_seconds) <= 100
    datetime.now(UTC) + timedelta(seconds=max(s.retry_schedule_seconds))  # a delivery's time
    assert int(DELIVERY_CHUNK * (s.delivery_timeout_seconds + 1)) + 60 < 10**6  # an RQ timeout
    assert "\0" not in str(s.data_dir)
    for url in [
        *(f.url for f in config.feeds),
        *(sub.url for sub in config.subscriptions),
        *([s.websub_callback_url] if s.websub_callback_url else []),
    ]:
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
        httpx.URL(url)
    for topic in config.topics:
        assert 0 < topic.threshold <= 1000 and topic.terms
        assert all(math.isfinite(w) for w in topic.terms.values())
        assert all(words(phrase) for phrase in [*topic.terms, *topic.ignore])
    if config.topic_model:
        thresholds = config.topic_model.thresholds
        assert thresholds.keys() == config.topic_model.weights.keys()
        assert all(0 < t < 1 for t in thresholds.values())
        matrix = np.array(list(config.topic_model.weights.values()), dtype=np.float32)
        assert matrix.shape[1:] == (DIMENSIONS + 1,) and np.isfinite(matrix).all()
    build_runtime_objects(config)


def build_runtime_objects(config: Config) -> None:
    """What the poller and a worker build from the config, short of opening connections (an
    HTTP client costs tens of milliseconds: their timeouts and pool are built alone)."""
    s = config.settings
    Poller(config, redis.Redis())  # connects only when used
    Classifier(config.topics)  # the model needs the encoder; its weights are checked above
    for timeout in (s.fetch_timeout_seconds, s.delivery_timeout_seconds):
        httpx.Timeout(timeout, connect=min(10.0, timeout))
    ThreadPoolExecutor(max_workers=s.max_in_flight_per_endpoint).shutdown()
    asyncio.run(_semaphores(s.fetch_concurrency, s.fetch_per_host))


async def _semaphores(*values: int) -> None:
    for value in values:
        async with asyncio.Semaphore(value):
            pass


def run_with(capsys: pytest.CaptureFixture[str], **files: str) -> Config | None:
    with tempfile.TemporaryDirectory() as directory:
        return check(config_folder(Path(directory), **files), capsys)


@EXAMPLES
@given(newsmon_files)
def test_any_newsmon_toml(capsys, sections):
    top = {k: v for k, v in sections.items() if not isinstance(v, dict)}
    text = lines(top) + "".join(
        f"[{toml_string(name)}]\n" + lines(table)
        for name, table in sections.items()
        if isinstance(table, dict)
    )
    run_with(capsys, **{"newsmon.toml": text})


@EXAMPLES
@given(st.lists(feed_tables, max_size=3) | toml_values.map(lambda v: {"feeds": v}))
def test_any_feeds_toml(capsys, feeds):
    text = lines(feeds) if isinstance(feeds, dict) else array_of_tables("feeds", feeds)
    run_with(capsys, **{"feeds.toml": text})


@EXAMPLES
@given(st.lists(subscription_tables, max_size=3) | toml_values.map(lambda v: {"subscriptions": v}))
def test_any_subscriptions_toml(capsys, subscriptions):
    if isinstance(subscriptions, dict):
        text = lines(subscriptions)
    else:
        text = array_of_tables("subscriptions", subscriptions)
    run_with(capsys, **{"subscriptions.toml": text})


@EXAMPLES
@given(topics_files() | toml_values.map(lambda v: lines({"topics": v})))
def test_any_topics_toml(capsys, text):
    run_with(capsys, **{"topics.toml": text})


@EXAMPLES
@given(topic_models())
def test_any_topic_model_json(capsys, text):
    with tempfile.TemporaryDirectory() as directory:
        folder = config_folder(Path(directory), **{TOPIC_MODEL: text})
        shutil.copy(REPO / "config" / "topics.toml", folder / "topics.toml")  # the model's
        check(folder, capsys)


@EXAMPLES
@given(
    st.sampled_from(["newsmon.toml", "feeds.toml", "topics.toml", "subscriptions.toml"]), st.data()
)
def test_any_value_in_any_key(capsys, name, data):
    """Every file: any value under a key of its own, or under a known one, at the top."""
    key = data.draw(st.sampled_from(["feeds", "subscriptions", "topics", "poller", "x"]) | texts)
    line = lines({key: data.draw(toml_values)})
    run_with(capsys, **{name: line})
