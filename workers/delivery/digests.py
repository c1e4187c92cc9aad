"""Digests: for a subscription with `digest_minutes`, one message every N minutes listing
the stories alerted since the last one, instead of one message per story.

An alert for such a subscription is not sent: it waits in Redis (keys.digest_pending, a hash
from story id to the alert's versioned JSON, so each story is listed once however often a
job runs), and the first one to wait sets the digest's due time (keys.DIGESTS_DUE). Any
worker's scheduler thread then takes what waits for a due digest and queues it as one
delivery job, in one transaction that also removes what it took: a crash before leaves it
all waiting, a crash after leaves the job queued. From there a digest is a message like any
other (attempt records, retries, dead letters), of type `digest.created`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import redis
import structlog

from monitor.core import keys, queues
from monitor.core.documents import alert_document, read_alert
from monitor.core.models import Alert, Subscription

log = structlog.get_logger()

MAX_STORIES = 100  # per message; a busier digest goes out as several


def digest_of(subscription_id: str, stories: list[Alert], now: datetime) -> Alert:
    """One message listing `stories`, oldest first. Its id is derived from what it lists, so
    taking the same stories twice would send them under the same webhook-id."""
    stories = sorted(stories, key=lambda a: (a.created, a.id))
    source = "\0".join([subscription_id, *(a.id for a in stories)])
    digest_id = "msg_dg_" + hashlib.blake2b(source.encode(), digest_size=12).hexdigest()
    topics = tuple(dict.fromkeys(t for a in stories for t in a.topics))
    return Alert(
        id=digest_id,
        subscription_id=subscription_id,
        topics=topics,
        entry=stories[0].entry,
        created=now,
        stories=tuple(stories),
    )


class Digests:
    def __init__(self, connection: redis.Redis, delivery_timeout_seconds: float):
        self.connection = connection
        self.delivery_timeout_seconds = delivery_timeout_seconds
        self.queue = queues.queue(keys.DELIVERIES_QUEUE, connection)

    def hold(
        self, pipe: redis.client.Pipeline, subscription: Subscription, alerts: list[Alert]
    ) -> None:
        """Keep new stories' alerts for the subscription's next digest, in the caller's
        pipeline. An edit of a story already listed is left out: each story appears once."""
        key = keys.digest_pending(subscription.id)
        for alert in alerts:
            if alert.type == "alert.created":
                pipe.hsetnx(key, alert.entry.story_id, json.dumps(alert_document(alert)))
        due = alerts[0].created.timestamp() + subscription.digest_minutes * 60
        pipe.zadd(keys.DIGESTS_DUE, {subscription.id: due}, nx=True)

    def send_due(self, now: datetime) -> int:
        """Queue the digests due by `now`; how many were queued."""
        due = self.connection.zrangebyscore(keys.DIGESTS_DUE, "-inf", now.timestamp())
        return sum(self._send(raw.decode(), now) for raw in due)

    def _send(self, subscription_id: str, now: datetime) -> int:
        key = keys.digest_pending(subscription_id)
        with self.connection.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    waiting = pipe.hgetall(key)
                    taken = sorted(waiting)[:MAX_STORIES]
                    pipe.multi()
                    if taken:
                        stories = [read_alert(json.loads(waiting[k])) for k in taken]
                        digest = digest_of(subscription_id, stories, now)
                        job = queues.delivery_job(
                            self.queue,
                            subscription_id,
                            [alert_document(digest)],
                            attempt=1,
                            delivery_timeout_seconds=self.delivery_timeout_seconds,
                        )
                        self.queue.enqueue_job(job, pipeline=pipe)
                        pipe.hdel(key, *taken)
                    if len(waiting) == len(taken):  # else the rest go at the next turn
                        pipe.zrem(keys.DIGESTS_DUE, subscription_id)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue  # more came meanwhile: take them too
        if not taken:
            return 0
        log.info(
            "digest.enqueued",
            digest_id=digest.id,
            subscription=subscription_id,
            stories=len(taken),
        )
        return 1
