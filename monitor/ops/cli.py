"""The `newsmon` command (also `python -m monitor`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from monitor.core import __version__, log
from monitor.core.config import Config, ConfigError, config_dir, load_config, table_key
from monitor.core.http import refused_url
from monitor.core.redact import redact_url
from monitor.core.reload import ReloadRequest
from monitor.ops import CommandError, admin
from monitor.ops.admin import counted
from monitor.ops.errors import OperationError, UnreadableTime
from monitor.ops.feed_commands import add_feed_actions, feeds_to_poll, show_online
from monitor.ops.redis_server import connect, ensure_durable, redis_url
from monitor.ops.reload_command import reload_processes
from monitor.ops.serve import serve
from monitor.ops.starter import SUBSCRIPTIONS, write_starter
from monitor.ops.supervisor import run
from monitor.ops.times import parse_since
from monitor.ops.worker_commands import classify, print_secret, run_worker
from monitor.poller.loop import Poller

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
    poll = command("poll", "the poller alone", _poll)
    poll.add_argument(
        "--once", action="store_true", help="poll every feed (or FEED) now, then exit"
    )
    poll.add_argument("feed", nargs="?", metavar="FEED", help="with --once: only this feed")
    worker = command("worker", "one RQ worker on newsmon's queues", _worker)
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    command(
        "reload",
        "validate the config, then have this host's running processes read it again",
        reload_processes,
    )
    check = command("check", "validate the whole configuration", _check)
    check.add_argument(
        "--online",
        action="store_true",
        help="also fetch every feed once and say what it answered (nothing is queued or kept)",
    )
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
    add_feed_actions(feeds, config_option)
    stories = command(
        "stories", "recent stories and the outlets that reported each", admin.list_stories
    )
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
    secret.set_defaults(handler=print_secret)
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
    if args.handler in (print_secret, _classify, _init):
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
        try:
            # A process's events are its output; a command's would mix with what it prints.
            log.configure(stream=None if args.handler in SERVICES else sys.stderr)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return args.handler(args, config)
    except (CommandError, OperationError) as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return 2


Handler = Callable[[argparse.Namespace, Config | None], int]


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
    return show_online(config) if args.online else 0


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
        if s.format.webhook  # Telegram's API and the mail server are the operator's settings
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
    if args.once:
        feeds = feeds_to_poll(config, args.feed)  # an unknown name is refused before Redis
        Poller(config, _redis(config)).poll_feeds(feeds)
        return 0
    if args.feed:
        raise CommandError(f"polling one feed is a one-off: `newsmon poll --once {args.feed}`")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    Poller(config, _redis(config)).run(stop, ReloadRequest())
    return 0


def _serve(args: argparse.Namespace, config: Config) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve(args.host, args.port, _redis(config), config, stop, ReloadRequest())
    return 0


def _worker(args: argparse.Namespace, config: Config) -> int:
    return run_worker(config, _redis(config), args.burst)


SERVICES = (_run, _poll, _serve, _worker)  # long-running: their log on stdout is their output


def _classify(args: argparse.Namespace, config: None) -> int:
    return classify(args, config_dir(args.config))


def _redis(config: Config) -> redis.Redis:
    """The Redis of a long-running process, checked once at its start (`ensure_durable`)."""
    connection = connect(redis_url(config))
    ensure_durable(connection, config)
    return connection


def _since(parser: argparse.ArgumentParser, what: str, default: str | None = None) -> None:
    parser.add_argument(
        "--since",
        type=_since_value,
        default=default,
        metavar="T",
        help=f"{what} since T: an ISO time, or 30m, 2h, 7d ago"
        + (f" ({default})" if default else ""),
    )


def _since_value(value: str) -> float:
    """A --since value, an unreadable one refused as argparse refuses a bad option."""
    try:
        return parse_since(value)
    except UnreadableTime as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
