"""The operator's side, composed once per process from the config and a Redis connection (as
workers/runtime.py is for a worker): the stores an operator reads and changes (dead letters,
endpoint health, subscriptions, the message log, stories) and the operations on them. The
CLI, the HTTP API, the board and `newsmon serve` are faces over it; what it refuses it says
with the exceptions of errors.py.

The one module of monitor/ops that imports the workers' code: the operator acts on what
they keep.
"""

from __future__ import annotations

import secrets as random_secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import structlog

from monitor.core.config import Config
from monitor.core.feedstate import FeedState
from monitor.core.models import Alert, Entry, Subscription
from monitor.core.redact import redact_url
from monitor.core.subscriptions import (
    ROTATION_OVERLAP_SECONDS,
    Record,
    Subscriptions,
    SubscriptionStore,
)
from monitor.ops import stats
from monitor.ops.errors import (
    InvalidSubscription,
    OperationError,
    OwnedByFile,
    SubscriptionExists,
    UnknownSubscription,
)
from monitor.ops.feed_rows import feed_rows
from monitor.ops.times import iso_time
from workers.delivery.deadletters import DeadLetters
from workers.delivery.endpoints import Endpoints, EndpointStatus, Health
from workers.delivery.messages import MessageLog
from workers.delivery.schedule import schedule_deliveries
from workers.delivery.signing import new_secret
from workers.pipeline.stories import Stories, Story

log = structlog.get_logger()


