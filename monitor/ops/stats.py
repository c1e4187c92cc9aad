"""The read side of the counters and heartbeats (`monitor.core.counters`): the snapshot that
`newsmon stats`, `/healthz` and `/metrics` show.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis
from rq import Queue, Worker

from monitor.core import keys, queues
from monitor.core.config import Config
from monitor.core.counters import COUNTERS, SUBSCRIPTION_COUNTERS, subscription_field
from monitor.core.feedstate import FeedHealth, FeedState
from monitor.core.histograms import HISTOGRAMS, distribution

RATE_MINUTES = 5
LAST_HOUR_MINUTES = 60
HEARTBEAT_FRESH_SECONDS = 60


def _ints(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in raw.items()}


def snapshot(
    connection: redis.Redis,
    config: Config,
    endpoints: dict[str, dict[str, Any]],
    dead_letters: dict[str, int],
) -> dict[str, Any]:
    """Everything an operator watches, as plain data (the JSON of `newsmon stats --json`).
    `endpoints` holds each subscription's endpoint status, failing_since, last_error,
    next_try (when a failing endpoint is tried next: its deliveries wait until then) and
    disabled_reason, the file's and the API's subscriptions alike; `dead_letters` how many
    each has."""
    now = time.time()
    minute = int(now // 60)
    with connection.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.STATS_TOTAL)
        for m in range(minute - RATE_MINUTES + 1, minute + 1):
            # The counters by name: the hash also holds each subscription's outcomes.
            pipe.hmget(keys.stats_minute(m), COUNTERS)
        for feed in config.feeds:
            pipe.hgetall(keys.feed_state(feed.name))
        for subscription_id in endpoints:
            pipe.hgetall(keys.stats_subscription(subscription_id))
        pipe.zrangebyscore(
            keys.heartbeats("poller"), now - HEARTBEAT_FRESH_SECONDS, "+inf", withscores=True
        )
        for histogram in HISTOGRAMS:
            pipe.hgetall(keys.histogram(histogram.name))
        replies = iter(pipe.execute())
    totals = _ints(next(replies))
    recent = [
        {name: int(v or 0) for name, v in zip(COUNTERS, next(replies), strict=True)}
        for _ in range(RATE_MINUTES)
    ]
    feed_states = [FeedState.read(next(replies)) for _ in config.feeds]
    subscription_counts = [_ints(next(replies)) for _ in endpoints]
    pollers = next(replies)
    distributions = {h.name: distribution(h, next(replies)) for h in HISTOGRAMS}

    # The last five minute buckets, the current one counting for the part of it that passed.
    minutes_covered = RATE_MINUTES - 1 + (now % 60) / 60

    def per_minute(name: str) -> float:
        return round(sum(m.get(name, 0) for m in recent) / minutes_covered, 1)

    processed = sum(m.get("entries_processed", 0) for m in recent)
    failing_feeds = [
        {
            "feed": feed.name,
            "health": state.health,
            "errors": state.errors,
            "last_error": state.last_error,
        }
        for feed, state in zip(config.feeds, feed_states, strict=True)
        if state.health.is_failing
    ]
    by_health = Counter(state.health for state in feed_states)
    subscriptions = {
        subscription_id: {
            **endpoint,
            **{name: counts.get(name, 0) for name in SUBSCRIPTION_COUNTERS},
            "dead_letters": dead_letters[subscription_id],
        }
        for (subscription_id, endpoint), counts in zip(
            endpoints.items(), subscription_counts, strict=True
        )
    }
    return {
        "queues": {
            name: _queue_depths(queues.queue(name, connection))
            for name in (keys.ENTRIES_QUEUE, keys.DELIVERIES_QUEUE)
        },
        "per_minute": {
            name: per_minute(name)
            for name in (
                "entries_processed",
                "entries_duplicate",
                "alerts_delivered",
                "alerts_retried",
                "alerts_dead",
                "feeds_failed",
            )
        },
        "duplicate_ratio": round(sum(m.get("entries_duplicate", 0) for m in recent) / processed, 3)
        if processed
        else 0.0,
        "totals": {name: totals.get(name, 0) for name in COUNTERS},
        "subscriptions": subscriptions,
        "feeds": {
            "total": len(config.feeds),
            "failing": len(failing_feeds),  # failing or unhealthy
            "healthy": len(config.feeds) - len(failing_feeds),
            "health": {health: by_health[health] for health in FeedHealth},
            "failing_feeds": failing_feeds,
        },
        "pollers": len(pollers),
        "poller_heartbeat_age_seconds": round(now - max(s for _, s in pollers), 1)
        if pollers
        else None,
        "workers": live_workers(connection),
        "histograms": {
            name: {"buckets": d.buckets, "sum": round(d.sum, 6), "count": d.count}
            for name, d in distributions.items()
        },
    }


def subscriptions_last_hour(
    connection: redis.Redis, subscription_ids: Iterable[str]
) -> dict[str, dict[str, int]]:
    """Each subscription's delivered / retried / failed / dead in the last hour: the current
    minute's bucket and the 59 before it."""
    ids = list(subscription_ids)
    fields = [subscription_field(i, outcome) for i in ids for outcome in SUBSCRIPTION_COUNTERS]
    sums = [0] * len(fields)
    if fields:
        minute = int(time.time() // 60)
        with connection.pipeline(transaction=False) as pipe:
            for m in range(minute - LAST_HOUR_MINUTES + 1, minute + 1):
                pipe.hmget(keys.stats_minute(m), fields)
            for values in pipe.execute():
                sums = [total + int(v or 0) for total, v in zip(sums, values, strict=True)]
    per_id = iter(sums)
    return {i: {outcome: next(per_id) for outcome in SUBSCRIPTION_COUNTERS} for i in ids}


def _queue_depths(queue: Queue) -> dict[str, int]:
    return {
        "queued": queue.count,
        # Counted as they stand: RQ's `.count` would clean the registries up, a write (and
        # the retry of abandoned jobs) on every scrape.
        "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
        "started": queue.started_job_registry.get_job_count(cleanup=False),
        "failed": queue.failed_job_registry.get_job_count(cleanup=False),
    }


def health(connection: redis.Redis) -> tuple[bool, dict[str, Any]]:
    """Healthy when Redis answers, a poller beat within a minute and a worker is registered."""
    try:
        connection.ping()
    except redis.RedisError as exc:
        return False, {"redis": f"unreachable: {exc}"}
    now = time.time()
    beats: Iterable[tuple[bytes, float]] = connection.zrangebyscore(
        keys.heartbeats("poller"), now - HEARTBEAT_FRESH_SECONDS, "+inf", withscores=True
    )
    newest = max((score for _, score in beats), default=None)
    workers = live_workers(connection)
    checks = {
        "redis": "ok",
        "poller": "ok" if newest else f"no heartbeat in the last {HEARTBEAT_FRESH_SECONDS}s",
        "workers": "ok" if workers else "no worker registered",
    }
    return all(v == "ok" for v in checks.values()), {**checks, "worker_count": workers}


def live_workers(connection: redis.Redis) -> int:
    """The workers whose registration has not expired. RQ's set of workers keeps a killed
    one until a live worker cleans the set, which never comes when every worker is dead."""
    names = list(connection.smembers(Worker.redis_workers_keys))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(name)
        return sum(pipe.execute())
