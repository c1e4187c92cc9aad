"""newsmon's two RQ queues, opened the same way by every process that queues or runs jobs.

Job arguments are JSON (RQ's JSONSerializer) made of the versioned documents of
monitor/documents.py, so a job queued by one version of newsmon runs on the next.
"""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from monitor.core import keys

SERIALIZER = JSONSerializer
PROCESS_JOB = "workers.jobs.process_entries"
DELIVER_JOB = "workers.jobs.deliver_alerts"
# A job that fails, or whose worker died mid-job, runs again while retries remain.
JOB_RETRY = Retry(max=5, interval=[1, 5, 30, 60, 300])
# Deliveries first: a worker finishes alerts in flight before it starts on new entries.
PRIORITY = (keys.DELIVERIES_QUEUE, keys.ENTRIES_QUEUE)


def queue(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection, serializer=SERIALIZER)


def delivery_job(
    queue: Queue,
    subscription_id: str,
    documents: list[dict[str, Any]],
    *,
    attempt: int,
    delivery_timeout_seconds: float,
) -> Job:
    """A job that sends these alert documents to one subscription (not queued yet)."""
    return queue.create_job(
        DELIVER_JOB,
        args=(subscription_id, documents, attempt),
        # Longer than the worst case (every message taking the delivery timeout and a second
        # more), so RQ never runs one delivery twice at once.
        timeout=int(len(documents) * (delivery_timeout_seconds + 1)) + 60,
        retry=JOB_RETRY,
        result_ttl=0,
        description=f"deliver {len(documents)} to {subscription_id}, attempt {attempt}",
    )
