"""Latency from the poller receiving a feed body to the receiver getting the alert.

    python bench/latency.py [--rate 100] [--feeds 10] [--seconds 20] [--workers 2] [--rules-only]

`feeds` local feeds publish `rate` new entries per second between them; the poller (this
process, its real loop) fetches each every second, `workers` `newsmon worker` processes do
the rest, and a receiver process logs each arrival. An entry's clock starts when the poll
whose body first holds it begins, so fetching and parsing count against newsmon.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import structlog
from feeds import feeds_toml, rss
from feeds import serve as serve_feeds
from pipeline import (
    rules_only_flag,
    start_workers,
    stop_workers,
    synthetic_entries,
    write_config,
)
from receiver import arrivals
from receiver import start as start_receiver

from monitor.core.config import load_config
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller.loop import Poller


class Publisher:
    """A feed whose item i appears at start + i / rate; a fetch shows the newest 3 s of them."""

    def __init__(self, rate: float, seconds: int, seed: int):
        self.rate = rate
        self.items = [
            dataclasses.replace(e, link=f"{e.link}?source={seed}")
            for e in synthetic_entries(int(rate * (seconds + 5)), seed=seed)
        ]
        self.window = max(int(rate * 3), 10)
        self.started = time.time()
        self.served = 0  # items in the newest body served

    def published(self, at: float) -> int:
        return min(int((at - self.started) * self.rate), len(self.items))

    def body(self) -> bytes:
        newest = self.served = self.published(time.time())
        shown = reversed(self.items[max(newest - self.window, 0) : newest])
        return rss((e.key, e.title, e.link, e.summary) for e in shown)


class TimedPoller(Poller):
    """The real poller, noting when each poll starts and how many items its body held."""

    def __init__(self, config, connection, publishers: dict[str, Publisher]):
        super().__init__(config, connection)
        self.publishers = publishers
        self.polls: dict[str, list[tuple[float, int]]] = {name: [] for name in publishers}

    async def _poll(self, fetching, feed, state):
        began = time.time()
        outcome = await super()._poll(fetching, feed, state)
        self.polls[feed.name].append((began, self.publishers[feed.name].served))
        return outcome


def main() -> None:
    os.environ.setdefault("NEWSMON_ALLOW_PRIVATE_TARGETS", "1")  # the feeds are local
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--feeds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    rules_only_flag(parser)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    url = server.start()
    log_path = tmp / "arrivals.log"
    receiver, receiver_port = start_receiver(log_path)
    publishers = {
        f"feed-{k}": Publisher(args.rate / args.feeds, args.seconds, seed=k)
        for k in range(args.feeds)
    }

    feed_server = serve_feeds(lambda name: publishers[name].body())
    config_dir = write_config(
        tmp / "config",
        f"http://127.0.0.1:{receiver_port}/all",
        not args.rules_only,
        feeds=feeds_toml(publishers, feed_server),
    )
    config = load_config(config_dir)
    workers = start_workers(config_dir, url, args.workers)
    time.sleep(2)

    poller = TimedPoller(config, connect(url), publishers)
    started = time.time()
    for publisher in publishers.values():
        publisher.started = started
    stop = threading.Event()
    polling = threading.Thread(target=poller.run, args=(stop,))
    polling.start()
    time.sleep(args.seconds)
    stop.set()
    polling.join()
    time.sleep(3)

    where = {e.link: (name, i) for name, p in publishers.items() for i, e in enumerate(p.items)}
    latencies = []
    for arrived, link in arrivals(log_path, "/all").values():
        name, index = where[link]
        counts = [count for _, count in poller.polls[name]]
        first_poll = bisect.bisect_right(counts, index)  # the first poll whose body held it
        latencies.append((arrived - poller.polls[name][first_poll][0]) * 1000)
    latencies.sort()
    published = sum(polls[-1][1] for polls in poller.polls.values())
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    print(
        f"{args.rate} new entries/s over {args.feeds} feeds for {args.seconds} s, "
        f"{args.workers} workers: {len(latencies)}/{published} delivered; poll -> receiver "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    stop_workers(workers)
    receiver.terminate()
    server.stop()


if __name__ == "__main__":
    main()
