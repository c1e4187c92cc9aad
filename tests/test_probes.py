"""`/livez` and `/readyz` of `newsmon serve`: liveness touches nothing, readiness needs Redis
to answer in time; `/healthz` stays the view of the whole deployment."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from monitor.ops import serve
from tests.helpers import load, write_config


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path / "config"))


@pytest.fixture
def silent_redis() -> Iterator[redis.Redis]:
    """A client of a port that accepts connections and never answers: a hung Redis."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield redis.Redis(host="127.0.0.1", port=listener.getsockname()[1])
    listener.close()


def test_ready_when_redis_answers(config, serve_url):
    base = serve_url(config)
    live = httpx.get(f"{base}/livez")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = httpx.get(f"{base}/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"ready": True, "redis": "ok", "redis_durable": True},
    )
    # Ready is not healthy: no poller and no worker run, which /healthz reports.
    assert httpx.get(f"{base}/healthz").status_code == 503


def test_a_hung_redis_is_not_ready_within_the_probe_time(config, serve_url, silent_redis):
    base = serve_url(config, silent_redis)
    # Liveness calls nothing: it answers at once while Redis hangs.
    started = time.monotonic()
    assert httpx.get(f"{base}/livez").status_code == 200
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    ready = httpx.get(f"{base}/readyz", timeout=10)
    waited = time.monotonic() - started
    assert ready.status_code == 503 and ready.json()["redis"].startswith("unreachable")
    assert serve.PROBE_SECONDS <= waited < serve.PROBE_SECONDS + 2


def test_an_unreachable_redis_is_not_ready(config, serve_url):
    base = serve_url(config, redis.Redis(host="127.0.0.1", port=1))
    assert httpx.get(f"{base}/livez").status_code == 200
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False
