"""Throughput of the worker steps and of deliveries, on an embedded Redis and a local receiver.

    python bench/pipeline.py [--entries N]

Prints entries/s for the steps alone (normalise -> dedupe -> classify -> match, no RQ),
entries/s through RQ as newsmon queues them (one job per fetched batch) beside the naive
one-job-per-entry baseline, and signed deliveries/s to a local receiver with one worker.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rq import Queue, SimpleWorker

from monitor import keys
from monitor.config import load_config
from monitor.enqueue import BATCH_SIZE, PROCESS_JOB
from monitor.models import Entry
from monitor.redis_server import EmbeddedRedis
from workers import runtime
from workers.fanout import alerts_for
from workers.jobs import deliver_alerts
from workers.normalise import normalise

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WORDS = [
    "drone",
    "strike",
    "talks",
    "ministers",
    "ambassador",
    "hospital",
    "infection",
    "aid",
    "refugees",
    "gas",
    "pipeline",
    "election",
    "parliament",
    "festival",
    "film",
    "border",
    "asylum",
    "shelling",
    "troops",
    "village",
    "city",
    "regional",
    "governor",
    "said",
    "officials",
    "overnight",
    "reported",
    "according",
    "new",
    "after",
    "before",
    "during",
    "against",
    "with",
    "from",
    "about",
    "more",
    "than",
    "people",
    "residents",
    "families",
    "children",
    "workers",
    "charity",
    "power",
    "grid",
    "oil",
    "refinery",
    "summit",
    "envoy",
    "sanctions",
    "vote",
    "coalition",
    "museum",
    "concert",
    "vaccine",
    "outbreak",
]


def synthetic_entries(count: int, seed: int = 7) -> list[Entry]:
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        title = " ".join(rng.choices(WORDS, k=9)).capitalize()
        summary = "<p>" + ". ".join(" ".join(rng.choices(WORDS, k=14)) for _ in range(3)) + ".</p>"
        key = f"bench-{i}"
        entries.append(
            Entry(
                Entry.make_id("bench", key),
                "bench",
                "https://bench.example/feed",
                key,
                title,
                f"https://bench.example/{i}",
                summary,
            )
        )
    return entries


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def write_config(directory: Path, receiver_url: str) -> Path:
    directory.mkdir()
    repo_config = Path(__file__).resolve().parent.parent / "config"
    (directory / "topics.toml").write_text((repo_config / "topics.toml").read_text())
    (directory / "feeds.toml").write_text("")
    (directory / "subscriptions.toml").write_text(
        f'[[subscriptions]]\nid = "all"\nurl = "{receiver_url}"\n'
        f'topics = ["*"]\nsecret = "{SECRET}"\n'
    )
    return directory


def drain(connection) -> None:
    queues = [Queue(n, connection=connection) for n in (keys.ENTRIES_QUEUE,)]
    SimpleWorker(queues, connection=connection).work(burst=True, logging_level="ERROR")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=4000)
    count = parser.parse_args().entries

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    url = server.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    config = load_config(write_config(tmp / "config", f"http://127.0.0.1:{http.server_port}/"))
    from monitor.redis_server import connect

    connection = connect(url)
    rt = runtime.Runtime.build(config, connection)
    runtime.install(rt)
    entries = synthetic_entries(count)
    now = datetime.now(UTC)

    connection.flushdb()
    started = time.perf_counter()
    checked = rt.deduper.check([normalise(e) for e in entries])
    alerts = [
        alert
        for entry, duplicate in checked
        if duplicate is None
        for alert in alerts_for(rt.classifier.classify(entry), config.subscriptions, now)
    ]
    steps = count / (time.perf_counter() - started)

    queue = Queue(keys.ENTRIES_QUEUE, connection=connection)
    results = {}
    for label, size in (("batched (newsmon)", BATCH_SIZE), ("one job per entry", 1)):
        connection.flushdb()
        for start in range(0, count, size):
            queue.enqueue_call(PROCESS_JOB, args=(entries[start : start + size],), result_ttl=0)
        started = time.perf_counter()
        drain(connection)
        results[label] = count / (time.perf_counter() - started)

    sample = alerts[: min(len(alerts), 2000)]
    started = time.perf_counter()
    for start in range(0, len(sample), 100):
        deliver_alerts("all", sample[start : start + 100], attempt=1)
    deliveries = len(sample) / (time.perf_counter() - started)

    print(f"entries: {count} synthetic, {len(alerts)} alerts (one subscription, topics '*')")
    print(f"worker steps alone (normalise+dedupe+classify+match): {steps:8.0f} entries/s")
    for label, rate in results.items():
        print(f"through RQ, {label:>20}: {rate:8.0f} entries/s (incl. enqueueing the alerts)")
    print(f"signed deliveries, one process, local receiver:      {deliveries:8.0f} deliveries/s")
    connection.flushdb()
    before = connection.info("memory")["used_memory"]
    rt.deduper.check([normalise(e) for e in entries])
    per_entry = (connection.info("memory")["used_memory"] - before) / count
    print(f"dedupe state in Redis: ~{per_entry:.0f} bytes per entry in the window")
    server.stop()


if __name__ == "__main__":
    main()
