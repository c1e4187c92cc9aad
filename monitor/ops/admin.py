"""Operator commands that read and change state, over the operator's root (root.py):
`newsmon feeds`, `stories`, `stats`, `deliveries ...` and `subscriptions ...`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from monitor.core.config import Config
from monitor.core.models import Subscription
from monitor.ops import CommandError
from monitor.ops.redis_server import connect, redis_url
from monitor.ops.root import Root
from monitor.ops.times import iso_time


def open_root(config: Config) -> Root:
    return Root.build(config, connect(redis_url(config)))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun agreeing with it, as every count line of the CLI says it:
    "1 story", "2 stories" (`plural` when it is not noun + "s")."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def show_stats(args: argparse.Namespace, config: Config) -> int:
    snap = open_root(config).snapshot()
    if args.json:
        print(json.dumps(snap))
        return 0
    rates = snap["per_minute"]
    beat = snap["poller_heartbeat_age_seconds"]
    beat_text = "no beat in the last minute" if beat is None else f"last beat {beat} s ago"
    print(f"pollers {snap['pollers']} ({beat_text}), workers {snap['workers']}")
    for queue, depths in snap["queues"].items():
        print(f"queue {queue:<20} " + "  ".join(f"{k} {v}" for k, v in depths.items()))
    print(
        f"per minute (last 5 min): entries {rates['entries_processed']}, duplicates "
        f"{rates['entries_duplicate']} (ratio {snap['duplicate_ratio']}), delivered "
        f"{rates['alerts_delivered']}, retried {rates['alerts_retried']}, "
        f"dead {rates['alerts_dead']}"
    )
    print("totals: " + ", ".join(f"{k} {v}" for k, v in snap["totals"].items()))
    for subscription, view in snap["subscriptions"].items():
        print(
            f"subscription {subscription:<16} {view['status']:<8} delivered {view['delivered']}  "
            f"retried {view['retried']}  failed {view['failed']}  dead {view['dead']}  "
            f"dead letters {view['dead_letters']}"
        )
    feeds = snap["feeds"]
    print(f"feeds: {feeds['healthy']} healthy, {feeds['failing']} failing")
    for feed in feeds["failing_feeds"]:
        print(f"  {feed['feed']}: {feed['errors']} errors in a row, last: {feed['last_error']}")
    return 0


def list_feeds(args: argparse.Namespace, config: Config) -> int:
    now = time.time()
    for row, state in open_root(config).feed_rows():
        if args.json:
            print(json.dumps(row))
        else:
            ago = f"{now - state.last_fetched:.0f}s ago" if state.last_fetched is not None else "-"
            print(
                f"{row['feed']:<20} {state.health:<13} last {row['last_status'] or '-':<4} "
                f"{ago:<10} next in {row['next_due_in_seconds'] or 0:>6}s  "
                f"seen {row['entries_seen']:<6} backfilled {state.backfilled:<6} "
                f"errors {state.errors}"
                + ("  push" if row["push"] else "")
                + (f"  {state.last_error}" if state.errors else "")
            )
    return 0


def list_dead(args: argparse.Namespace, config: Config) -> int:
    root = open_root(config)
    records = root.dead_letters.list(args.subscription)
    if args.subscription and not records:
        root.subscription(args.subscription)  # a mistyped id is no "0 dead letters"
    for record in records:
        if args.json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(
                f"{iso_time(record['died_at'])}  {record['subscription_id']:<16} "
                f"{record['alert_id']}  "
                f"attempts={record['attempts']}  {record['reason']}  | {record['title'][:60]}"
            )
    if not args.json:
        print(counted(len(records), "dead letter"))
    return 0


def replay(args: argparse.Namespace, config: Config) -> int:
    if not args.alert_ids and not args.subscription:
        raise CommandError("name alert ids, or --subscription ID (with --since T)")
    queued, enabled = open_root(config).replay(args.alert_ids, args.subscription, args.since)
    for subscription_id in enabled:
        print(f"re-enabled subscription {subscription_id}")
    print(f"replaying {counted(queued, 'alert')}")
    return 0


def list_subscriptions(args: argparse.Namespace, config: Config) -> int:
    for subscription, row in open_root(config).subscription_rows():
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        if row["disabled_reason"]:
            status = f"disabled since {row['disabled_at']}: {row['disabled_reason']}"
        elif row["failing_since"]:
            status = f"failing since {row['failing_since']}, next try {row['next_try']}"
        else:
            status = "ok"
        print(
            f"{subscription.id:<16} {status}  [{','.join(row['topics'])}] {row['url']}"
            + "".join(f"  {option}" for option in _options(subscription))
        )
    return 0


def _options(subscription: Subscription) -> list[str]:
    """What a subscription asks beyond its topics, as subscriptions.toml says it."""
    options = [f"format={subscription.format}"] if subscription.format != "standard" else []
    if subscription.digest_minutes:
        options.append(f"digest_minutes={subscription.digest_minutes}")
    if subscription.backfill_hours:
        options.append(f"backfill_hours={subscription.backfill_hours:g}")
    if subscription.feeds:
        options.append(f"feeds={','.join(sorted(subscription.feeds))}")
    for name in ("keywords", "exclude_keywords"):
        if words := getattr(subscription, name):
            options.append(f"{name}={','.join(words)}")
    return options


def enable(args: argparse.Namespace, config: Config) -> int:
    was_disabled = open_root(config).enable(args.subscription)
    print(
        f"{args.subscription}: {'re-enabled' if was_disabled else 'was not disabled'}; "
        f"to replay its dead letters: newsmon deliveries replay --subscription {args.subscription}"
    )
    return 0


def list_stories(args: argparse.Namespace, config: Config) -> int:
    if args.topic and args.topic not in {t.name for t in config.topics}:
        raise CommandError(f"no topic {args.topic!r} in topics.toml")
    stories = open_root(config).recent_stories(args.since, args.topic)
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
