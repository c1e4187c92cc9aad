"""`newsmon worker`: one RQ worker on newsmon's queues that loses no job and outlives Redis.

- Jobs are claimed (recovery.ClaimingQueue) and leave the claim list only once RQ has them
  in its started registry, so a worker killed at any moment leaves every job it held where
  another worker finds it (recovery.release_dead_workers).
- RQ's scheduler (retries and deferred deliveries) runs in a thread of this process rather
  than a forked child, beside the sweep that gives back a dead worker's jobs; both ride out
  a Redis outage and move scheduled work again within seconds of Redis coming back.
- The same thread sends the digests that are due (workers/delivery/digests.py).
- When Redis goes away mid-job, RQ's work loop ends; this one waits for Redis, gives back
  the job it held and starts again, instead of exiting into a restart loop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

import redis
import structlog
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from monitor.core import keys, queues
from monitor.core.outage import UNAVAILABLE, wait_for_redis
from monitor.core.reload import ReloadRequest
from workers import recovery, runtime

log = structlog.get_logger()

SCHEDULER_INTERVAL_SECONDS = 1
# How long RQ's command listener waits for a message before it looks whether to stop. RQ
# asks for 60 s, and redis-py 8.2 waits for that thread without a bound when RQ unsubscribes,
# so a stop could take a minute; one second bounds it whatever redis-py does.
COMMAND_WAIT_SECONDS = 1.0
SWEEP_SECONDS = 10
RESTART_PAUSE_SECONDS = 1.0
# An idle worker beats every WORKER_TTL_SECONDS - 15 and its registration expires 60 s after
# a missed beat (RQ's rule): a killed worker leaves /healthz and has its jobs given back
# within two minutes, not RQ's eight.
WORKER_TTL_SECONDS = 60


class ClaimingWorker(SimpleWorker):
    """SimpleWorker runs jobs in-process: no fork per job, and the HTTP connection pool and
    the topic model stay warm across jobs. Jobs are batches, so RQ's cost is shared."""

    queue_class = recovery.ClaimingQueue

    def __init__(
        self,
        connection: redis.Redis,
        name: str,
        stopping: threading.Event,
        reload: ReloadRequest | None = None,
    ):
        self.claims = keys.claimed(name)
        self.stopping = stopping
        self.reload = reload
        super().__init__(
            [
                recovery.ClaimingQueue(
                    queue_name,
                    connection=connection,
                    serializer=queues.SERIALIZER,
                    claims=self.claims,
                    stopping=stopping,
                )
                for queue_name in queues.PRIORITY
            ],
            connection=connection,
            name=name,
            serializer=queues.SERIALIZER,
            maintenance_interval=60,
            worker_ttl=WORKER_TTL_SECONDS,
        )

    # RQ's own wait between reconnection tries doubles up to a minute; newsmon's is shorter,
    # so that work moves again within seconds of Redis coming back.
    max_connection_wait_time = 2.0

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        # Waits out an outage here, with one line for it, rather than in RQ's loop, which
        # logs every try. A stop asked before RQ's own handlers were in place ends the loop.
        if self.stopping.is_set() or not wait_for_redis(self.connection, self.stopping):
            return None
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, thread: Any) -> None:
        # RQ's listener for `rq` commands logs every two seconds while Redis is away.
        if isinstance(exc, UNAVAILABLE):
            wait_for_redis(self.connection, self.stopping)
        else:
            super()._pubsub_exception_handler(exc, pubsub, thread)

    def subscribe(self) -> None:
        # RQ's own subscribe, with a wait its teardown can afford (COMMAND_WAIT_SECONDS).
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMAND_WAIT_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def register_birth(self) -> None:
        super().register_birth()
        recovery.register(self.connection, self.name)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        # Again at each beat: a worker that was paused long enough to be released is noted
        # once more, so a later death of it is noticed too.
        (pipeline if pipeline is not None else self.connection).sadd(
            keys.CLAIMING_WORKERS, self.name
        )

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue=False)
        # Only now, with the job in RQ's started registry, may it leave the claim list.
        self.connection.lrem(self.claims, 1, job.id)
        if self.reload and self.reload.take():  # before the job: it runs on the new config
            runtime.reload()

    def request_stop(self, signum: int, frame: Any) -> None:
        self.stopping.set()
        super().request_stop(signum, frame)


def run(connection: redis.Redis, name: str, burst: bool) -> int:
    """Work until stopped (or, with `burst`, until the queues are empty)."""
    stopping = threading.Event()
    # RQ installs its own handlers only once a worker has registered and subscribed; a
    # SIGTERM before that (a stop right after a start) would kill the process outright.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: stopping.set())
    reload = ReloadRequest()
    released = recovery.release_dead_workers(connection, starting=name)
    log.info("worker.started", worker=name, burst=burst, released_jobs=released)
    background = threading.Thread(
        target=_schedule_and_sweep, args=(connection, name, stopping), daemon=True
    )
    if burst:
        scheduler = RQScheduler(
            queues.PRIORITY, connection, logging_level="WARNING", serializer=queues.SERIALIZER
        )
        _move_scheduled(scheduler)
        scheduler.release_locks()
        _send_due_digests()
    else:
        background.start()
    while True:
        worker = ClaimingWorker(connection, name, stopping, reload)
        # UNAVAILABLE: RQ's work loop ended on it, and its teardown could not reach Redis.
        with contextlib.suppress(UNAVAILABLE):
            worker.work(burst=burst, logging_level="WARNING")
        if burst or stopping.is_set():
            break
        # RQ's loop ended on an error it has logged: wait for Redis if that was the cause,
        # give back the job this worker held, and start again under the same name.
        if not wait_for_redis(connection, stopping) or stopping.wait(RESTART_PAUSE_SECONDS):
            break
        worker.register_death()
        recovery.release_worker(connection, name)
        log.warning("worker.restarted", worker=name)
    stopping.set()
    if background.is_alive():
        background.join()
    log.info("worker.stopped", worker=name)
    return 0


def _schedule_and_sweep(connection: redis.Redis, name: str, stopping: threading.Event) -> None:
    scheduler = RQScheduler(
        queues.PRIORITY,
        connection,
        interval=SCHEDULER_INTERVAL_SECONDS,
        logging_level="WARNING",
        serializer=queues.SERIALIZER,
        name=name,
    )
    next_sweep = 0.0
    while not stopping.wait(SCHEDULER_INTERVAL_SECONDS):
        try:
            _move_scheduled(scheduler)
            _send_due_digests()
            if time.monotonic() >= next_sweep:
                if released := recovery.release_dead_workers(connection):
                    log.warning("worker.jobs_released", worker=name, released_jobs=released)
                next_sweep = time.monotonic() + SWEEP_SECONDS
        except UNAVAILABLE:
            wait_for_redis(connection, stopping)
    with contextlib.suppress(UNAVAILABLE):  # else the locks expire by themselves
        scheduler.release_locks()


def _send_due_digests() -> None:
    """Digests whose time has come onto the deliveries queue (digests.py); any worker may,
    as taking them is one transaction."""
    if rt := runtime.installed():
        rt.digests.send_due(datetime.now(UTC))


def _move_scheduled(scheduler: RQScheduler) -> None:
    """Due retries and deferred deliveries onto their queues, when this process holds (or
    takes over) the scheduler lock; one process at a time does it."""
    if scheduler.acquire_locks():
        scheduler.enqueue_scheduled_jobs()
