"""Counters and heartbeats that every newsmon process writes to Redis (`monitor.ops.stats`
reads them for `newsmon stats`, `/healthz` and `/metrics`).

Counters live in Redis, not in each process, so one view covers every poller and worker on
every machine: a running total, a per-minute hash (kept two hours) for rates, and a hash per
subscription. A subscription's outcomes also count in the per-minute hash, under fields of
their own (`subscription_field`), so its last hour can be read. Increments ride in the
pipelines the steps already send, as do the histograms' observations
(`monitor.core.histograms`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis

from monitor.core import keys
from monitor.core.histograms import Observations, observe
from monitor.core.processes import process_name

MINUTES_KEPT = 120

COUNTERS = (
    "feeds_fetched", "feeds_not_modified", "feeds_failed", "feeds_pushed",
    "entries_enqueued", "entries_edited", "entries_backfilled", "entries_processed",
    "entries_duplicate",
    "alerts_enqueued", "alerts_delivered", "alerts_retried", "alerts_failed", "alerts_dead",
)  # fmt: skip
SUBSCRIPTION_COUNTERS = ("delivered", "retried", "failed", "dead")


def subscription_field(subscription: str, outcome: str) -> str:
    """The per-minute hash's field counting one subscription's `outcome` in that minute."""
    return f"subscription:{subscription}:{outcome}"


def count(
    pipe: redis.client.Pipeline,
    counters: Mapping[str, int],
    subscription: str = "",
    *,
    observations: Observations | None = None,
) -> None:
    """Add to the counters (and the histograms, with `observations`), in the caller's
    pipeline. With `subscription`, the counters named alerts_<x> also add to that
    subscription's <x>."""
    if observations:
        observe(pipe, observations)
    minute_key = keys.stats_minute(int(time.time() // 60))
    for name, value in counters.items():
        if value:
            pipe.hincrby(keys.STATS_TOTAL, name, value)
            pipe.hincrby(minute_key, name, value)
            if subscription and name.startswith("alerts_"):
                outcome = name.removeprefix("alerts_")
                pipe.hincrby(keys.stats_subscription(subscription), outcome, value)
                pipe.hincrby(minute_key, subscription_field(subscription, outcome), value)
    pipe.expire(minute_key, MINUTES_KEPT * 60)


def record(
    connection: redis.Redis,
    counters: dict[str, int],
    subscription: str = "",
    *,
    observations: Observations | None = None,
) -> None:
    """`count`, in a pipeline of its own."""
    with connection.pipeline() as pipe:
        count(pipe, counters, subscription, observations=observations)
        pipe.execute()


def heartbeat(connection: redis.Redis, role: str) -> None:
    """Say this process is alive; old beats are trimmed as new ones come."""
    now = time.time()
    key = keys.heartbeats(role)
    with connection.pipeline() as pipe:
        pipe.zadd(key, {process_name(): now})
        pipe.zremrangebyscore(key, "-inf", now - 3600)
        pipe.execute()
