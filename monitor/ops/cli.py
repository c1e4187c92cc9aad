"""The `newsmon` command (also `python -m monitor`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from monitor.core import __version__, log
from monitor.core.config import (
    Config,
    ConfigError,
    config_dir,
    load_config,
    load_topic_model,
    load_topics,
    save_topic_model,
    table_key,
)
from monitor.core.http import refused_url
from monitor.core.models import Entry, Topic
from monitor.core.processes import process_name
from monitor.core.redact import redact_url
from monitor.ops import CommandError, admin
from monitor.ops.admin import counted
from monitor.ops.redis_server import connect, ensure_durable, redis_url
from monitor.ops.serve import serve
from monitor.ops.starter import SUBSCRIPTIONS, write_starter
from monitor.ops.supervisor import run
from monitor.poller.loop import Poller
from workers import runtime, worker
from workers.delivery.signing import new_secret
from workers.ml.encoder import shipped
from workers.ml.evaluation import evaluate
from workers.ml.topic_model import FOLDS, train
from workers.pipeline.classify import Classifier, TopicScore, chosen
from workers.pipeline.normalise import normalise
from workers.pipeline.stories import Stories

SIGPIPE_EXIT = 128 + signal.SIGPIPE  # what a shell reports for a process a pipe's end killed


def main(argv: list[str] | None = None) -> int:
    """The command; a reader that goes away early (`newsmon stories | head`) ends it quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit: buffered output meets a gone reader here
        return code
    except BrokenPipeError:
        # Python flushes stdout once more at exit, which would fail again and print
        # "Exception ignored ...": point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT


