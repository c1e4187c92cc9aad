"""What the board's pages show, read from Redis as JSON-ready data: nothing here renders."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import redis

from monitor.core.config import Config
from monitor.core.subscriptions import Subscriptions
from monitor.ops import admin, stats
from monitor.ops.openapi import MESSAGES_LISTED
from monitor.ops.redis_server import durability
from workers.delivery.endpoints import Endpoints, EndpointStatus
from workers.delivery.messages import MessageLog
from workers.pipeline.stories import Stories

STORIES_SHOWN = 50


def _stories(connection: redis.Redis, config: Config) -> Stories:
    return Stories(connection, int(config.settings.dedupe_window_hours * 3600))


def read_board(connection: redis.Redis, config: Config, topic: str | None) -> dict[str, Any]:
    """Everything the board's front page shows."""
    stories = _stories(connection, config).latest(STORIES_SHOWN, topic)
    snap = stats.snapshot(connection, config)
    last_hour = stats.subscriptions_last_hour(connection, snap["subscriptions"])
    return {
        "generated_at": time.time(),
        "topic": topic,
        "stories": [asdict(story) for story in stories],
        "feeds": [row for row, _ in admin.feed_rows(connection, config)],
        "subscriptions": [
            {
                "id": subscription_id,
                "status": view["status"],
                "failing_since": view["failing_since"],
                "last_error": view["last_error"],
                "next_try": view["next_try"],
                "disabled_reason": view["disabled_reason"],
                "last_hour": last_hour[subscription_id],
                "dead_letters": view["dead_letters"],
            }
            for subscription_id, view in snap["subscriptions"].items()
        ],
        "queues": snap["queues"],
        "per_minute": snap["per_minute"],
        "pollers": snap["pollers"],
        "poller_heartbeat_age_seconds": snap["poller_heartbeat_age_seconds"],
        "workers": snap["workers"],
        "redis_warning": durability(connection).warning(),
    }


def read_story(connection: redis.Redis, config: Config, story_id: str) -> dict[str, Any] | None:
    """A story with every report, and each message that told a subscription of it; None when
    there is no such story (or it left the dedupe window)."""
    story = _stories(connection, config).get(story_id)
    if story is None:
        return None
    return {
        "generated_at": time.time(),
        "story": asdict(story),
        "messages": MessageLog(connection).of_story(story_id),
    }


def read_subscription(
    connection: redis.Redis, config: Config, subscription_id: str
) -> dict[str, Any] | None:
    """A subscription's endpoint health and its recent messages with their attempts; None
    when there is no such subscription."""
    subscription = Subscriptions(config, connection, refresh_seconds=0).get(subscription_id)
    if subscription is None:
        return None
    health = Endpoints(connection).health(subscription)
    now = time.time()
    failing = health.status is EndpointStatus.FAILING
    return {
        "generated_at": now,
        "id": subscription.id,
        "status": health.status,
        "failing_since": health.failing_since,
        "last_error": health.last_error,
        "next_try": max(health.blocked_until, now) if failing else None,
        "disabled_reason": health.disabled_reason,
        "messages": MessageLog(connection).recent(subscription.id, MESSAGES_LISTED),
    }
