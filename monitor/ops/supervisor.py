"""`newsmon run`: the poller and N workers as one process tree, plus the embedded Redis.

Each child runs in its own session, so Ctrl-C reaches only this supervisor, which then
stops the children once and in order: SIGTERM to poller and workers (the poller finishes
the fetch in flight, a worker finishes its job), and Redis last, after they have exited.
Jobs still queued stay in Redis (AOF) for the next start. A child that dies is restarted, and
so is the embedded Redis, on the same AOF; the others wait for it (monitor/outage.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import structlog

from monitor.core.config import Config
from monitor.core.processes import die_with_parent
from monitor.ops.redis_server import EmbeddedRedis, connect, ensure_durable

log = structlog.get_logger()

STOP_TIMEOUT_SECONDS = 90
RESTART_DELAY_SECONDS = 2.0


class Child:
    def __init__(self, name: str, command: list[str], env: dict[str, str]):
        self.name, self.command, self.env = name, command, env
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, env=self.env, start_new_session=True, preexec_fn=die_with_parent
        )
        self.started = time.monotonic()
        log.info("process.started", process=self.name, pid=self.process.pid)


def run(config: Config, workers: int) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    embedded = None
    url = os.environ.get("REDIS_URL")
    if not url:
        embedded = EmbeddedRedis(config.settings.data_dir / "redis")
        try:
            url = embedded.start()
        except RuntimeError as exc:
            log.error("redis.failed", reason=str(exc), data_dir=str(embedded.data_dir))
            return 1
        _started(embedded)
    env = {**os.environ, "REDIS_URL": url}
    base = [sys.executable, "-m", "monitor"]
    config_path = str(config.directory)
    children = [Child("poller", [*base, "poll", "--config", config_path], env)]
    children += [
        Child(f"worker-{i + 1}", [*base, "worker", "--config", config_path], env)
        for i in range(workers)
    ]
    # SIGHUP: each child reads the config folder again (monitor/core/reload.py).
    signal.signal(signal.SIGHUP, lambda *_: _signal_children(children, signal.SIGHUP))
    exit_code = 0
    try:
        # Before any child: a refused Redis stops `run` once (exit 2), not each child in a loop.
        client = connect(url)
        try:
            ensure_durable(client, config)
        finally:
            client.close()
        for child in children:
            child.start()
        while not stop.wait(0.5):
            if embedded and embedded.exited() and not _restart_redis(embedded):
                exit_code = 1
                break
            for child in children:
                code = child.process.poll() if child.process else None
                if code is not None and time.monotonic() - child.started > RESTART_DELAY_SECONDS:
                    log.error("process.exited", process=child.name, exit_code=code, restarting=True)
                    child.start()
        log.info("run.stopping")
        _stop_children(children)
    finally:
        if embedded:
            embedded.stop()
            log.info("redis.stopped")
    log.info("run.stopped")
    return exit_code


def _restart_redis(embedded: EmbeddedRedis) -> bool:
    log.error("redis.exited", restarting=True, data_dir=str(embedded.data_dir))
    try:
        embedded.start()
    except RuntimeError as exc:
        log.error("redis.failed", reason=str(exc), data_dir=str(embedded.data_dir))
        return False
    _started(embedded)
    return True


def _started(embedded: EmbeddedRedis) -> None:
    log.info(
        "redis.started",
        url=embedded.url,
        data_dir=str(embedded.data_dir),
        pid=embedded.pid,
        server=str(embedded.binary),
        version=embedded.version,
    )


def _signal_children(children: list[Child], signum: int) -> None:
    for child in children:
        if child.process and child.process.poll() is None:
            child.process.send_signal(signum)


def _stop_children(children: list[Child]) -> None:
    running = [c for c in children if c.process and c.process.poll() is None]
    for child in running:
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in running:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.error("process.killed", process=child.name, reason="did not stop in time")
            child.process.kill()
            child.process.wait()
