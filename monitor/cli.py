"""The `newsmon` command (also `python -m monitor`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import structlog

from monitor import __version__, log
from monitor.config import Config, ConfigError, config_dir, load_config, load_topics
from monitor.redis_server import connect


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="newsmon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"newsmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--config",
            metavar="DIR",
            help="configuration folder (default: $NEWSMON_CONFIG, else ./config)",
        )
        return sub

    run = command("run", "poller + workers (+ embedded Redis when REDIS_URL is unset)")
    run.add_argument(
        "--workers", type=int, default=2, metavar="N", help="worker processes (default 2)"
    )
    command("poll", "the poller alone (needs REDIS_URL)")
    worker = command("worker", "one RQ worker on newsmon's queues (needs REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    command("check", "validate the whole configuration")
    classify = command("classify", "JSON lines in (id, title, summary), JSON lines out with topics")
    classify.add_argument("--explain", action="store_true", help="show which terms matched")
    commands.add_parser("secret", help="print a new random webhook secret (whsec_...)")

    args = parser.parse_args(argv)
    if args.command == "secret":
        from workers.signing import new_secret

        print(new_secret())
        return 0
    directory = config_dir(args.config)
    if args.command == "classify":
        return _classify(directory, args.explain)
    try:
        config = load_config(directory)
    except ConfigError as exc:
        print(f"newsmon: configuration has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.command == "check":
        print(
            f"{directory}: OK ({len(config.feeds)} feeds, {len(config.topics)} topics, "
            f"{len(config.subscriptions)} subscriptions)"
        )
        return 0
    log.configure()
    if args.command == "run":
        if args.workers < 1:
            parser.error("--workers must be at least 1")
        from monitor.supervisor import run as run_tree

        return run_tree(config, directory, args.workers)
    if args.command == "poll":
        return _poll(config)
    return _worker(config, args.burst)


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit("newsmon: REDIS_URL is not set (or use `newsmon run`, which embeds Redis)")
    return url


def _poll(config: Config) -> int:
    from monitor.poller import Poller

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    Poller(config, connect(_redis_url())).run(stop)
    return 0


def _worker(config: Config, burst: bool) -> int:
    from rq import Queue, SimpleWorker

    from monitor import keys
    from workers import runtime

    connection = connect(_redis_url())
    runtime.install(runtime.Runtime.build(config, connection))
    # Deliveries first: finishing alerts in flight beats starting new entries.
    queues = [
        Queue(name, connection=connection) for name in (keys.DELIVERIES_QUEUE, keys.ENTRIES_QUEUE)
    ]
    # SimpleWorker runs jobs in-process: no fork per job, and the HTTP connection pool and
    # compiled topic rules stay warm across jobs. Jobs are batches, so RQ's cost is shared.
    worker = SimpleWorker(queues, connection=connection)
    structlog.get_logger().info("worker.started", worker=worker.name, burst=burst)
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    structlog.get_logger().info("worker.stopped", worker=worker.name)
    return 0


def _classify(directory: Path, explain: bool) -> int:
    from monitor.models import Entry
    from workers.classify import Classifier
    from workers.normalise import normalise

    try:
        classifier = Classifier(load_topics(directory))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"newsmon: {problem}", file=sys.stderr)
        return 2
    bad_lines = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            print(f"newsmon: stdin line {number}: {exc}", file=sys.stderr)
            bad_lines += 1
            continue
        entry = normalise(
            Entry(
                id=str(item.get("id", number)),
                feed_name="",
                feed_url="",
                key="",
                title=str(item.get("title") or ""),
                link="",
                summary=str(item.get("summary") or ""),
            )
        )
        scores = classifier.explain(entry.text)
        item["topics"] = [s.topic for s in scores if s.passed]
        if explain:
            item["explain"] = {
                s.topic: {
                    "score": s.score,
                    "threshold": s.threshold,
                    "matched": s.matched,
                    "ignored": s.ignored,
                }
                for s in scores
                if s.matched or s.ignored
            }
        print(json.dumps(item, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 1 if bad_lines else 0
