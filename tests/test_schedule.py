"""Scheduling shared by pollers: claims, leases, adaptive intervals, and two real pollers."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict

import pytest

from monitor.core import keys
from monitor.core.models import Feed
from monitor.poller.schedule import Schedule, next_interval
from tests.helpers import make_poller, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, rss

BOUNDS = (60, 3600)


def test_a_due_feed_is_claimed_once_and_a_dead_pollers_lease_runs_out(connection):
    schedule = Schedule(connection, lease_seconds=100)
    feeds = [Feed(f"f{i}", f"https://example.org/{i}", 300) for i in range(5)]
    now = time.time()
    schedule.sync(feeds, now, spread_seconds=0)

    first, second = schedule.claim(now, limit=3), schedule.claim(now, limit=10)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert schedule.claim(now + 99, limit=10) == []  # leased, whoever asks
    # The poller holding `first` died without writing a due time: its leases run out.
    assert sorted(schedule.claim(now + 101, limit=10)) == sorted(first + second)


def test_sync_adds_new_feeds_keeps_due_times_and_drops_removed_ones(connection):
    schedule = Schedule(connection, lease_seconds=100)
    now = time.time()
    schedule.sync([Feed("a", "https://a.example/", 300)], now, spread_seconds=10)
    connection.zadd(keys.SCHEDULE, {"a": now + 250})  # as a poll would have set it
    schedule.sync(
        [Feed("a", "https://a.example/", 300), Feed("b", "https://b.example/", 300)], now, 10
    )
    due = dict(connection.zrange(keys.SCHEDULE, 0, -1, withscores=True))
    assert due[b"a"] == pytest.approx(now + 250)
    assert now <= due[b"b"] <= now + 10
    schedule.sync([Feed("b", "https://b.example/", 300)], now, 10)
    assert connection.zscore(keys.SCHEDULE, "a") is None


def test_an_adaptive_feed_follows_its_update_rate_within_bounds():
    feed = Feed("f", "https://example.org/", 300, adaptive=True)
    day = 24 * 3600
    # Watched for a day: ~47 new entries is one per ~30 min; 1000 hits the lower bound;
    # none at all, the upper one.
    assert next_interval(feed, 47, day, BOUNDS) == pytest.approx(day * 0.632 / 48, rel=0.01)
    assert next_interval(feed, 1000, day, BOUNDS) == 60
    assert next_interval(feed, 0, day, BOUNDS) == 3600
    # A feed watched for less than one default interval keeps the default.
    assert next_interval(feed, 5, 100, BOUNDS) == 300
    # A publisher's <ttl> or max-age is a floor, even for a busy feed.
    assert next_interval(feed, 1000, day, BOUNDS, floor_seconds=1800) == 1800


def test_a_feed_with_its_own_interval_keeps_it():
    feed = Feed("f", "https://example.org/", 90)
    assert next_interval(feed, 1000, 7 * 24 * 3600, BOUNDS) == 90
    assert next_interval(feed, 0, 7 * 24 * 3600, BOUNDS) == 90


def test_rss_ttl_holds_the_next_poll_back(tmp_path, connection, http_server):
    http_server.route(
        "/slow.xml",
        (
            200,
            {"content-type": "application/rss+xml"},
            rss(ROUND_ONE_LIVEBLOG, head="<ttl>90</ttl>"),
        ),
    )
    poller = make_poller(tmp_path, connection, http_server, "/slow.xml")
    outcome = poller.poll_feeds([poller.feeds[0]])[0]
    assert outcome.next_poll_in == 90 * 60
    assert connection.zscore(keys.SCHEDULE, "slow-xml") - time.time() == pytest.approx(5400, abs=5)


def test_two_pollers_fetch_each_due_feed_exactly_once(
    tmp_path, connection, http_server, redis_url, start_process
):
    """Two `newsmon poll` processes share 20 feeds due every 2 s: every feed is fetched on
    its due time by one of them, never twice, and none is starved."""
    fetched = defaultdict(list)
    every_feed_thrice = threading.Condition()

    def answer(request):
        with every_feed_thrice:
            fetched[request.path].append(time.monotonic())
            every_feed_thrice.notify_all()
        return 304, {}, b""

    feeds = []
    for i in range(20):
        http_server.route(f"/feed-{i}.xml", answer)
        feeds.append(
            {
                "name": f"feed-{i}",
                "url": http_server.url_for(f"/feed-{i}.xml"),
                "interval_seconds": 2,
            }
        )
    config = write_config(tmp_path / "config", feeds=feeds)
    env = {"REDIS_URL": redis_url}
    pollers = [start_process("poll", "--config", str(config), env=env) for _ in range(2)]
    # Until every feed was fetched three times (a busy machine starts pollers slowly).
    with every_feed_thrice:
        every_feed_thrice.wait_for(
            lambda: len(fetched) == 20 and all(len(t) >= 3 for t in fetched.values()), timeout=60
        )
    assert [p.stop() for p in pollers] == [0, 0]

    for path, times in fetched.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap > 1.5 for gap in gaps), (path, gaps)  # never twice for one due time
    assert len(fetched) == 20 and all(len(t) >= 3 for t in fetched.values())  # none starved
    per_poller = [sum(e["event"] == "feed.not_modified" for e in p.events()) for p in pollers]
    assert all(count > 0 for count in per_poller), per_poller  # both took a share
    assert sum(per_poller) == sum(len(t) for t in fetched.values())
