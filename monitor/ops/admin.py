"""Operator commands that read and change state: `newsmon feeds`, `stats`, `deliveries ...`,
and `subscriptions ...`."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from monitor.core import keys
from monitor.core.config import Config
from monitor.core.feedstate import FeedState
from monitor.core.models import Alert, Subscription
from monitor.core.redact import redact_url
from monitor.core.subscriptions import Subscriptions
from monitor.ops import CommandError
from monitor.ops.redis_server import connect, redis_url
from monitor.ops.stats import snapshot
from monitor.poller import websub
from workers.delivery.deadletters import DeadLetters
from workers.delivery.endpoints import Endpoints, Health
from workers.jobs import schedule_deliveries

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> float:
    """'30m', '2h', '7d' ago, or an ISO 8601 time (UTC unless it says otherwise) -> unix time."""
    if match := DURATION.match(value.strip()):
        return time.time() - float(match[1]) * UNIT_SECONDS[match[2]]
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: use an ISO time (2025-01-28T10:00Z) or a duration (30m, 2h, 7d)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso_time(unix_time: float) -> str:
    """A unix time as the CLI and the API show it: UTC, to the second."""
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and the noun agreeing with it, as every count line of the CLI says it:
    "1 story", "2 stories" (`plural` when it is not noun + "s")."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


@dataclass
class DeliveryState:
    """What the delivery commands read and change: dead letters and endpoint health."""

    config: Config
    connection: redis.Redis
    dead_letters: DeadLetters
    endpoints: Endpoints
    subscriptions: Subscriptions

    @classmethod
    def open(cls, config: Config) -> DeliveryState:
        return cls.on(config, connect(redis_url(config)))

    @classmethod
    def on(cls, config: Config, connection: redis.Redis) -> DeliveryState:
        return cls(
            config,
            connection,
            DeadLetters(connection, config.settings.dead_letter_seconds),
            Endpoints(connection),
            Subscriptions(config, connection),
        )

    def subscription(self, subscription_id: str) -> Subscription:
        if subscription := self.subscriptions.get(subscription_id):
            return subscription
        raise CommandError(
            f"no subscription {subscription_id!r} in subscriptions.toml or made over the API"
        )


def show_stats(args: argparse.Namespace, config: Config) -> int:
    snap = snapshot(connect(redis_url(config)), config)
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


def feed_rows(connection: redis.Redis, config: Config) -> list[tuple[dict, FeedState]]:
    """Each feed's row (the JSON of `newsmon feeds --json`) and the state it was read from."""
    with connection.pipeline(transaction=False) as pipe:
        for feed in config.feeds:
            pipe.hgetall(keys.feed_state(feed.name))
            pipe.zscore(keys.SCHEDULE, feed.name)
            pipe.zcard(keys.feed_seen(feed.name))
        replies = pipe.execute()
    now = time.time()
    rows = []
    for index, feed in enumerate(config.feeds):
        raw, due, seen = replies[3 * index : 3 * index + 3]
        state = FeedState.read(raw)
        row = {
            "feed": feed.name,
            "url": redact_url(feed.url),
            "health": state.health,
            "errors": state.errors,
            "last_status": str(state.last_status or ""),
            "last_fetched": (
                iso_time(state.last_fetched) if state.last_fetched is not None else None
            ),
            "next_due_in_seconds": round(max(due - now, 0), 1) if due is not None else None,
            "entries_seen": seen,
            "backfilled": state.backfilled,
            "last_error": state.last_error,
            "push": "active" if websub.is_active(state, now) else "",
        }
        rows.append((row, state))
    return rows


def list_feeds(args: argparse.Namespace, config: Config) -> int:
    now = time.time()
    for row, state in feed_rows(connect(redis_url(config)), config):
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
    records = DeliveryState.open(config).dead_letters.list(args.subscription)
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
    state = DeliveryState.open(config)
    chosen = state.dead_letters.list(args.subscription, args.since)
    if args.alert_ids:
        wanted = set(args.alert_ids)
        chosen = [r for r in chosen if r["alert_id"] in wanted]
        if missing := wanted - {r["alert_id"] for r in chosen}:
            raise CommandError(f"no dead letter {', '.join(sorted(missing))}")
    known = {s.id for s in state.subscriptions.all()}
    for record in chosen:
        if record["subscription_id"] not in known:
            raise CommandError(
                f"{record['alert_id']} is for subscription "
                f"{record['subscription_id']!r}, which is neither in subscriptions.toml "
                "nor made over the API"
            )
    alerts = state.dead_letters.take([r["alert_id"] for r in chosen])
    queued, enabled = resend(state, alerts)
    for subscription_id in enabled:
        print(f"re-enabled subscription {subscription_id}")
    print(f"replaying {counted(queued, 'alert')}")
    return 0


def resend(state: DeliveryState, alerts: list[Alert]) -> tuple[int, list[str]]:
    """Queue `alerts` again from their first attempt, under their own webhook-ids, after
    re-enabling their subscriptions if disabled: how many were queued, which were enabled."""
    by_subscription: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_subscription[alert.subscription_id].append(alert)
    enabled = []
    for subscription_id in by_subscription:
        subscription = state.subscription(subscription_id)
        if state.endpoints.health(subscription).disabled_reason:
            state.endpoints.enable(subscription_id)
            enabled.append(subscription_id)
    queued = schedule_deliveries(
        state.connection, state.config.settings, by_subscription, attempt=1, delay_seconds=0
    )
    return queued, enabled


def subscription_row(subscription: Subscription, health: Health) -> dict[str, Any]:
    """A subscription's row (the JSON of `newsmon subscriptions list --json`): its health, and
    what it asks for as subscriptions.toml says it, the URL redacted, no secret."""
    disabled = bool(health.disabled_reason)
    failing = not disabled and health.failing_since is not None
    return {
        "subscription": subscription.id,
        "status": str(health.status),
        "disabled_at": iso_time(health.disabled_at) if disabled and health.disabled_at else None,
        "disabled_reason": health.disabled_reason,
        "failing_since": iso_time(health.failing_since) if failing else None,
        "next_try": iso_time(max(health.blocked_until, time.time())) if failing else None,
        "topics": sorted(subscription.topics),
        "url": redact_url(subscription.url),
        "format": str(subscription.format),
        "digest_minutes": subscription.digest_minutes,
        "backfill_hours": subscription.backfill_hours,
        "feeds": sorted(subscription.feeds),
        "keywords": list(subscription.keywords),
        "exclude_keywords": list(subscription.exclude_keywords),
    }


def list_subscriptions(args: argparse.Namespace, config: Config) -> int:
    state = DeliveryState.open(config)
    endpoints = state.endpoints
    for subscription in state.subscriptions.all():
        row = subscription_row(subscription, endpoints.health(subscription))
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
    state = DeliveryState.open(config)
    state.subscription(args.subscription)
    was_disabled = state.endpoints.enable(args.subscription)
    print(
        f"{args.subscription}: {'re-enabled' if was_disabled else 'was not disabled'}; "
        f"to replay its dead letters: newsmon deliveries replay --subscription {args.subscription}"
    )
    return 0