@dataclass
class Root:
    config: Config
    connection: redis.Redis
    # Read afresh on every call: a change must show in the next answer.
    subscriptions: Subscriptions
    store: SubscriptionStore  # the API's subscriptions
    dead_letters: DeadLetters
    endpoints: Endpoints
    messages: MessageLog
    stories: Stories

    @classmethod
    def build(cls, config: Config, connection: redis.Redis) -> Root:
        settings = config.settings
        return cls(
            config=config,
            connection=connection,
            subscriptions=Subscriptions(config, connection, refresh_seconds=0),
            store=SubscriptionStore(connection),
            dead_letters=DeadLetters(connection, settings.dead_letter_seconds),
            endpoints=Endpoints(connection),
            messages=MessageLog(connection),
            stories=Stories(connection, settings.dedupe_window_seconds),
        )

    # Subscriptions

    def subscription(self, subscription_id: str) -> Subscription:
        if subscription := self.subscriptions.get(subscription_id):
            return subscription
        if not self.from_file(subscription_id) and (record := self.store.get(subscription_id)):
            _, problems = record.checked(self.subscriptions.topic_names, self.subscriptions.feeds)
            raise InvalidSubscription(subscription_id, [f"{p.key}: {p.message}" for p in problems])
        raise UnknownSubscription(subscription_id)

    def from_file(self, subscription_id: str) -> bool:
        return any(s.id == subscription_id for s in self.config.subscriptions)

    def create(self, record: Record) -> None:
        """Store an API subscription; the file's ids and the API's taken ones are refused."""
        if self.from_file(record.id):
            raise OwnedByFile(record.id)
        if not self.store.create(record):
            raise SubscriptionExists(record.id)

    def change(self, subscription_id: str, change: Callable[[Record], Record]) -> Record:
        """The API subscription's record changed by `change`, atomically."""
        if self.from_file(subscription_id):
            raise OwnedByFile(subscription_id)
        if changed := self.store.update(subscription_id, change):
            return changed
        raise UnknownSubscription(subscription_id)

    def delete(self, subscription_id: str) -> None:
        if self.from_file(subscription_id):
            raise OwnedByFile(subscription_id)
        if not self.store.delete(subscription_id):
            raise UnknownSubscription(subscription_id)

    @staticmethod
    def new_secret() -> str:
        """A new random webhook secret (whsec_...), as deliveries sign with."""
        return new_secret()

    def rotate_secret(
        self, subscription_id: str, secrets_of: Callable[[dict[str, Any]], tuple[str, ...]]
    ) -> tuple[Record, float]:
        """New secrets sign from now on (`secrets_of` the record's table reads them, checked);
        the rotated record, and until when the old ones sign beside them."""
        now = time.time()
        rotated = self.change(subscription_id, lambda r: r.rotated(secrets_of(r.table), now))
        return rotated, now + ROTATION_OVERLAP_SECONDS

    def enable(self, subscription_id: str) -> bool:
        """Whether the subscription was disabled (it is not now)."""
        self.subscription(subscription_id)
        return self.endpoints.enable(subscription_id)

    def subscription_rows(self) -> list[tuple[Subscription, dict[str, Any]]]:
        """Each subscription, and its row (the JSON of `newsmon subscriptions list --json`)."""
        every_subscription = self.subscriptions.all()
        return [(s, subscription_row(s, self.endpoints.health(s))) for s in every_subscription]

    # Deliveries

    def replay(
        self, alert_ids: Iterable[str], subscription_id: str | None, since: float | None
    ) -> tuple[int, list[str]]:
        """Dead letters again, under their own webhook-ids: those named, or the subscription's
        (died since `since`). How many were queued, and which subscriptions re-enabled."""
        if subscription_id is not None:
            self.subscription(subscription_id)  # a mistyped id is no "nothing to replay"
        chosen = self.dead_letters.list(subscription_id, since)
        if wanted := set(alert_ids):
            chosen = [r for r in chosen if r["alert_id"] in wanted]
            if missing := wanted - {r["alert_id"] for r in chosen}:
                raise OperationError(f"no dead letter {', '.join(sorted(missing))}")
        known = {s.id for s in self.subscriptions.all()}
        for record in chosen:
            if record["subscription_id"] not in known:
                raise OperationError(
                    f"{record['alert_id']} is for subscription "
                    f"{record['subscription_id']!r}, which is neither in subscriptions.toml "
                    "nor made over the API"
                )
        return self.resend(self.dead_letters.take([r["alert_id"] for r in chosen]))

    def replay_sent(self, subscription_id: str, since: float) -> int:
        """Every message first sent to the subscription since `since`, again; their dead
        letters, if any, go: the resend is their second chance."""
        alerts = self.messages.since(subscription_id, since)
        self.dead_letters.take([a.id for a in alerts])
        return self.resend(alerts)[0] if alerts else 0

    def resend(self, alerts: list[Alert]) -> tuple[int, list[str]]:
        """Queue `alerts` again from their first attempt, under their own webhook-ids, after
        re-enabling their subscriptions if disabled: how many were queued, which were enabled."""
        by_subscription: dict[str, list[Alert]] = defaultdict(list)
        for alert in alerts:
            by_subscription[alert.subscription_id].append(alert)
        enabled = []
        for subscription_id in by_subscription:
            subscription = self.subscription(subscription_id)
            if self.endpoints.health(subscription).disabled_reason:
                self.endpoints.enable(subscription_id)
                enabled.append(subscription_id)
        return self._send(by_subscription), enabled

    def send_test(self, subscription_id: str) -> Alert:
        """A `message.test` through the delivery queue, as any alert goes."""
        subscription = self.subscription(subscription_id)
        now = datetime.now(UTC)
        entry = Entry(
            id="test",
            feed_name="newsmon",
            feed_url="https://newsmon.invalid/test",
            key="test",
            title="newsmon test message",
            link="https://newsmon.invalid/test",
            summary="Sent on request to check that this endpoint receives and verifies alerts.",
            published=now,
            story_id="st_test",
        )
        alert = Alert(
            id="msg_" + random_secrets.token_hex(12),
            subscription_id=subscription.id,
            topics=(),
            entry=entry,
            created=now,
            test=True,
        )
        self._send({subscription.id: [alert]})
        log.info("alert.enqueued", alert_id=alert.id, subscription=subscription.id, test=True)
        return alert

    def recent_messages(self, subscription_id: str, limit: int) -> list[dict[str, Any]]:
        return self.messages.recent(self.subscription(subscription_id).id, limit)

    def story_messages(self, story_id: str) -> list[dict[str, Any]]:
        """The messages that told any subscription of the story, newest first."""
        return self.messages.of_story(story_id)

    def _send(self, alerts: dict[str, list[Alert]]) -> int:
        settings = self.config.settings
        return schedule_deliveries(self.connection, settings, alerts, attempt=1, delay_seconds=0)

    # What the operator watches

    def snapshot(self) -> dict[str, Any]:
        """Everything an operator watches (the JSON of `newsmon stats --json`)."""
        every_subscription = self.subscriptions.all()
        return stats.snapshot(
            self.connection,
            self.config,
            {s.id: _endpoint_view(self.endpoints.health(s)) for s in every_subscription},
            {s.id: self.dead_letters.count(s.id) for s in every_subscription},
        )

    def endpoint(self, subscription_id: str) -> dict[str, Any]:
        """The subscription's endpoint as `snapshot` shows it: status, failing_since,
        last_error, next_try, disabled_reason."""
        return _endpoint_view(self.endpoints.health(self.subscription(subscription_id)))

    def health(self) -> tuple[bool, dict[str, Any]]:
        return stats.health(self.connection)

    def last_hour(self, subscription_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        return stats.subscriptions_last_hour(self.connection, subscription_ids)

    def feed_rows(self) -> list[tuple[dict[str, Any], FeedState]]:
        return feed_rows(self.connection, self.config)

    def recent_stories(self, since: float, topic: str | None) -> list[Story]:
        return self.stories.recent(since, topic)

    def latest_stories(self, count: int, topic: str | None) -> list[Story]:
        return self.stories.latest(count, topic)

    def story(self, story_id: str) -> Story | None:
        """The story with every report, or None when it is unknown or left the window."""
        return self.stories.get(story_id)


def _endpoint_view(health: Health) -> dict[str, Any]:
    failing = health.status is EndpointStatus.FAILING
    return {
        "status": health.status,
        "failing_since": health.failing_since,
        "last_error": health.last_error,
        # When the failing endpoint is next tried: its deliveries wait until then.
        "next_try": max(health.blocked_until, time.time()) if failing else None,
        "disabled_reason": health.disabled_reason,
    }


def subscription_row(subscription: Subscription, health: Health) -> dict[str, Any]:
    """A subscription's row: its health, and what it asks for as subscriptions.toml says it,
    the URL redacted, no secret."""
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
