"""What the board's pages show, read through the operator's root as JSON-ready data: nothing
here renders."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from monitor.ops.errors import UnknownSubscription
from monitor.ops.openapi import MESSAGES_LISTED
from monitor.ops.redis_server import durability
from monitor.ops.root import Root

STORIES_SHOWN = 50


def read_board(root: Root, topic: str | None) -> dict[str, Any]:
    """Everything the board's front page shows."""
    stories = root.latest_stories(STORIES_SHOWN, topic)
    snap = root.snapshot()
    last_hour = root.last_hour(snap["subscriptions"])
    return {
        "generated_at": time.time(),
        "topic": topic,
        "stories": [asdict(story) for story in stories],
        "feeds": [row for row, _ in root.feed_rows()],
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
        "redis_warning": durability(root.connection).warning(),
    }


def read_story(root: Root, story_id: str) -> dict[str, Any] | None:
    """A story with every report, and each message that told a subscription of it; None when
    there is no such story (or it left the dedupe window)."""
    story = root.story(story_id)
    if story is None:
        return None
    return {
        "generated_at": time.time(),
        "story": asdict(story),
        "messages": root.story_messages(story_id),
    }


def read_subscription(root: Root, subscription_id: str) -> dict[str, Any] | None:
    """A subscription's endpoint health and its recent messages with their attempts; None
    when there is no such subscription."""
    try:
        endpoint = root.endpoint(subscription_id)
    except UnknownSubscription:
        return None
    return {
        "generated_at": time.time(),
        "id": subscription_id,
        **endpoint,
        "messages": root.recent_messages(subscription_id, MESSAGES_LISTED),
    }
