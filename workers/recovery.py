"""Where newsmon meets RQ's internals, so that no job is lost when a worker dies.

The gaps in RQ 3 are closed here, and nowhere else newsmon reads RQ's own keys (rq is pinned
to 3.x for this; tests/test_recovery.py pins the behaviour):

- Claiming. RQ keeps a copy of a popped job only when a worker listens on a single queue;
  on two it pops with BLPOP, and a worker killed between the pop and RQ recording the job as
  started loses it for good. `ClaimingQueue` instead moves each job id atomically (LMOVE)
  onto its worker's claim list, which the worker leaves only once RQ has the job in its
  started registry.
- Release. RQ notices an abandoned job only a timeout after its worker stopped beating.
  `release_dead_workers` hands back, as soon as any worker notices, the claim list and the
  started jobs of every worker that is gone: one on this host whose process has exited
  (workers are named "<host>.<pid>"), or one anywhere whose RQ registration has expired.
  Claimed jobs go back to the front of their queue; started ones go through RQ's own
  abandoned-job handling, which retries them. newsmon's jobs are safe to run twice. The
  scheduler lock such a worker held on this host is freed too, so retries and deferred
  deliveries do not wait for it to expire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from rq import Queue, Worker
from rq.exceptions import DequeueTimeout
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler

from monitor.core import keys, queues
from monitor.core.outage import UNAVAILABLE, wait_for_redis
from monitor.core.processes import exited_here

# How long an idle worker blocks on the entries queue before it looks at the deliveries
# queue again: the most a delivery queued while every worker is idle waits.
IDLE_BLOCK_SECONDS = 0.1
RELEASE_LOCK_SECONDS = 30

# Each claimed job whose job hash says it is still queued goes back to the front of its
# origin queue; one already started is left to the started-registry path. Atomic, so two
# workers releasing the same dead worker cannot queue a job twice.
DELETE_IF_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
REQUEUE_CLAIMS_SCRIPT = """
-- KEYS: claim list. ARGV: job key prefix, queue key prefix.
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local requeued = 0
for i = #ids, 1, -1 do
  local origin, status = unpack(redis.call('HMGET', ARGV[1] .. ids[i], 'origin', 'status'))
  if origin and status == 'queued' then
    redis.call('LPUSH', ARGV[2] .. origin, ids[i])
    requeued = requeued + 1
  end
end
redis.call('DEL', KEYS[1])
return requeued
"""


class ClaimingQueue(Queue):
    """A newsmon queue as a worker listens on it: jobs are claimed, never just popped.

    RQ calls `dequeue_any` on the worker's own queue objects, which carry the worker's claim
    list and its stop event; queues RQ builds for itself (with neither) are only read.
    """

    def __init__(
        self,
        name: str,
        *args: Any,
        claims: str = "",
        stopping: threading.Event | None = None,
        **kwargs: Any,
    ):
        super().__init__(name, *args, **kwargs)
        self.claims = claims
        self.stopping = stopping

    @classmethod
    def dequeue_any(
        cls,
        queues: Iterable[Queue],
        timeout: int | None,
        connection: redis.Redis,
        job_class: type[Job] | None = None,
        serializer: Any = None,
        death_penalty_class: Any = None,
    ) -> tuple[Job, Queue] | None:
        """The first job of the first non-empty queue, in priority order, moved onto the
        worker's claim list; blocks up to `timeout` seconds (None: does not block)."""
        ordered: Sequence[ClaimingQueue] = list(queues)  # type: ignore[assignment]
        claims = ordered[0].claims
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                found = next(
                    (
                        (queue, job_id)
                        for queue in ordered
                        if (job_id := connection.lmove(queue.key, claims)) is not None
                    ),
                    None,
                )
                if found is None and deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DequeueTimeout(timeout, [q.key for q in ordered])
                    # Block on the lowest-priority queue only briefly, then look at all again.
                    job_id = connection.blmove(
                        ordered[-1].key, claims, min(IDLE_BLOCK_SECONDS, left)
                    )
                    found = (ordered[-1], job_id) if job_id is not None else None
            except UNAVAILABLE:
                if not wait_for_redis(connection, ordered[0].stopping):
                    return None
                continue
            if found is None:
                if deadline is None:
                    return None
                continue
            queue, job_id = found
            job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
            fetched = cls._fetch_dequeued_job(
                connection, queue.key, job_id, job_class, serializer, death_penalty_class
            )
            if fetched is not None:
                return fetched
            connection.lrem(claims, 1, job_id)  # its job hash is gone: nothing to run


def register(connection: redis.Redis, name: str) -> None:
    """Note a worker that will claim jobs, so that its claims are found if it dies."""
    connection.sadd(keys.CLAIMING_WORKERS, name)


def release_dead_workers(connection: redis.Redis, starting: str | None = None) -> int:
    """Give back the jobs of every worker that is gone (and, at start, those left under this
    worker's own name by an earlier process); returns how many jobs were given back."""
    released = 0
    for raw in connection.smembers(keys.CLAIMING_WORKERS):
        name = raw.decode()
        if (name == starting or _gone(connection, name)) and connection.set(
            keys.releasing(name), 1, nx=True, ex=RELEASE_LOCK_SECONDS
        ):
            released += release_worker(connection, name)
            connection.srem(keys.CLAIMING_WORKERS, name)
    release_scheduler_locks(connection)
    return released


def release_scheduler_locks(connection: redis.Redis) -> None:
    """Free the scheduler lock of a worker that exited on this host: left to expire, it
    would hold every retry and deferred delivery for a minute after the crash."""
    for queue_name in queues.PRIORITY:
        key = RQScheduler.get_locking_key(queue_name)
        holder = connection.get(key)
        if holder and exited_here(holder.decode()):
            connection.register_script(DELETE_IF_SCRIPT)(keys=[key], args=[holder])


def release_worker(connection: redis.Redis, name: str) -> int:
    """Give back the claimed and started jobs of the worker called `name`, which must not be
    running; returns how many."""
    requeued = connection.register_script(REQUEUE_CLAIMS_SCRIPT)(
        keys=[keys.claimed(name)],
        args=[Job.redis_job_namespace_prefix, Queue.redis_queue_namespace_prefix],
    )
    executions_key = WORKER_EXECUTIONS_KEY_TEMPLATE.format(name)
    executions = connection.smembers(executions_key)
    connection.delete(executions_key)
    abandoned = 0
    for queue_name in queues.PRIORITY:
        registry = StartedJobRegistry(
            queue_name, connection=connection, serializer=queues.SERIALIZER
        )
        for execution in executions:
            if connection.zscore(registry.key, execution) is not None:
                connection.zadd(registry.key, {execution: 0})  # expired: abandoned now
                abandoned += 1
        registry.cleanup(timestamp=1)
    return int(requeued) + abandoned


def _gone(connection: redis.Redis, name: str) -> bool:
    """A worker is gone when RQ's registration of it has expired, or, on this host, when its
    process has exited."""
    return not connection.exists(Worker.redis_worker_namespace_prefix + name) or exited_here(name)
