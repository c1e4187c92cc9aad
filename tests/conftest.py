"""Fixtures: one real Redis server for the session, real HTTP servers on 127.0.0.1, real
child processes. What they are built from lives in tests/helpers.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import structlog
from selenium import webdriver

from monitor.core.config import Config
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.ops.serve import Reloadable, bound_port, make_server, start, stop_server
from tests.helpers import CHROMEDRIVER, CHROMIUM, LocalServer, Process, chromium, serve_locally


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml): three test processes per two cores. Most tests wait on
    real processes, servers and Redis, so one per core leaves the cores idle a third of the
    time (2 cores: 4 min 40 s with 2, 3 min 40 s with 3; 4 min 45 s with a core kept busy)."""
    return max(2, len(os.sched_getaffinity(0)) * 3 // 2)


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """A command run in this process (`main([...])`) sets up logging onto the test's captured
    stream; the next test must not write to it once it is closed."""
    structlog_config, handlers = structlog.get_config(), logging.getLogger().handlers[:]
    yield
    structlog.configure(**structlog_config)
    logging.getLogger().handlers[:] = handlers


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def private_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SSRF guard off, for this test (and the processes it starts) only: its servers are
    on 127.0.0.1. Every other test runs with the guard on, as newsmon ships."""
    monkeypatch.setenv("NEWSMON_ALLOW_PRIVATE_TARGETS", "1")


@pytest.fixture
def http_server(private_targets: None) -> Iterator[LocalServer]:
    yield from serve_locally()


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Process:
        process = Process(list(args), tmp_path / f"process-{len(started)}.log", env or {})
        started.append(process)
        return process

    yield start
    for process in started:
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


@pytest.fixture
def serve_url(connection: redis.Redis) -> Iterator[Callable[..., str]]:
    """`newsmon serve` on a free port of 127.0.0.1, on `client` (else the test's Redis);
    returns its base URL."""
    running = []

    def begin(config: Config, client: redis.Redis | None = None) -> str:
        server = make_server("127.0.0.1", 0, Reloadable(client or connection, config))
        running.append((server, start(server)))
        return f"http://127.0.0.1:{bound_port(server)}"

    yield begin
    for server, thread in running:
        stop_server(server, thread)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless chromium per test module, with a fresh profile. Without Debian's chromium
    the browser tests are skipped, saying what to install, except under CI (`.ci/run`
    installs it), where a missing browser must fail the run rather than hide its tests."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing and not os.environ.get("CI"):
        pytest.skip(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()
