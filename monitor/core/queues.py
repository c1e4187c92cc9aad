"""newsmon's two RQ queues, opened the same way by every process that queues or runs jobs.

Job arguments are JSON (RQ's JSONSerializer) made of the versioned documents of
monitor/documents.py, so a job queued by one version of newsmon runs on the next.
"""

from __future__ import annotations

import redis
from rq import Queue, Retry
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
