"""Redis memory is bounded: every key newsmon writes expires or has a documented bound, and a
feed removed from feeds.toml loses its keys after a grace period (and only then)."""

from __future__ import annotations

import re
import time

import pytest

from monitor.core import keys
from monitor.core.models import Feed
from monitor.poller.loop import Poller
from monitor.poller.parse import parse_feed
from monitor.poller.schedule import KEEP_SECONDS, REMOVED_GRACE_SECONDS, Schedule
from monitor.poller.seen import EntryQueue
from tests.helpers import RSS, SECRET, load, make_poller, run_worker, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, WIRE_ITEMS, atom, rss

DAY = 24 * 3600

# Keys under `newsmon:` that may live without a TTL, each with what bounds it. Everything
# else newsmon writes must expire.
BOUNDED = {
    r"schedule": "one entry per configured feed; a removed feed's goes at once",
    r"feeds:removed": "feeds removed within the grace period; each leaves after it",
    r"stats:total": "one counter per stat name, a fixed set",
    r"stats:subscription:[^:]+": "one hash per subscription, four counters",
    r"endpoint:[^:]+": "one hash per subscription, a few fields",
    r"heartbeat:[^:]+": "one per role; beats older than an hour are trimmed",
    r"dead(:order|:subscription:[^:]+)?": "trimmed to dead_letter_days and DEAD_LETTERS_KEPT",
    r"workers": "names of running workers; a gone worker's name is removed on release",
    r"worker:[^:]+:claimed": "one per running worker, emptied as each claimed job starts",
    r"histogram:[^:]+": "one hash per histogram, a fixed set: a field per bucket, and the sum",
}


def feed_ttls(connection, name: str) -> list[int]:
    return [connection.ttl(key) for key in keys.feed_keys(name)]


