"""Give back the jobs of a worker that died mid-job, as soon as another worker starts.

RQ notices an abandoned job only after the job's timeout (plus a minute) has passed without
a heartbeat. Workers are named "<host>.<pid>", so a worker starting on a host can tell which
of that host's workers are gone and hand their started jobs to RQ's own abandoned-job
handling at once: each job is retried (newsmon's jobs are safe to run twice).
"""

from __future__ import annotations

import os
import socket

import redis
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from rq.registry import StartedJobRegistry

from monitor import keys


def worker_name() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_workers_jobs(connection: redis.Redis) -> int:
    """Retry the started jobs of this host's dead workers (and of an earlier process that had
    this one's pid); returns how many were released."""
    host = socket.gethostname()
    pattern = WORKER_EXECUTIONS_KEY_TEMPLATE.format(f"{host}.*")
    prefix, suffix = pattern.split("*")
    stale: list[bytes] = []
    for key in connection.scan_iter(match=pattern):
        pid = key.decode().removeprefix(prefix).removesuffix(suffix)
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            stale += connection.smembers(key)
            connection.delete(key)
    released = 0
    for queue in (keys.ENTRIES_QUEUE, keys.DELIVERIES_QUEUE):
        registry = StartedJobRegistry(queue, connection=connection)
        for execution in stale:
            if connection.zscore(registry.key, execution) is not None:
                connection.zadd(registry.key, {execution: 0})  # expired: abandoned now
                released += 1
        registry.cleanup(timestamp=1)
    return released
