"""Config changes without a restart. SIGHUP (or `newsmon reload`, which sends it to this
host's newsmon processes) asks a running poller or worker to read its config folder again
between two pieces of work. A folder that does not validate is refused with the usual
problems, and the process keeps running on the config it had."""

from __future__ import annotations

import signal
import threading

import structlog

from monitor.core.config import Config, ConfigError, load_config

log = structlog.get_logger()


class ReloadRequest:
    """SIGHUP, remembered until the process is between two pieces of work."""

    def __init__(self) -> None:
        self._asked = threading.Event()
        signal.signal(signal.SIGHUP, lambda *_: self._asked.set())

    def take(self) -> bool:
        asked = self._asked.is_set()
        self._asked.clear()
        return asked


def reloaded(config: Config) -> Config | None:
    """`config`'s folder read again, or None (logged, with each problem) when it is invalid."""
    try:
        fresh = load_config(config.directory)
    except ConfigError as exc:
        log.error(
            "config.reload_refused",
            directory=str(config.directory),
            problems=[str(problem) for problem in exc.problems],
            running="the config read before",
        )
        return None
    log.info(
        "config.reloaded",
        directory=str(config.directory),
        feeds=len(fresh.feeds),
        topics=len(fresh.topics),
        subscriptions=len(fresh.subscriptions),
    )
    return fresh
