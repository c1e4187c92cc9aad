"""Redis memory over two simulated weeks of steady input: it must level off, not grow.

    python bench/redis_memory.py [--feeds 200] [--days 14] [--day-seconds 6]

Drives newsmon's own Redis code directly, as the poller and the workers would, on an
embedded redis-server: Schedule.sync / claim / set_due, EntryQueue.submit and
workers.dedupe.Deduper. Every feed publishes `--new` items per poll and shows its latest 20;
every simulated day `--churn` feeds leave feeds.toml and as many new ones join. Prints, at
the end of each simulated day, Redis `used_memory` and its keys by kind.

Time is scaled, not faked. Redis expires keys on its own clock, so the bench runs on the real
clock and shrinks every duration instead: one simulated day lasts `--day-seconds` real
seconds, and the poll interval, the feed keys' keep time (schedule.KEEP_SECONDS), the removed
feeds' grace period (schedule.REMOVED_GRACE_SECONDS) and the dedupe window (the default 72 h)
are all divided by the same factor. Redis TTLs have one-second resolution, about four
simulated hours at the default scale, which is fine for windows of days.
The RQ jobs that submit queues are deleted at once: RQ's keys are not what this measures.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

import structlog
from pipeline import vocabulary
from rq.job import Job

from monitor.core import keys
from monitor.core.config import Settings
from monitor.core.models import Entry, Feed
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller.schedule import KEEP_SECONDS, REMOVED_GRACE_SECONDS, Schedule
from monitor.poller.seen import EntryQueue
from workers.pipeline.dedupe import Deduper
from workers.pipeline.normalise import normalise

DAY = 24 * 3600
SHOWN = 20  # items in each feed document


class Publisher:
    """Synthetic feeds: each poll of a feed finds `new` more items, the latest SHOWN shown."""

    def __init__(self, new: int):
        self.new = new
        self.shown: dict[str, deque[Entry]] = {}
        self.published: Counter[str] = Counter()
        self.rng = random.Random(7)
        self.words, self.weights = vocabulary(random.Random(0))

    def document(self, feed: Feed) -> list[Entry]:
        shown = self.shown.setdefault(feed.name, deque(maxlen=SHOWN))
        for _ in range(self.new):
            self.published[feed.name] += 1
            shown.append(self.item(feed, self.published[feed.name]))
        return list(shown)

    def forget(self, feed: Feed) -> None:
        del self.shown[feed.name]

    def item(self, feed: Feed, i: int) -> Entry:
        title = " ".join(self.rng.choices(self.words, self.weights, k=9)).capitalize()
        summary = ". ".join(
            " ".join(self.rng.choices(self.words, self.weights, k=14)) for _ in "ab"
        )
        key = f"{feed.name}/{i}"
        link = f"{feed.url}{i}"
        return Entry(
            id=Entry.make_id(feed.name, key),
            feed_name=feed.name,
            feed_url=feed.url,
            key=key,
            title=title,
            link=link,
            summary=summary,
        )


def key_kinds(connection) -> tuple[Counter[str], float]:
    """Keys by kind, and the MiB the per-feed keys take (MEMORY USAGE of each)."""
    kinds: Counter[str] = Counter()
    feed_keys = []
    for key in connection.scan_iter(count=10_000):
        name = key.decode()
        if name.startswith(keys.PREFIX + "feed:"):
            kinds["feed"] += 1
            feed_keys.append(name)
        elif name.startswith(keys.PREFIX + "dd:"):
            kinds["dedupe"] += 1
        else:
            kinds["other"] += 1
    with connection.pipeline(transaction=False) as pipe:
        for name in feed_keys:
            pipe.memory_usage(name)
        feed_bytes = sum(size or 0 for size in pipe.execute())
    return kinds, feed_bytes / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--day-seconds", type=float, default=6.0)
    parser.add_argument("--interval-hours", type=float, default=12.0)
    parser.add_argument("--new", type=int, default=6, help="new items per feed per poll")
    parser.add_argument("--churn", type=int, default=5, help="feeds removed and added a day")
    parser.add_argument("--seen-per-feed", type=int, default=40)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    scale = DAY / args.day_seconds  # simulated seconds per real second

    def real(simulated_seconds: float) -> int:
        return max(round(simulated_seconds / scale), 1)

    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    connection = connect(server.start())
    schedule = Schedule(
        connection,
        lease_seconds=real(300),
        keep_seconds=real(KEEP_SECONDS),
        grace_seconds=real(REMOVED_GRACE_SECONDS),
    )
    entry_queue = EntryQueue(connection, args.seen_per_feed, keep_seconds=real(KEEP_SECONDS))
    deduper = Deduper(
        connection, real(Settings().dedupe_window_seconds), Settings.near_duplicate_similarity
    )
    interval = args.interval_hours * 3600 / scale
    publisher = Publisher(args.new)
    next_feed = 0

    def new_feed() -> Feed:
        nonlocal next_feed
        next_feed += 1
        return Feed(f"feed-{next_feed}", f"https://news-{next_feed}.example/", int(interval))

    feeds = [new_feed() for _ in range(args.feeds)]
    print(
        f"{args.feeds} feeds polled every {args.interval_hours:g} h, {args.new} new items a poll, "
        f"{args.churn} feeds replaced a day, seen_per_feed {args.seen_per_feed}; "
        f"1 day = {args.day_seconds:g} s"
    )
    print(
        "day  polls  new entries  used_memory  feed keys (MiB)  dedupe keys  other  removed feeds"
    )
    start = time.time()
    day, polls, entered = 1, 0, 0
    last_sync = 0.0
    while day <= args.days:
        now = time.time()
        if now >= start + day * args.day_seconds:
            used = connection.info("memory")["used_memory"] / 2**20
            kinds, feed_mib = key_kinds(connection)
            removed = connection.zcard(keys.FEEDS_REMOVED)
            print(
                f"{day:>3} {polls:>6} {entered:>12} {used:>7.1f} MiB {kinds['feed']:>9} "
                f"({feed_mib:4.2f}) {kinds['dedupe']:>12} {kinds['other']:>6} {removed:>14}"
            )
            day, polls, entered = day + 1, 0, 0
            for feed in feeds[: args.churn]:
                publisher.forget(feed)
            feeds = feeds[args.churn :] + [new_feed() for _ in range(args.churn)]
        by_name = {feed.name: feed for feed in feeds}
        if now - last_sync >= 60 / scale:  # a poller syncs every minute
            schedule.sync(feeds, now, interval)
            last_sync = now
        claimed = [by_name[n] for n in schedule.claim(now, len(feeds)) if n in by_name]
        for feed in claimed:
            submitted = entry_queue.submit(feed, publisher.document(feed), {"etag": "x"}, {})
            connection.delete(entry_queue.queue.key, *(Job.key_for(j) for j in submitted.job_ids))
            if submitted.new:
                deduper.check([normalise(e) for e in submitted.new])
            with connection.pipeline(transaction=False) as pipe:
                schedule.set_due(pipe, feed.name, now + interval)
                pipe.execute()
            polls += 1
            entered += len(submitted.new)
        if not claimed:
            due = schedule.next_due() or now + 0.05
            time.sleep(min(max(due - time.time(), 0.005), 0.05))
    print(f"{time.time() - start:.0f} s in all")
    server.stop()


if __name__ == "__main__":
    main()