def _main(argv: list[str] | None) -> int:
    # --config before the command (`newsmon --config DIR feeds`) or after it: the command's
    # own copy leaves the attribute unset unless given, so it never hides the global one.
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="configuration folder (default: $NEWSMON_CONFIG, else ./config)",
    )
    parser = argparse.ArgumentParser(prog="newsmon", description=__doc__, parents=[config_option])
    parser.add_argument("--version", action="version", version=f"newsmon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def group(name: str, help_text: str) -> argparse._SubParsersAction:
        sub = commands.add_parser(name, help=help_text, parents=[config_option])
        return sub.add_subparsers(dest="action", required=True)

    def command(
        name: str, help_text: str, handler: Handler, parent: argparse._SubParsersAction = commands
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(
            name, help=help_text, description=help_text, parents=[config_option]
        )
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", "poller + workers (+ embedded Redis when REDIS_URL is unset)", _run)
    run.add_argument(
        "--workers", type=int, default=2, metavar="N", help="worker processes (default 2)"
    )
    command("poll", "the poller alone", _poll)
    worker = command("worker", "one RQ worker on newsmon's queues", _worker)
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    command("check", "validate the whole configuration", _check)
    classify = command(
        "classify", "JSON lines in (id, title, summary), JSON lines out with topics", _classify
    )
    classify.add_argument("--explain", action="store_true", help="show which terms matched")
    classify.add_argument(
        "--eval",
        metavar="LABELLED.jsonl",
        type=Path,
        help="score the rules and model on lines that carry their true 'topics'",
    )
    classify.add_argument(
        "--train",
        metavar="LABELLED.jsonl",
        type=Path,
        help="learn topics from labelled lines; writes topic_model.json to the config folder",
    )
    feeds = command(
        "feeds", "each feed: health, last fetch, next due, entries seen", admin.list_feeds
    )
    feeds.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    stories = command("stories", "recent stories and the outlets that reported each", _stories)
    stories.add_argument("--topic", metavar="T", help="only stories under this topic")
    _since(stories, "reported", default="24h")
    stories.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    stats_command = command("stats", "queues, rates, deliveries and feed health", admin.show_stats)
    stats_command.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    serve = command(
        "serve",
        "HTTP: the live board at /, /livez, /readyz, /healthz, /metrics, /websub/FEED,"
        " /schemas/NAME.json; /api/v1 and /openapi.json when NEWSMON_API_TOKEN is set",
        _serve,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    secret = commands.add_parser("secret", help="print a new random webhook secret (whsec_...)")
    secret.set_defaults(handler=_secret)
    init = commands.add_parser(
        "init",
        help="write a starter config folder (the shipped one, subscriptions commented out)",
    )
    init.add_argument(
        "directory", metavar="DIR", type=Path, help="folder to write (made if missing)"
    )
    init.set_defaults(handler=_init)

    deliveries_commands = group("deliveries", "dead letters: list and replay")
    dead = command(
        "dead", "list alerts that could not be delivered", admin.list_dead, deliveries_commands
    )
    dead.add_argument("--subscription", metavar="ID", help="only this subscription's")
    dead.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    replay = command(
        "replay", "send dead letters again (same webhook-id)", admin.replay, deliveries_commands
    )
    replay.add_argument("alert_ids", nargs="*", metavar="ID", help="alert ids (msg_...)")
    replay.add_argument("--subscription", metavar="ID", help="every dead letter of this one")
    _since(replay, "only those that died")

    subscriptions_commands = group("subscriptions", "subscription health")
    listing = command(
        "list",
        "each subscription: ok, failing since, or disabled and why",
        admin.list_subscriptions,
        subscriptions_commands,
    )
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    enable = command(
        "enable", "re-enable a disabled subscription", admin.enable, subscriptions_commands
    )
    enable.add_argument("subscription", metavar="ID")

    args = parser.parse_args(argv)
    # Not set_defaults(config=None): that would change the option every command shares.
    args.config = getattr(args, "config", None)
    if args.handler in (_secret, _classify, _init):
        return args.handler(args, None)
    directory = config_dir(args.config)
    try:
        config = load_config(directory)
    except ConfigError as exc:
        print(
            f"newsmon: configuration has {counted(len(exc.problems), 'problem')}:",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    try:
        if args.handler in (_run, _poll, _worker, _serve):
            try:
                log.configure()
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        return args.handler(args, config)
    except CommandError as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return 2


Handler = Callable[[argparse.Namespace, Config | None], int]


def _secret(args: argparse.Namespace, config: None) -> int:
    print(new_secret())
    return 0


def _init(args: argparse.Namespace, config: None) -> int:
    try:
        written = write_starter(args.directory)
    except CommandError as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(path.name for path in written)} into {args.directory}")
    print(
        f"next: edit {args.directory / 'feeds.toml'} and {args.directory / SUBSCRIPTIONS}, "
        f"then `newsmon check --config {args.directory}`"
    )
    return 0


def _check(args: argparse.Namespace, config: Config) -> int:
    for warning in _refused_targets(config):
        print(f"newsmon: warning: {warning}", file=sys.stderr)
    print(
        f"{config.directory}: OK ({counted(len(config.feeds), 'feed')}, "
        f"{counted(len(config.topics), 'topic')}, "
        f"{counted(len(config.subscriptions), 'subscription')})"
    )
    return 0


def _refused_targets(config: Config) -> list[str]:
    """The feeds and subscriptions whose URL the SSRF guard would refuse at run time (a
    loopback or private address), each named by file and key; none when it is turned off."""
    feeds = [{"name": feed.name} for feed in config.feeds]
    subscriptions = [{"id": subscription.id} for subscription in config.subscriptions]
    targets = [
        ("feeds.toml", table_key("feeds", i, feeds, "name"), "the poller", feed.url)
        for i, feed in enumerate(config.feeds)
    ] + [
        (
            "subscriptions.toml",
            table_key("subscriptions", i, subscriptions, "id"),
            "a worker",
            s.url,
        )
        for i, s in enumerate(config.subscriptions)
    ]

    # One name lookup each, in parallel: a feeds.toml may hold thousands.
    with ThreadPoolExecutor(max_workers=16) as pool:
        reasons = list(pool.map(refused_url, [url for *_, url in targets]))
    return [
        f"{config.directory / file}: {key}.url ({redact_url(url)}): {who} will refuse it: {reason}"
        for (file, key, who, url), reason in zip(targets, reasons, strict=True)
        if reason
    ]


def _run(args: argparse.Namespace, config: Config) -> int:
    if args.workers < 1:
        raise SystemExit("newsmon: --workers must be at least 1")

    return run(config, args.workers)


def _poll(args: argparse.Namespace, config: Config) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    Poller(config, _redis(config)).run(stop)
    return 0


def _serve(args: argparse.Namespace, config: Config) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve(args.host, args.port, _redis(config), config, stop)
    return 0


def _worker(args: argparse.Namespace, config: Config) -> int:
    connection = _redis(config)
    runtime.install(runtime.Runtime.build(config, connection))
    return worker.run(connection, process_name(), args.burst)


def _redis(config: Config) -> redis.Redis:
    """The Redis of a long-running process, checked once at its start (`ensure_durable`)."""
    connection = connect(redis_url(config))
    ensure_durable(connection, config)
    return connection


def _since(parser: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    parser.add_argument(
        "--since",
        type=admin.parse_since,
        default=default,
        metavar="T",
        help=f"{what} since T: an ISO time, or 30m, 2h, 7d ago"
        + (f" ({default})" if default else ""),
    )


def _stories(args: argparse.Namespace, config: Config) -> int:
    if args.topic and args.topic not in {t.name for t in config.topics}:
        raise CommandError(f"no topic {args.topic!r} in topics.toml")
    window_seconds = config.settings.dedupe_window_seconds
    stories = Stories(connect(redis_url(config)), window_seconds).recent(args.since, args.topic)
    for story in stories:
        if args.json:
            print(json.dumps(dataclasses.asdict(story), ensure_ascii=False))
            continue
        seen = time.strftime("%Y-%m-%d %H:%M", time.gmtime(story.first_seen))
        print(f"{seen}  {story.title[:90]}")
        print(
            f"      topics: {', '.join(story.topics) or '-'}  outlets: {', '.join(story.outlets)}"
        )
        for entry_id, why in story.why.items():
            reasons = ", ".join(f"{k} {v}" for k, v in why.items() if k not in ("reason", "of"))
            print(f"      {entry_id} joined {why['of']} ({why['reason']}): {reasons}")
    if not args.json:
        print(counted(len(stories), "story", "stories"))
    return 0


def _classify(args: argparse.Namespace, config: None) -> int:
    directory = config_dir(args.config)
    try:
        topics = load_topics(directory)
        if args.train:  # the model file being replaced need not be valid
            return _train(topics, args.train, directory)
        classifier = Classifier(topics, load_topic_model(directory, topics))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"newsmon: {problem}", file=sys.stderr)
        return 2
    if args.eval:
        return _evaluate(classifier, args.eval)
    bad_lines = 0
    for _, item in _json_lines(sys.stdin, "stdin"):
        if item is None:
            bad_lines += 1
            continue
        scores = classifier.explain(_text(item))
        item["topics"] = list(chosen(scores))
        if args.explain:
            item["explain"] = {
                s.topic: _explained(s) for s in scores if s.matched or s.ignored or s.passed
            }
        print(json.dumps(item, ensure_ascii=False), flush=False)
    sys.stdout.flush()
    return 1 if bad_lines else 0


def _explained(score: TopicScore) -> dict:
    explained = {
        "score": score.score,
        "threshold": score.threshold,
        "matched": score.matched,
        "ignored": score.ignored,
    }
    if score.model is not None:
        explained["model"] = round(score.model, 3)
        explained["combined"] = round(score.combined, 3)
        explained["model_threshold"] = score.model_threshold
    return explained


def _labelled(path: Path) -> list[dict]:
    """Lines of a labelled file, each with its 'topics' list; exits naming a bad line."""
    try:
        lines = list(_json_lines(path.open(encoding="utf-8"), str(path)))
    except OSError as exc:
        raise SystemExit(f"newsmon: {path}: {exc.strerror}") from None
    labelled = []
    for number, item in lines:
        if item is None:
            raise SystemExit(2)
        if not isinstance(item.get("topics"), list):
            raise SystemExit(f"newsmon: {path} line {number}: needs a 'topics' list, e.g. []")
        labelled.append(item)
    return labelled


def _train(topics: tuple[Topic, ...], path: Path, directory: Path) -> int:
    lines = _labelled(path)
    names = [topic.name for topic in topics]
    texts = [_text(item) for item in lines]
    rules = Classifier(topics)
    evidence = [[s.evidence for s in rules.explain(text)] for text in texts]
    folds = [i % FOLDS for i in range(len(lines))]  # thresholds are chosen on held-out lines
    model = train(texts, [set(item["topics"]) for item in lines], names, shipped(), evidence, folds)
    output = save_topic_model(directory, model, f"newsmon classify --train {path.name}")
    for name in names:
        count = sum(name in item["topics"] for item in lines)
        state = "rules only (needs labelled lines)"
        if name in model.weights:
            state = f"learned, threshold {model.thresholds[name]:.2f}"
        print(f"{name:<16} {count:5d} labelled  {state}")
    print(f"wrote {output} from {counted(len(lines), 'line')}")
    return 0


def _evaluate(classifier: Classifier, path: Path) -> int:
    labelled = [
        (item, set(item["topics"]), set(classifier.topics_of(_text(item))))
        for item in _labelled(path)
    ]
    names = [topic.name for topic in classifier.topics]
    result = evaluate(names, labelled)
    print(f"{'topic':<16} {'precision':>9} {'recall':>7} {'f1':>6} {'labelled':>9}")
    for name, scores in result.topics.items():
        support = scores.true_positives + scores.false_negatives
        print(
            f"{name:<16} {scores.precision:9.3f} {scores.recall:7.3f} {scores.f1:6.3f} {support:9d}"
        )
    print(
        f"macro-F1 {result.macro_f1:.3f} over {counted(len(labelled), 'line')}, "
        f"{len(result.misses)} missed"
    )
    for miss in result.misses:
        print(
            f"  miss {miss['id']}: expected {miss['expected']}, got {miss['got']}: "
            f"{miss['title'][:70]}"
        )
    return 0


def _json_lines(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict | None]]:
    """(line number, object) per non-blank line; None, after saying why, for a bad line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            print(f"newsmon: {source} line {number}: {exc}", file=sys.stderr)
            item = None
        yield number, item


def _text(item: dict) -> str:
    """The text the workers would classify: normalised title and summary."""

    entry = Entry(
        id="",
        feed_name="",
        feed_url="",
        key="",
        link="",
        title=str(item.get("title") or ""),
        summary=str(item.get("summary") or ""),
    )
    return normalise(entry).text
