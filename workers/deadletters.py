"""Dead letters: alerts that could not be delivered, kept (bounded in time and count) so that
none is silently lost and an operator can list and replay them."""

from __future__ import annotations

import json
import pickle
import time

import redis

from monitor import keys
from monitor.models import Alert


class DeadLetters:
    def __init__(self, connection: redis.Redis, keep_seconds: float):
        self.connection = connection
        self.keep_seconds = keep_seconds

    def add(self, alert: Alert, attempts: int, reason: str) -> None:
        now = time.time()
        record = {
            "alert_id": alert.id,
            "subscription_id": alert.subscription_id,
            "entry_id": alert.entry.id,
            "title": alert.entry.title,
            "attempts": attempts,
            "reason": reason,
            "died_at": now,
        }
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DEAD_LETTERS, alert.id, json.dumps(record))
            pipe.hset(keys.DEAD_LETTER_ALERTS, alert.id, pickle.dumps(alert))
            pipe.zadd(keys.DEAD_LETTERS_ORDER, {alert.id: now})
            pipe.execute()
        self._trim(now)

    def _trim(self, now: float) -> None:
        expired = self.connection.zrangebyscore(
            keys.DEAD_LETTERS_ORDER, "-inf", now - self.keep_seconds
        )
        excess = (
            self.connection.zcard(keys.DEAD_LETTERS_ORDER) - len(expired) - keys.DEAD_LETTERS_KEPT
        )
        if excess > 0:
            expired += self.connection.zrange(
                keys.DEAD_LETTERS_ORDER, len(expired), len(expired) + excess - 1
            )
        if expired:
            self._remove(expired)

    def _remove(self, ids: list) -> None:
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.DEAD_LETTERS, *ids)
            pipe.hdel(keys.DEAD_LETTER_ALERTS, *ids)
            pipe.zrem(keys.DEAD_LETTERS_ORDER, *ids)
            pipe.execute()

    def list(self, subscription_id: str | None = None, since: float | None = None) -> list[dict]:
        """Dead letters, oldest first, optionally of one subscription and died since a time."""
        self._trim(time.time())
        ids = self.connection.zrangebyscore(keys.DEAD_LETTERS_ORDER, since or "-inf", "+inf")
        records = (
            [json.loads(r) for r in self.connection.hmget(keys.DEAD_LETTERS, ids) if r]
            if ids
            else []
        )
        return [r for r in records if subscription_id in (None, r["subscription_id"])]

    def take(self, alert_ids: list[str]) -> list[Alert]:
        """Remove these dead letters and return their alerts, to be sent again."""
        if not alert_ids:
            return []
        alerts = [
            pickle.loads(a) for a in self.connection.hmget(keys.DEAD_LETTER_ALERTS, alert_ids) if a
        ]
        self._remove(alert_ids)
        return alerts
