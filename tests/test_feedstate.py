"""FeedState: a feed's state hash read once, changed by what happened, written as what
changed; and one health for `newsmon feeds` and `newsmon stats`."""

from __future__ import annotations

import json
import math
import time
from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import keys
from monitor.core.feedstate import (
    MOVE_AFTER_REDIRECTS,
    RATE_MEMORY_SECONDS,
    UNHEALTHY_AFTER_ERRORS,
    FeedHealth,
    FeedState,
    decayed_count,
)
from monitor.core.models import Feed
from monitor.ops.root import Root
from monitor.poller.schedule import MAX_BACKOFF_SECONDS, backoff
from tests.helpers import RSS, load, make_poller
from tests.stories import ROUND_ONE_LIVEBLOG, rss

NOW = 1_800_000_000.0
# What the poller before FeedState left in a feed's hash after a 304, then a failure.
WRITTEN_BEFORE = {
    b"last_status": b"304",
    b"last_fetched": b"1799999000.25",
    b"errors": b"1",
    b"last_error": b"HTTP 500 Internal Server Error",
    b"first_fetched": b"1790000000.5",
    b"etag": b'"v7"',
    b"last_modified": b"",
    b"ttl": b"0",
    b"new_count": b"3.5",
    b"moving_to": b"",
    b"moving_count": b"0",
}


def test_a_hash_written_before_reads_typed_and_unknown_fields_are_left_alone():
    state = FeedState.read({**WRITTEN_BEFORE, b"from_a_newer_newsmon": b"x"})
    assert (state.etag, state.last_status, state.errors) == ('"v7"', 304, 1)
    assert (state.last_fetched, state.first_fetched, state.new_count) == (
        1799999000.25,
        1790000000.5,
        3.5,
    )
    assert state.last_modified == "" and state.websub_expires is None
    assert state.health is FeedHealth.FAILING
    assert state.take_changes() == {}  # read, not changed: nothing to write


def test_health_never_fetched_ok_failing_unhealthy_and_back():
    state = FeedState.read({})
    assert state.health is FeedHealth.NEVER_FETCHED
    state.not_modified(304, NOW)
    assert state.health is FeedHealth.OK
    for errors in range(1, UNHEALTHY_AFTER_ERRORS + 1):
        state.failed("HTTP 500", NOW + errors, 500)
        expected = FeedHealth.FAILING if errors < UNHEALTHY_AFTER_ERRORS else FeedHealth.UNHEALTHY
        assert (state.errors, state.health, state.last_status) == (errors, expected, 500)
    state.throttled("HTTP 429", NOW + 10, 429)  # the server asked for time: no error, none undone
    assert (state.health, state.last_status) == (FeedHealth.UNHEALTHY, 429)
    state.failed("timed out", NOW + 11)  # no answer: no status
    assert state.last_status == 0
    state.fetched(200, NOW + 20, '"v2"', None, None, new_entries=0)
    assert (state.errors, state.last_error, state.health) == (0, "", FeedHealth.OK)
    assert [h for h in FeedHealth if h.is_failing] == [FeedHealth.FAILING, FeedHealth.UNHEALTHY]


def test_a_poll_writes_only_what_it_changed():
    state = FeedState.read(WRITTEN_BEFORE)
    state.not_modified(304, NOW)
    changes = state.take_changes()
    assert changes.keys() == {"last_fetched", "errors", "last_error", "new_count"}
    assert changes["errors"] == "0" and changes["last_error"] == ""
    assert FeedState.read({k.encode(): v.encode() for k, v in changes.items()}).last_fetched == NOW
    assert state.take_changes() == {}


def test_the_first_document_counts_toward_no_rate_later_ones_do():
    state = FeedState.read({})
    state.fetched(200, NOW, '"v1"', "Mon, 01 Dec 2026 10:00:00 GMT", 5400, new_entries=30)
    assert (state.new_count, state.first_fetched, state.ttl) == (0, NOW, 5400)
    assert state.take_changes()["last_modified"] == "Mon, 01 Dec 2026 10:00:00 GMT"
    state.fetched(200, NOW + RATE_MEMORY_SECONDS, None, None, None, new_entries=2)
    assert state.new_count == 2 and state.etag == "" and state.ttl == 0
    state.not_modified(304, NOW + 2 * RATE_MEMORY_SECONDS)
    assert state.new_count == pytest.approx(2 / math.e)
    assert decayed_count(10, 0) == 10


def test_a_permanent_redirect_is_followed_once_seen_in_a_row():
    feed_url, new_url = "https://old.example/feed", "https://new.example/feed"
    state = FeedState.read({})
    assert not state.redirected(feed_url, feed_url, new_url)
    assert not state.redirected(feed_url, feed_url, None)  # not seen again: forgotten
    moved = [state.redirected(feed_url, feed_url, new_url) for _ in range(MOVE_AFTER_REDIRECTS)]
    assert moved == [False] * (MOVE_AFTER_REDIRECTS - 1) + [True]
    assert state.url_for(feed_url) == new_url
    assert state.url_for("https://elsewhere.example/feed") == "https://elsewhere.example/feed"
    assert (state.moving_to, state.moving_count) == ("", 0)


def test_backoff_doubles_up_to_its_bound_whatever_the_stored_count():
    feed = Feed("f", "https://example.org/feed", 300)
    assert [backoff(feed, errors) for errors in range(1, 6)] == [300, 600, 1200, 2400, 4800]
    assert backoff(feed, 10**18) == MAX_BACKOFF_SECONDS
    slow = Feed("slow", "https://example.org/feed", 7 * 24 * 3600)
    assert backoff(slow, 3) == slow.interval_seconds


