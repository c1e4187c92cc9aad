"""Delivery jobs onto the deliveries queue: how every alert reaches a worker's send, whether
new, retried, deferred, replayed or a test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from monitor.core import keys, queues
from monitor.core.config import Settings
from monitor.core.documents import alert_document
from monitor.core.models import Alert

# Alerts per delivery job: RQ's per-job cost is shared by many deliveries (bench/latency.py).
DELIVERY_CHUNK = 100


def schedule_deliveries(
    connection: redis.Redis,
    settings: Settings,
    alerts: dict[str, list[Alert]],
    *,
    attempt: int,
    delay_seconds: float,
) -> int:
    """Queue delivery jobs, per subscription and in chunks, now or after `delay_seconds`."""
    queue = queues.queue(keys.DELIVERIES_QUEUE, connection)
    when = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    count = 0
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        for subscription_id, subscription_alerts in alerts.items():
            for start in range(0, len(subscription_alerts), DELIVERY_CHUNK):
                chunk = subscription_alerts[start : start + DELIVERY_CHUNK]
                documents = [alert_document(a) for a in chunk]
                job = queues.delivery_job(
                    queue,
                    subscription_id,
                    documents,
                    attempt=attempt,
                    delivery_timeout_seconds=settings.delivery_timeout_seconds,
                )
                if delay_seconds > 0:
                    queue.schedule_job(job, when, pipeline=pipe)
                else:
                    queue.enqueue_job(job, pipeline=pipe)
                count += len(chunk)
        pipe.execute()
    return count
