"""The message log: each subscription's recent messages and every attempt to deliver them.

As in Svix, a message is written once (its alert document, so it can be sent again under
the same webhook-id) and each attempt is a small record that refers to it: when, what
became of it, the HTTP status, how long it took, the error. `GET
/api/v1/subscriptions/ID/messages` reads it, a replay "since a time" resends from it, and
the board shows who was told of a story from its index by story. Bounded:
keys.MESSAGES_KEPT per subscription, keys.MESSAGE_DAYS, keys.ATTEMPTS_KEPT.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from monitor.core import keys
from monitor.core.documents import VERSION, alert_document, read_alert
from monitor.core.models import Alert
from workers.delivery.rounds import Round

KEEP_SECONDS = keys.MESSAGE_DAYS * 86400


class MessageLog:
    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def record(self, round_: Round, attempt: int) -> None:
        """One attempt record per message sent in the round (untried ones made none)."""
        now = time.time()
        sent = [
            (alert, outcome, status)
            for status, group in (
                ("delivered", round_.delivered),
                ("retry", round_.retry),
                ("failed", round_.failed),
                ("dead", round_.dead),
            )
            for alert, outcome in group
        ]
        if not sent:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            for alert, outcome, status in sent:
                attempt_record = {
                    "v": VERSION,
                    "attempt": attempt,
                    "at": now,
                    "status": status,
                    "http_status": outcome.http_status,
                    "duration_ms": outcome.duration_ms,
                    "error": outcome.reason or None,
                }
                document = json.dumps(alert_document(alert), ensure_ascii=False)
                pipe.set(keys.message(alert.id), document, ex=KEEP_SECONDS, nx=True)
                pipe.rpush(keys.message_attempts(alert.id), json.dumps(attempt_record))
                pipe.ltrim(keys.message_attempts(alert.id), -keys.ATTEMPTS_KEPT, -1)
                pipe.expire(keys.message_attempts(alert.id), KEEP_SECONDS)
                index = keys.messages_of(alert.subscription_id)
                pipe.zadd(index, {alert.id: alert.created.timestamp()}, nx=True)
                for story_id in _stories_told(alert):
                    by_story = keys.messages_of_story(story_id)
                    pipe.zadd(by_story, {alert.id: alert.created.timestamp()}, nx=True)
                    pipe.zremrangebyscore(by_story, "-inf", now - KEEP_SECONDS)
                    pipe.expire(by_story, KEEP_SECONDS)
            for subscription_id in {alert.subscription_id for alert, _, _ in sent}:
                index = keys.messages_of(subscription_id)
                pipe.zremrangebyscore(index, "-inf", now - KEEP_SECONDS)
                pipe.zremrangebyrank(index, 0, -keys.MESSAGES_KEPT - 1)
                pipe.expire(index, KEEP_SECONDS)
            pipe.execute()

    def recent(self, subscription_id: str, limit: int) -> list[dict[str, Any]]:
        """The subscription's newest `limit` messages, newest first, each with its attempts."""
        return self._read(
            self.connection.zrevrange(keys.messages_of(subscription_id), 0, limit - 1)
        )

    def of_story(self, story_id: str) -> list[dict[str, Any]]:
        """The messages that told of the story, to any subscription, newest first."""
        return self._read(self.connection.zrevrange(keys.messages_of_story(story_id), 0, -1))

    def _read(self, ids: list[bytes]) -> list[dict[str, Any]]:
        with self.connection.pipeline(transaction=False) as pipe:
            for alert_id in ids:
                pipe.get(keys.message(_text(alert_id)))
                pipe.lrange(keys.message_attempts(_text(alert_id)), 0, -1)
            replies = pipe.execute()
        messages = []
        for index in range(0, len(replies), 2):
            raw, attempts = replies[index], replies[index + 1]
            if not raw:  # expired before its index entry was trimmed
                continue
            alert = read_alert(json.loads(raw))
            messages.append(
                {
                    "id": alert.id,
                    "subscription_id": alert.subscription_id,
                    "type": alert.type,
                    "created": alert.created.timestamp(),
                    "entry_id": alert.entry.id,
                    "story_id": alert.entry.story_id,
                    "title": alert.entry.title,
                    "attempts": [
                        {k: v for k, v in json.loads(a).items() if k != "v"} for a in attempts
                    ],
                }
            )
        return messages

    def since(self, subscription_id: str, since: float) -> list[Alert]:
        """Every message of the subscription first sent since `since`, oldest first."""
        ids = self.connection.zrangebyscore(keys.messages_of(subscription_id), since, "+inf")
        raw = self.connection.mget([keys.message(_text(i)) for i in ids]) if ids else []
        return [read_alert(json.loads(r)) for r in raw if r]


def _stories_told(alert: Alert) -> set[str]:
    """The stories a message tells of: a digest's, else its entry's."""
    return {told.entry.story_id for told in alert.stories} or {alert.entry.story_id}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
