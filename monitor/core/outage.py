"""Riding out a Redis outage: a process waits for Redis with backoff instead of crashing.

Every newsmon process (poller, worker and its scheduler thread, serve) calls `wait_for_redis`
when a Redis call fails for want of a connection. The first thread to find Redis down logs
`redis.unavailable` and probes it with backoff; any other thread that arrives meanwhile waits
behind it; `redis.recovered` is logged once Redis answers. Nothing is retried here: the
caller starts its step again, which every step of newsmon is safe to do.
"""

from __future__ import annotations

import threading
import time

import redis
import structlog

log = structlog.get_logger()

# What a lost or refused connection raises (a Redis still loading its AOF raises
# BusyLoadingError, a ConnectionError too).
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)
FIRST_DELAY_SECONDS = 0.1
# Bounded low so that work moves again within seconds of Redis coming back.
MAX_DELAY_SECONDS = 2.0

_probing = threading.Lock()


def wait_for_redis(connection: redis.Redis, stop: threading.Event | None = None) -> bool:
    """Block until Redis answers (True), or until `stop` is set (False)."""
    with _probing:
        if _answers(connection):
            return True  # a blip, or another thread already waited the outage out
        started = time.monotonic()
        log.error("redis.unavailable", retry_max_seconds=MAX_DELAY_SECONDS)
        delay = FIRST_DELAY_SECONDS
        while not _answers(connection):
            if stop is not None and stop.wait(delay):
                return False
            if stop is None:
                time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_SECONDS)
        log.info("redis.recovered", down_seconds=round(time.monotonic() - started, 1))
        return True


def _answers(connection: redis.Redis) -> bool:
    try:
        connection.ping()
    except UNAVAILABLE:
        return False
    return True