def test_a_polled_feeds_keys_expire_a_week_after_its_next_poll(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/broken.xml", (500, {}, b"oops"))
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml", "/broken.xml")
    blog, broken = poller.feeds
    outcome, failed = poller.poll_feeds([blog, broken])

    # All three keys of the fetched feed, and the state a failing feed has, each expire a
    # week after the next poll, whatever its interval or backoff.
    for ttl in feed_ttls(connection, blog.name):
        assert ttl == pytest.approx(KEEP_SECONDS + outcome.next_poll_in, abs=5)
    assert connection.ttl(keys.feed_state(broken.name)) == pytest.approx(
        KEEP_SECONDS + failed.next_poll_in, abs=5
    )

    # Every poll pushes it on, whatever its outcome.
    for key in keys.feed_keys(blog.name):
        connection.expire(key, 60)
    http_server.route("/blog.xml", (304, {}, b""))
    outcome = poller.poll_feeds([blog])[0]
    assert outcome.status == "not_modified"
    assert min(feed_ttls(connection, blog.name)) >= KEEP_SECONDS + outcome.next_poll_in - 5


def test_a_pushed_document_extends_a_feeds_keys_and_never_shortens_them(connection):
    """A WebSub push writes through EntryQueue.submit without a poll's set_due after it."""
    feed = Feed("pushed", "https://example.org/feed.xml", 300)
    entries = parse_feed(feed, rss(ROUND_ONE_LIVEBLOG), "application/rss+xml").entries
    queue = EntryQueue(connection, seen_per_feed=100)
    connection.hset(keys.feed_state(feed.name), "first_fetched", 1)
    queue.submit(feed, entries, {"last_pushed": 1}, {})
    assert all(
        ttl == pytest.approx(KEEP_SECONDS, abs=5) for ttl in feed_ttls(connection, feed.name)
    )

    # A long interval's set_due left a later expiry: a push keeps it.
    for key in keys.feed_keys(feed.name):
        connection.expire(key, 30 * DAY)
    queue.submit(feed, entries, {"last_pushed": 2}, {})
    assert all(ttl > 29 * DAY for ttl in feed_ttls(connection, feed.name))


def seed_feed(connection, name: str) -> None:
    """What polls leave of a feed: its state, seen-set and digests."""
    connection.hset(keys.feed_state(name), "etag", '"v1"')
    connection.zadd(keys.feed_seen(name), {"item": 1})
    connection.hset(keys.feed_digests(name), "item", "d")


def feed_exists(connection, name: str) -> list[bool]:
    return [bool(connection.exists(key)) for key in keys.feed_keys(name)]


def test_a_removed_feeds_keys_go_after_the_grace_period_not_before(connection):
    schedule = Schedule(connection, lease_seconds=100)
    a, b = Feed("a", "https://a.example/", 300), Feed("b", "https://b.example/", 300)
    now = time.time()
    schedule.sync([a, b], now, 0)
    seed_feed(connection, "a")
    seed_feed(connection, "b")

    schedule.sync([b], now, 0)  # "a" is gone from feeds.toml
    assert connection.zscore(keys.SCHEDULE, "a") is None
    assert connection.zscore(keys.FEEDS_REMOVED, "a") == pytest.approx(now)
    # Later syncs keep the time it was first found gone.
    assert schedule.sync([b], now + DAY, 0) == []
    assert schedule.sync([b], now + REMOVED_GRACE_SECONDS - 1, 0) == []
    assert feed_exists(connection, "a") == [True, True, True]

    assert schedule.sync([b], now + REMOVED_GRACE_SECONDS + 1, 0) == ["a"]
    assert feed_exists(connection, "a") == [False, False, False]
    assert connection.zscore(keys.FEEDS_REMOVED, "a") is None
    assert feed_exists(connection, "b") == [True, True, True]
    assert connection.zscore(keys.SCHEDULE, "b") is not None


def test_a_feed_put_back_within_the_grace_period_keeps_what_it_has_seen(connection):
    schedule = Schedule(connection, lease_seconds=100)
    a, b = Feed("a", "https://a.example/", 300), Feed("b", "https://b.example/", 300)
    now = time.time()
    schedule.sync([a, b], now, 0)
    seed_feed(connection, "a")
    schedule.sync([b], now, 0)
    schedule.sync([a, b], now + DAY, 0)  # removed by mistake, put back a day later
    assert connection.zscore(keys.FEEDS_REMOVED, "a") is None
    assert connection.zscore(keys.SCHEDULE, "a") is not None
    assert schedule.sync([a, b], now + 2 * REMOVED_GRACE_SECONDS, 0) == []
    assert feed_exists(connection, "a") == [True, True, True]


def test_a_poller_on_an_old_config_cannot_drop_a_feed_a_newer_poller_knows(connection):
    """During a rollout the old poller finds the new feed "gone" at every sync, but the new
    poller unmarks it at each of its own syncs, so the grace period never runs out."""
    old = Schedule(connection, lease_seconds=100)
    new = Schedule(connection, lease_seconds=100)
    a, added = Feed("a", "https://a.example/", 300), Feed("added", "https://n.example/", 300)
    now = time.time()
    new.sync([a, added], now, 0)
    seed_feed(connection, "added")
    for hour in range(2 * REMOVED_GRACE_SECONDS // 3600):  # both run for two grace periods
        assert old.sync([a], now + hour * 3600, 0) == []
        assert new.sync([a, added], now + hour * 3600 + 60, 0) == []
    assert feed_exists(connection, "added") == [True, True, True]

    # Once no poller has known it for the grace period, it goes.
    later = now + 2 * REMOVED_GRACE_SECONDS
    old.sync([a], later, 0)
    assert old.sync([a], later + REMOVED_GRACE_SECONDS + 1, 0) == ["added"]


def test_every_newsmon_key_expires_or_has_a_documented_bound(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route(
        "/wire.atom", (200, {"content-type": "application/atom+xml"}, atom(WIRE_ITEMS))
    )
    http_server.route("/gone.xml", (500, {}, b"oops"))
    http_server.route("/hooks", (204, {}, b""))
    http_server.route("/down", (500, {}, b""))
    feeds = [
        {"name": "liveblog", "url": http_server.url_for("/blog.xml")},
        {"name": "wire", "url": http_server.url_for("/wire.atom")},
        {"name": "gone", "url": http_server.url_for("/gone.xml")},
    ]
    subscriptions = [
        {"id": "all", "url": http_server.url_for("/hooks"), "topics": ["*"], "secret": SECRET},
        {"id": "down", "url": http_server.url_for("/down"), "topics": ["*"], "secret": SECRET},
    ]
    config = load(write_config(tmp_path / "config", feeds=feeds, subscriptions=subscriptions))
    Poller(config, connection).run_once()
    run_worker(config, connection)
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_TWO_LIVEBLOG)))
    # A new config without "gone": it is marked removed.
    config = load(write_config(tmp_path / "config", feeds=feeds[:2], subscriptions=subscriptions))
    poller = Poller(config, connection)
    poller.schedule.sync(poller.feeds, time.time(), 0)
    poller.poll_feeds(poller.feeds)
    run_worker(config, connection)

    unbounded = []
    names = [key.decode() for key in connection.scan_iter(match=f"{keys.PREFIX}*")]
    for name in names:
        rest = name.removeprefix(keys.PREFIX)
        if connection.ttl(name) < 0 and not any(re.fullmatch(p, rest) for p in BOUNDED):
            unbounded.append(name)
    assert unbounded == []
    assert keys.FEEDS_REMOVED in names  # the run did reach the removal path
    assert any(name.startswith(keys.PREFIX + "dd:") for name in names)  # and the workers
