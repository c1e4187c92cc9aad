"""Dead letters: alerts that could not be delivered, kept (bounded in time and count) so that
none is silently lost and an operator can list and replay them.

Each is one versioned JSON record holding why it died and the alert's own document, so a
replay sends the same body under the same webhook-id, whatever newsmon version wrote it.
Trimming happens when a letter is added; reads (`list`, `count`) never write.
"""

from __future__ import annotations

import json
import time

import redis

from monitor.core import keys
from monitor.core.documents import VERSION, alert_document, read_alert
from monitor.core.models import Alert


class DeadLetters:
    def __init__(self, connection: redis.Redis, keep_seconds: float):
        self.connection = connection
        self.keep_seconds = keep_seconds

    def add(self, alert: Alert, attempts: int, reason: str) -> None:
        now = time.time()
        record = {
            "v": VERSION,
            "alert_id": alert.id,
            "subscription_id": alert.subscription_id,
            "entry_id": alert.entry.id,
            "title": alert.entry.title,
            "attempts": attempts,
            "reason": reason,
            "died_at": now,
            "alert": alert_document(alert),
        }
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DEAD_LETTERS, alert.id, json.dumps(record, ensure_ascii=False))
            pipe.zadd(keys.DEAD_LETTERS_ORDER, {alert.id: now})
            pipe.zadd(keys.dead_letters_of(alert.subscription_id), {alert.id: now})
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

    def _records(self, ids: list) -> list[dict]:
        raw = self.connection.hmget(keys.DEAD_LETTERS, ids) if ids else []
        return [json.loads(r) for r in raw if r]

    def _remove(self, ids: list) -> None:
        subscriptions = {r["subscription_id"] for r in self._records(ids)}
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.DEAD_LETTERS, *ids)
            pipe.zrem(keys.DEAD_LETTERS_ORDER, *ids)
            for subscription_id in subscriptions:
                pipe.zrem(keys.dead_letters_of(subscription_id), *ids)
            pipe.execute()

    def list(self, subscription_id: str | None = None, since: float | None = None) -> list[dict]:
        """Dead letters, oldest first, optionally of one subscription and died since a time."""
        order = (
            keys.dead_letters_of(subscription_id) if subscription_id else keys.DEAD_LETTERS_ORDER
        )
        oldest = max(since or 0, time.time() - self.keep_seconds)
        records = self._records(self.connection.zrangebyscore(order, oldest, "+inf"))
        return [{k: v for k, v in r.items() if k not in ("v", "alert")} for r in records]

    def count(self, subscription_id: str) -> int:
        """How many of this subscription's dead letters are kept: one read, no decoding."""
        oldest = time.time() - self.keep_seconds
        return self.connection.zcount(keys.dead_letters_of(subscription_id), oldest, "+inf")

    def take(self, alert_ids: list[str]) -> list[Alert]:
        """Remove these dead letters and return their alerts, to be sent again."""
        records = self._records(alert_ids)
        if records:
            self._remove([r["alert_id"] for r in records])
        return [read_alert(r["alert"]) for r in records]
