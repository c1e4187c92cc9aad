"""The whole monitor's throughput: from fetching a feed to the receiver's answer.

    python bench/throughput.py [--entries 2000] [--feeds 20] [--workers 2]

Local feeds each serve an empty document first (a feed's first document is its past, not
news), then their share of `entries` new items at once. The real poller loop (this
process) fetches them every second; `workers` `newsmon worker` processes do the rest; a
receiver process answers every alert. The entries are the labelled fixtures' first
versions, so their length and wording are those of real headlines and summaries; one
subscription takes every topic. Three runs, each on a fresh Redis:

- semantic layer on (the shipped config: topic model and stories across outlets);
- rules alone (`story_probability = 0`, no topic model);
- rules alone, naive: the poller queues one RQ job per entry instead of one per batch.

Each prints entries/s from the first fetch of the items to the last entry queued by the
poller, to the last entry processed, and to the last alert answered.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import structlog
from feeds import feeds_toml, rss
from feeds import serve as serve_feeds
from pipeline import start_workers, stop_workers, write_config
from receiver import arrivals
from receiver import start as start_receiver
from rq import Worker

from monitor.core import keys
from monitor.core.config import load_config
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller import seen
from monitor.poller.loop import Poller

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
DRAIN_SECONDS = 600


def labelled_items(count: int) -> list[dict]:
    """The fixtures' first versions, each with a guid and link of its own."""
    rows = [
        json.loads(line)
        for path in sorted(FIXTURES.glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    firsts = [r for r in rows if r["variant"] == "original"]
    return [
        {**firsts[i % len(firsts)], "guid": f"item-{i}", "link": f"https://bench.example/{i}"}
        for i in range(count)
    ]


class Feeds:
    """Local feeds: the first request of each gets an empty document, later ones its items.
    Notes when the first items were served."""

    def __init__(self, items: list[dict], feeds: int):
        self.items = {f"feed-{k}": items[k::feeds] for k in range(feeds)}
        self.asked: set[str] = set()
        self.first_served: float | None = None
        self.lock = threading.Lock()
        self.server = serve_feeds(self.document)

    def document(self, name: str) -> bytes:
        with self.lock:
            first = name not in self.asked
            self.asked.add(name)
            if not first and self.first_served is None:
                self.first_served = time.time()
        shown = [] if first else self.items[name]
        return rss((i["guid"], i["title"], i["link"], i["summary"]) for i in shown)


def run(items: list[dict], feeds: int, workers: int, semantic: bool, batch_size: int) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    url = server.start()
    connection = connect(url)
    log_path = tmp / "arrivals.log"
    log_path.touch()
    receiver, receiver_port = start_receiver(log_path)
    served = Feeds(items, feeds)
    config_dir = write_config(
        tmp / "config",
        f"http://127.0.0.1:{receiver_port}/all",
        semantic,
        feeds=feeds_toml(served.items, served.server),
    )
    processes = start_workers(config_dir, url, workers)
    while Worker.count(connection=connection) < workers:
        time.sleep(0.2)
    if semantic:
        time.sleep(3)  # each worker loads the encoder before its first job
    seen.BATCH_SIZE, batch_was = batch_size, seen.BATCH_SIZE
    poller = Poller(load_config(config_dir), connect(url))
    stop = threading.Event()
    polling = threading.Thread(target=poller.run, args=(stop,))
    polling.start()
    deadline = time.time() + DRAIN_SECONDS
    processed_at = enqueued_at = None
    while time.time() < deadline:
        if enqueued_at is None and int(
            connection.hget(keys.STATS_TOTAL, "entries_enqueued") or 0
        ) >= len(items):
            enqueued_at = time.time()
        processed = int(connection.hget(keys.STATS_TOTAL, "entries_processed") or 0)
        if processed >= len(items) and processed_at is None:
            processed_at = time.time()
        delivered = int(connection.hget(keys.STATS_TOTAL, "alerts_delivered") or 0)
        enqueued = int(connection.hget(keys.STATS_TOTAL, "alerts_enqueued") or 0)
        if processed_at and delivered >= enqueued:
            break
        time.sleep(0.05)
    stop.set()
    polling.join()
    seen.BATCH_SIZE = batch_was
    answered = arrivals(log_path, "/all")
    last_answer = max((at for at, _ in answered.values()), default=time.time())
    started = served.first_served or time.time()
    stop_workers(processes)
    receiver.terminate()
    connection.close()
    server.stop()
    if processed_at is None:
        return f"not drained in {DRAIN_SECONDS} s"
    return (
        f"{len(items) / ((enqueued_at or processed_at) - started):6.0f} entries/s queued, "
        f"{len(items) / (processed_at - started):6.0f} entries/s processed, "
        f"{len(items) / (last_answer - started):6.0f} entries/s to the receiver's answer "
        f"({len(answered)} alerts)"
    )


def main() -> None:
    os.environ.setdefault("NEWSMON_ALLOW_PRIVATE_TARGETS", "1")  # the feeds are local
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    items = labelled_items(args.entries)
    print(f"{args.entries} entries over {args.feeds} feeds, {args.workers} workers")
    for label, semantic, batch_size in (
        ("semantic layer on", True, seen.BATCH_SIZE),
        ("rules alone", False, seen.BATCH_SIZE),
        ("rules alone, one job per entry", False, 1),
    ):
        print(f"  {label:<32} {run(items, args.feeds, args.workers, semantic, batch_size)}")


if __name__ == "__main__":
    main()
