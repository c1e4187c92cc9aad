"""A cold start: N feeds polled for the first time, 30 items each from the last days.

    python bench/cold_start.py [--feeds N] [--items 30] [--rules-only]

The feeds' documents go through the poller's new-entry check and enqueue (EntryQueue), then
one worker drains the entries queue; it prints how long the drain takes when the first
documents are queued as news (as newsmon did before a feed's past was recorded without
alerts) and as the feed's past (now). The subscription takes every topic, so as news every
entry is classified and alerted (its delivery is refused at once: the receiver's address
is a private one).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from pipeline import rules_only_flag, synthetic_entries, write_config

from monitor.core import keys
from monitor.core.config import load_config
from monitor.core.models import Entry, Feed
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller.seen import EntryQueue
from workers import runtime, worker


def documents(feeds: int, items: int) -> list[tuple[Feed, list[Entry]]]:
    """Each feed's first document: `items` distinct entries published over the last 3 days."""
    entries = synthetic_entries(feeds * items)
    now = datetime.now(UTC)
    result = []
    for index in range(feeds):
        feed = Feed(f"feed-{index}", f"https://bench.example/{index}", 300)
        own = [
            replace(
                e,
                id=Entry.make_id(feed.name, e.key),
                feed_name=feed.name,
                published=now - timedelta(hours=3 * 24 * n / items),
            )
            for n, e in enumerate(entries[index * items : (index + 1) * items])
        ]
        result.append((feed, own))
    return result


def drain_seconds(connection, settings, feeds, as_past: bool) -> tuple[float, int]:
    """Queue every feed's first document, then time one worker draining it."""
    connection.flushdb()
    entry_queue = EntryQueue(connection, settings.seen_per_feed)
    backfilled = 0
    for feed, entries in feeds:
        checked = entry_queue.check(feed, entries, first_document=as_past)
        if not as_past:  # before: every item of a first document was news
            checked = replace(checked, new=[replace(e, backfilled=False) for e in checked.new])
        with connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            backfilled += entry_queue.enqueue(pipe, feed, checked).backfilled
            pipe.execute()
    started = time.perf_counter()
    worker.run(connection, "bench.burst", burst=True)
    elapsed = time.perf_counter() - started
    assert connection.llen(f"rq:queue:{keys.ENTRIES_QUEUE}") == 0
    return elapsed, backfilled


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=30)
    rules_only_flag(parser)
    args = parser.parse_args()

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))  # quiet
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    connection = connect(server.start())
    config = load_config(write_config(tmp / "config", "http://127.0.0.1:9/", not args.rules_only))
    runtime.install(runtime.Runtime.build(config, connection))
    feeds = documents(args.feeds, args.items)
    total = args.feeds * args.items
    print(f"cold start: {args.feeds} feeds x {args.items} items = {total} entries, one worker")
    for label, as_past in (("as news (before)", False), ("as the feeds' past (now)", True)):
        seconds, backfilled = drain_seconds(connection, config.settings, feeds, as_past)
        print(
            f"{label:<26} drained in {seconds:7.1f} s ({total / seconds:6.0f} entries/s), "
            f"{backfilled} backfilled"
        )
    server.stop()


if __name__ == "__main__":
    main()
