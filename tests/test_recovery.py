"""The adapter to RQ's internals (workers/recovery.py), against a real Redis and real RQ 3.

If a new RQ changes the keys or the flow these rely on, these tests say so before a job is
lost in production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading

from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler

from monitor.core import keys, queues
from workers import recovery


def dead_worker_name() -> str:
    """A worker name on this host whose process has exited."""
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}.{process.pid}"


def claiming(connection, name: str) -> list[recovery.ClaimingQueue]:
    return [
        recovery.ClaimingQueue(
            queue_name,
            connection=connection,
            serializer=queues.SERIALIZER,
            claims=keys.claimed(name),
            stopping=threading.Event(),
        )
        for queue_name in queues.PRIORITY
    ]


def test_a_claimed_job_leaves_its_queue_for_the_claim_list_in_priority_order(connection):
    entries = queues.queue(keys.ENTRIES_QUEUE, connection)
    deliveries = queues.queue(keys.DELIVERIES_QUEUE, connection)
    first = entries.enqueue_call("builtins.len", args=([1],))
    second = deliveries.enqueue_call("builtins.len", args=([2],))
    listening = claiming(connection, "someone")

    job, queue = recovery.ClaimingQueue.dequeue_any(listening, None, connection)
    assert (job.id, queue.name) == (second.id, keys.DELIVERIES_QUEUE)  # deliveries first
    job, _ = recovery.ClaimingQueue.dequeue_any(listening, 1, connection)
    assert job.id == first.id
    assert connection.lrange(keys.claimed("someone"), 0, -1) == [
        second.id.encode(),
        first.id.encode(),
    ]
    assert entries.count == deliveries.count == 0
    assert recovery.ClaimingQueue.dequeue_any(listening, None, connection) is None


def test_jobs_claimed_by_a_dead_worker_go_back_to_the_front_of_their_queue(connection):
    entries = queues.queue(keys.ENTRIES_QUEUE, connection)
    claimed = entries.enqueue_call("builtins.len", args=([1],))
    name = dead_worker_name()
    recovery.register(connection, name)
    recovery.ClaimingQueue.dequeue_any(claiming(connection, name), None, connection)
    waiting = entries.enqueue_call("builtins.len", args=([2],))

    assert recovery.release_dead_workers(connection) == 1
    assert entries.job_ids == [claimed.id, waiting.id]
    assert not connection.exists(keys.claimed(name))
    assert not connection.sismember(keys.CLAIMING_WORKERS, name)


def test_a_live_workers_claims_are_left_alone(connection):
    entries = queues.queue(keys.ENTRIES_QUEUE, connection)
    entries.enqueue_call("builtins.len", args=([1],))
    worker = SimpleWorker([Queue("other", connection=connection)], connection=connection)
    worker.register_birth()  # this very process: registered and alive
    recovery.register(connection, worker.name)
    recovery.ClaimingQueue.dequeue_any(claiming(connection, worker.name), None, connection)

    assert recovery.release_dead_workers(connection) == 0
    assert connection.llen(keys.claimed(worker.name)) == 1
    worker.register_death()


def test_a_started_job_of_a_dead_worker_is_retried_by_rq(connection):
    """The worker died after RQ recorded the job as started: RQ's abandoned-job handling
    takes it, through the execution keys RQ 3 writes per worker."""
    entries = queues.queue(keys.ENTRIES_QUEUE, connection)
    job = entries.enqueue_call("builtins.len", args=([1],), retry=queues.JOB_RETRY)
    name = dead_worker_name()
    worker = SimpleWorker([entries], connection=connection, name=name, serializer=queues.SERIALIZER)
    worker.register_birth()
    recovery.register(connection, name)
    dequeued, _ = Queue.dequeue_any([entries], None, connection, serializer=queues.SERIALIZER)
    worker.prepare_execution(dequeued)  # RQ's own bookkeeping of a started job
    worker.prepare_job_execution(dequeued)
    assert dequeued.id in entries.started_job_registry.get_job_ids()

    assert recovery.release_dead_workers(connection) == 1
    assert job.id not in entries.started_job_registry.get_job_ids()
    retried = entries.fetch_job(job.id)
    assert retried.get_status() in ("scheduled", "queued")  # RQ's retry, after its interval
    assert retried.retries_left == queues.JOB_RETRY.max - 1


def test_the_scheduler_lock_of_a_dead_worker_is_freed(connection):
    dead = dead_worker_name()
    alive = f"{socket.gethostname()}.{os.getpid()}"
    entries, deliveries = (RQScheduler.get_locking_key(name) for name in queues.PRIORITY)
    connection.set(entries, dead, ex=60)
    connection.set(deliveries, alive, ex=60)
    recovery.release_dead_workers(connection)
    assert connection.get(entries) is None
    assert connection.get(deliveries) == alive.encode()