hash_bytes = st.dictionaries(
    st.sampled_from([f.name.encode() for f in fields(FeedState) if not f.name.startswith("_")])
    | st.binary(max_size=20),
    st.binary(max_size=40)
    | st.sampled_from(
        [b"nan", b"inf", b"-1", b"1e400", b"9" * 20, b"9" * 5000, b"\xff\xfe", b" 3 "]
    ),
    max_size=12,
)


@given(hash_bytes)
def test_any_hash_reads_and_every_transition_holds(raw):
    """A hash is anyone's to write (an older newsmon, an operator with redis-cli)."""
    state = FeedState.read(raw)
    assert isinstance(state.health, FeedHealth)
    assert state.errors >= 0 and state.new_count >= 0 and math.isfinite(state.ttl)
    feed = Feed("f", "https://example.org/feed", 300)
    assert 0 < backoff(feed, state.errors) <= MAX_BACKOFF_SECONDS
    state.url_for(feed.url)
    state.redirected(feed.url, feed.url, "https://example.org/moved")
    state.failed("HTTP 500", NOW)
    state.not_modified(304, NOW + 1)
    changes = state.take_changes()
    assert all(isinstance(v, str) for v in changes.values())
    reread = FeedState.read({**raw, **{k.encode(): v.encode() for k, v in changes.items()}})
    assert reread == state


def test_one_poll_writes_the_state_once_with_its_entries_counters_and_due_time(
    tmp_path, connection, http_server
):
    http_server.route("/blog.xml", (200, {**RSS, "etag": '"v1"'}, rss(ROUND_ONE_LIVEBLOG)))
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    state_key = keys.feed_state(poller.feeds[0].name)

    fetched = commands_during(connection, lambda: poller.poll_feeds(poller.feeds))
    writes = [i for i, c in enumerate(fetched) if c.startswith(f"HSET {state_key} ")]
    assert len(writes) == 1
    transaction = fetched[fetched.index("MULTI") : fetched.index("EXEC")]
    assert fetched[writes[0]] in transaction
    assert any(c.startswith("RPUSH rq:queue:newsmon-entries") for c in transaction)
    assert any(c.startswith("ZADD newsmon:schedule ") for c in transaction)
    assert any(c.startswith("HINCRBY newsmon:stats:total feeds_fetched") for c in transaction)

    http_server.route("/blog.xml", (304, {}, b""))
    not_modified = commands_during(connection, lambda: poller.poll_feeds(poller.feeds))
    assert sum(c.startswith(f"HSET {state_key} ") for c in not_modified) == 1
    stored = FeedState.read(connection.hgetall(state_key))
    assert (stored.last_status, stored.etag, stored.health) == (304, '"v1"', FeedHealth.OK)


def test_a_hash_written_before_is_polled_on_from(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (304, {}, b""))
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    connection.hset(
        keys.feed_state(poller.feeds[0].name),
        mapping={k.decode(): v.decode() for k, v in WRITTEN_BEFORE.items()},
    )
    assert poller.poll_feeds(poller.feeds)[0].status == "not_modified"
    assert http_server.requests[0].headers["if-none-match"] == '"v7"'
    stored = FeedState.read(connection.hgetall(keys.feed_state(poller.feeds[0].name)))
    assert (stored.errors, stored.first_fetched) == (0, 1790000000.5)


def test_feeds_and_stats_agree_on_each_feeds_health(
    tmp_path, connection, http_server, redis_url, start_process
):
    http_server.route("/good.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/down.xml", (500, {}, b""))
    http_server.route("/gone.xml", (404, {}, b""))
    poller = make_poller(
        tmp_path, connection, http_server, "/good.xml", "/down.xml", "/gone.xml", "/new.xml"
    )
    good, down, gone, _ = poller.feeds
    poller.poll_feeds([good, gone])
    for _ in range(UNHEALTHY_AFTER_ERRORS):
        poller.poll_feeds([down])

    listing = start_process(
        "feeds", "--config", str(tmp_path / "config"), "--json", env={"REDIS_URL": redis_url}
    )
    assert listing.finish() == 0
    rows = {
        r["feed"]: r["health"] for r in map(json.loads, listing.log_path.read_text().splitlines())
    }
    assert rows == {
        "good-xml": "ok",
        "down-xml": "unhealthy",
        "gone-xml": "failing",
        "new-xml": "never_fetched",
    }
    feeds = Root.build(load(tmp_path / "config"), connection).snapshot()["feeds"]
    assert feeds["health"] == {"never_fetched": 1, "ok": 1, "failing": 1, "unhealthy": 1}
    assert {f["feed"]: f["health"] for f in feeds["failing_feeds"]} == {
        name: health for name, health in rows.items() if FeedHealth(health).is_failing
    }
    assert (feeds["healthy"], feeds["failing"]) == (2, 2)


def commands_during(connection, action) -> list[str]:
    """The commands Redis ran while `action` ran (MONITOR), Lua's own calls left out."""
    sentinel = f"end-of-action-{time.monotonic_ns()}"
    with connection.monitor() as monitor:
        action()
        connection.echo(sentinel)
        commands = []
        while (seen := monitor.next_command())["command"] != f"ECHO {sentinel}":
            if seen["client_type"] != "lua":
                commands.append(seen["command"])
    return commands
