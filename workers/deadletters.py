"""Dead letters: alerts whose last attempt failed, kept (bounded) so none is silently lost."""

from __future__ import annotations

import json
import time

import redis

from monitor import keys
from monitor.models import Alert
from workers.deliver import alert_body


class DeadLetters:
    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def add(self, alert: Alert, attempts: int, reason: str) -> None:
        record = {
            "alert_id": alert.id,
            "subscription_id": alert.subscription_id,
            "entry_id": alert.entry.id,
            "title": alert.entry.title,
            "attempts": attempts,
            "reason": reason,
            "died_at": time.time(),
            # The exact body, so a replay sends the same message under the same id.
            "body": alert_body(alert).decode(),
        }
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DEAD_LETTERS, alert.id, json.dumps(record))
            pipe.zadd(keys.DEAD_LETTERS_ORDER, {alert.id: record["died_at"]})
            pipe.execute()
        excess = self.connection.zcard(keys.DEAD_LETTERS_ORDER) - keys.DEAD_LETTERS_KEPT
        if excess > 0:
            oldest = [
                member for member, _ in self.connection.zpopmin(keys.DEAD_LETTERS_ORDER, excess)
            ]
            self.connection.hdel(keys.DEAD_LETTERS, *oldest)

    def list(self) -> list[dict]:
        ids = self.connection.zrange(keys.DEAD_LETTERS_ORDER, 0, -1)
        records = self.connection.hmget(keys.DEAD_LETTERS, ids) if ids else []
        return [json.loads(r) for r in records if r]
