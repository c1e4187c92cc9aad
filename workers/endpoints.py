"""Endpoint health: which webhook endpoints are failing, until when to leave them alone,
and which are disabled. Shared by all workers through one Redis hash per subscription.

A failing endpoint's backlog waits in its own schedule (`blocked_until`) instead of holding
workers; one that keeps failing for `disable_after_hours`, or answers 410 Gone, is disabled
until its URL changes in subscriptions.toml or an operator re-enables it.
"""

from __future__ import annotations

import time

import redis

from monitor import keys
from monitor.models import Subscription


class Endpoints:
    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def state(self, subscription_id: str) -> dict[str, str]:
        raw = self.connection.hgetall(keys.endpoint(subscription_id))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def disabled_reason(self, subscription: Subscription) -> str | None:
        """Why the subscription is disabled, or None. Changing its URL re-enables it."""
        state = self.state(subscription.id)
        if state.get("disabled_url") == subscription.url:
            return state.get("disabled_reason", "disabled")
        return None

    def blocked_for(self, subscription_id: str) -> float:
        """Seconds until the failing endpoint may be tried again (0 when it may be now)."""
        blocked_until = self.connection.hget(keys.endpoint(subscription_id), "blocked_until")
        return max(float(blocked_until or 0) - time.time(), 0.0)

    def is_failing(self, subscription_id: str) -> bool:
        return bool(self.connection.hexists(keys.endpoint(subscription_id), "failing_since"))

    def succeeded(self, subscription_id: str) -> None:
        self.connection.hdel(
            keys.endpoint(subscription_id), "failing_since", "blocked_until", "failed_rounds"
        )

    def failed(self, subscription_id: str) -> tuple[int, float]:
        """Record a failed round of deliveries; returns how many rounds in a row have failed
        and for how many seconds the endpoint has been failing."""
        now = time.time()
        key = keys.endpoint(subscription_id)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "failing_since", now)
            pipe.hincrby(key, "failed_rounds", 1)
            pipe.hget(key, "failing_since")
            _, rounds, since = pipe.execute()
        return rounds, now - float(since)

    def block(self, subscription_id: str, seconds: float) -> None:
        """Leave the endpoint alone for `seconds`: its deliveries wait until then."""
        self.connection.hset(keys.endpoint(subscription_id), "blocked_until", time.time() + seconds)

    def disable(self, subscription: Subscription, reason: str) -> None:
        self.connection.hset(
            keys.endpoint(subscription.id),
            mapping={
                "disabled_url": subscription.url,
                "disabled_reason": reason,
                "disabled_at": time.time(),
            },
        )

    def enable(self, subscription_id: str) -> bool:
        """Re-enable (and forget past failures); False when it was not disabled."""
        return bool(self.connection.delete(keys.endpoint(subscription_id)))
