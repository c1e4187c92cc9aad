"""A stop is prompt: SIGTERM ends an idle `newsmon worker` or `newsmon run` within 10 s while
another process keeps a core busy, as on a laptop with a browser open.

RQ's command listener used to wait 60 s for a message and redis-py 8.2 joins it without a
bound, so about a third of stops took a minute (more under load); stopping several workers
makes that all but certain to show."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from monitor.ops.redis_server import connect
from tests.helpers import run_config

STOP_SECONDS = 10
WORKERS = 3


@pytest.fixture
def busy_core() -> Iterator[None]:
    spinner = subprocess.Popen([sys.executable, "-c", "while 1: pass"])
    yield
    spinner.kill()
    spinner.wait()


def listening(connection, count: int) -> bool:
    """`count` workers subscribed to RQ's command channels: the listener a stop waits for is up."""
    return len(connection.pubsub_channels("rq:pubsub:*")) >= count


def test_idle_workers_stop_within_seconds_on_a_busy_machine(
    tmp_path, connection, redis_url, start_process, http_server, busy_core
):
    directory = run_config(tmp_path, http_server)
    env = {"REDIS_URL": redis_url}
    workers = [start_process("worker", "--config", str(directory), env=env) for _ in range(WORKERS)]
    workers[0].wait_for(lambda: listening(connection, WORKERS), timeout=60)
    for worker in workers:
        started = time.monotonic()
        assert worker.stop(timeout=STOP_SECONDS) == 0
        assert time.monotonic() - started < STOP_SECONDS
    assert not listening(connection, 1)


def test_workers_stopped_as_they_start_exit_cleanly(
    tmp_path, redis_url, start_process, http_server, busy_core
):
    """SIGTERM while RQ registers and subscribes, before it puts its own handlers in place,
    is a clean stop too, not a death by signal: each worker is stopped the moment it logs
    that it started."""
    directory = run_config(tmp_path, http_server)
    for _ in range(WORKERS):
        worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
        while b"worker.started" not in worker.log_path.read_bytes():  # no pause: the moment
            assert worker.popen.poll() is None, worker.log_path.read_text()
        assert worker.stop(timeout=STOP_SECONDS) == 0, worker.log_path.read_text()[-2000:]


def test_run_stops_within_seconds_on_a_busy_machine(
    tmp_path, http_server, start_process, monkeypatch, busy_core
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    run = start_process("run", "--config", str(run_config(tmp_path, http_server)), "--workers", "2")
    run.wait_for(lambda: any(e["event"] == "redis.started" for e in run.events()), timeout=60)
    connection = connect(f"unix://{tmp_path / 'data' / 'redis' / 'redis.sock'}")
    run.wait_for(lambda: listening(connection, 2), timeout=60)
    connection.close()
    assert run.stop(timeout=STOP_SECONDS) == 0
    assert [e for e in run.events() if e["event"] == "run.stopped"]
