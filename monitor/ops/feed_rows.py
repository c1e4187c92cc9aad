"""Each feed's row: a line of `newsmon feeds --json`, and of the board's feeds table."""

from __future__ import annotations

import time
from typing import Any

import redis

from monitor.core import keys
from monitor.core.config import Config
from monitor.core.feedstate import FeedState
from monitor.core.redact import redact_url
from monitor.ops.times import iso_time
from monitor.poller import websub


def feed_rows(connection: redis.Redis, config: Config) -> list[tuple[dict[str, Any], FeedState]]:
    """Each feed's row and the state it was read from."""
    with connection.pipeline(transaction=False) as pipe:
        for feed in config.feeds:
            pipe.hgetall(keys.feed_state(feed.name))
            pipe.zscore(keys.SCHEDULE, feed.name)
            pipe.zcard(keys.feed_seen(feed.name))
        replies = pipe.execute()
    now = time.time()
    rows = []
    for index, feed in enumerate(config.feeds):
        raw, due, seen = replies[3 * index : 3 * index + 3]
        state = FeedState.read(raw)
        row = {
            "feed": feed.name,
            "url": redact_url(feed.url),
            "health": state.health,
            "errors": state.errors,
            "last_status": str(state.last_status or ""),
            "last_fetched": (
                iso_time(state.last_fetched) if state.last_fetched is not None else None
            ),
            "next_due_in_seconds": round(max(due - now, 0), 1) if due is not None else None,
            "entries_seen": seen,
            "backfilled": state.backfilled,
            "last_error": state.last_error,
            "push": "active" if websub.is_active(state, now) else "",
        }
        rows.append((row, state))
    return rows
