"""Throughput of the worker steps, on an embedded Redis.

    python bench/pipeline.py [--entries N] [--rules-only]

Prints entries/s for the steps alone (normalise -> dedupe -> classify -> match, no RQ),
entries/s through RQ as newsmon queues them (one job per fetched batch) beside the naive
one-job-per-entry baseline, and the dedupe state kept in Redis per entry.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from monitor.core import keys, queues
from monitor.core.config import load_config
from monitor.core.documents import entry_document
from monitor.core.models import Entry
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller.seen import BATCH_SIZE
from workers import runtime, worker
from workers.pipeline.match import alerts_for
from workers.pipeline.normalise import normalise

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
COMMON_WORDS = (
    "the of in and to a on as after said officials new city regional governor overnight "
    "drone strike talks ministers ambassador hospital infection aid refugees gas pipeline "
    "election parliament festival film border asylum shelling troops village residents"
)


def vocabulary(rng: random.Random, size: int = 4000) -> tuple[list[str], list[float]]:
    """Real words up front, made-up ones behind, drawn with Zipf weights like news text."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    made_up = ["".join(rng.choices(letters, k=rng.randint(4, 9))) for _ in range(size)]
    words = COMMON_WORDS.split() + made_up
    return words, [1 / rank for rank in range(1, len(words) + 1)]


def synthetic_entries(count: int, seed: int = 7) -> list[Entry]:
    words, weights = vocabulary(random.Random(0))  # one language for every seed
    rng = random.Random(seed)
    entries = []
    for i in range(count):
        title = " ".join(rng.choices(words, weights, k=9)).capitalize()
        sentences = (" ".join(rng.choices(words, weights, k=14)) for _ in range(3))
        summary = "<p>" + ". ".join(sentences) + ".</p>"
        key = f"bench-{i}"
        entries.append(
            Entry(
                id=Entry.make_id("bench", key),
                feed_name="bench",
                feed_url="https://bench.example/feed",
                key=key,
                title=title,
                link=f"https://bench.example/{i}",
                summary=summary,
            )
        )
    return entries


def copy_shipped_topics(directory: Path, model: bool = True) -> None:
    """The shipped topic rules and, unless `--rules-only`, the semantic layer: the learned
    model, and stories matched across outlets (both read the sentence encoder)."""
    repo_config = Path(__file__).resolve().parent.parent / "config"
    for name in ("topics.toml", "topic_model.json") if model else ("topics.toml",):
        (directory / name).write_text((repo_config / name).read_text())
    if not model:
        (directory / "newsmon.toml").write_text("[dedupe]\nstory_probability = 0\n")


def rules_only_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules-only",
        action="store_true",
        help="no sentence encoder: topics by rules alone, stories without matching other outlets",
    )


def write_config(directory: Path, receiver_url: str, model: bool = True, feeds: str = "") -> Path:
    """A config folder: the shipped topics (see copy_shipped_topics), `feeds` as feeds.toml,
    and one subscription to every entry, delivered to `receiver_url`."""
    directory.mkdir()
    copy_shipped_topics(directory, model)
    (directory / "feeds.toml").write_text(feeds)
    (directory / "subscriptions.toml").write_text(
        f'[[subscriptions]]\nid = "all"\nurl = "{receiver_url}"\n'
        f'topics = ["*"]\nsecret = "{SECRET}"\n'
    )
    return directory


def start_workers(config_dir: Path, redis_url: str, count: int) -> list[subprocess.Popen]:
    """`count` `newsmon worker` processes, logging errors only."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NEWSMON_ALLOW_PRIVATE_TARGETS": "1",  # the feeds and receivers are local
        "NEWSMON_LOG_LEVEL": "error",
    }
    return [
        subprocess.Popen(
            [sys.executable, "-m", "monitor", "worker", "--config", str(config_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return max(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=4000)
    rules_only_flag(parser)
    args = parser.parse_args()
    count = args.entries

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    connection = connect(server.start())
    # No receiver: the alerts' delivery jobs are queued, not sent (bench/deliveries.py).
    config = load_config(write_config(tmp / "config", "http://127.0.0.1:9/", not args.rules_only))
    rt = runtime.Runtime.build(config, connection)
    runtime.install(rt)
    entries = synthetic_entries(count)
    now = datetime.now(UTC)

    def steps_alone() -> float:
        connection.flushdb()
        started = time.perf_counter()
        for entry, duplicate in rt.deduper.check([normalise(e) for e in entries]):
            if duplicate is None:
                alerts_for(rt.classifier.classify(entry), config.subscriptions, now)
        return count / (time.perf_counter() - started)

    def through_rq(batch_size: int) -> float:
        connection.flushdb()
        queue = queues.queue(keys.ENTRIES_QUEUE, connection)
        for start in range(0, count, batch_size):
            batch = [entry_document(e) for e in entries[start : start + batch_size]]
            queue.enqueue_call(queues.PROCESS_JOB, args=(batch,), result_ttl=0)
        started = time.perf_counter()
        worker.run(connection, "bench.burst", burst=True)
        return count / (time.perf_counter() - started)

    print(f"{count} synthetic entries, one subscription to every topic; best of 3 runs")
    alone = best_of(3, steps_alone)
    print(f"worker steps alone (normalise+dedupe+classify+match): {alone:6.0f} entries/s")
    batched = best_of(3, lambda: through_rq(BATCH_SIZE))
    naive = best_of(3, lambda: through_rq(1))
    print(f"through RQ, one job per fetched batch (newsmon):       {batched:6.0f} entries/s")
    print(
        f"through RQ, one job per entry (naive baseline):        {naive:6.0f} entries/s "
        f"({batched / naive:.0f}x slower)"
    )

    connection.flushdb()
    before = connection.info("memory")["used_memory"]
    rt.deduper.check([normalise(e) for e in entries])
    per_entry = (connection.info("memory")["used_memory"] - before) / count
    print(f"dedupe state in Redis: {per_entry:.0f} bytes per entry in the window")
    server.stop()


if __name__ == "__main__":
    main()
