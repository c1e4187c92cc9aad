"""`newsmon serve` on uvicorn, hit over real sockets: its routes, the limits that keep a
public endpoint from being held open, clean stops, its log lines, and a /metrics scrape
that only reads."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from monitor.core import keys
from monitor.ops import auth, serve
from tests.helpers import SECRET, load, make_alerts, write_config
from workers.delivery.deadletters import DeadLetters

HOOK = {"id": "hook", "url": "https://hooks.example/in", "topics": ["*"], "secret": SECRET}


@pytest.fixture
def served(tmp_path, connection, serve_url) -> Callable[..., str]:
    """Start `newsmon serve` with one subscription on a free port; returns its base URL."""

    def begin(client: redis.Redis = connection) -> str:
        return serve_url(load(write_config(tmp_path / "config", subscriptions=[HOOK])), client)

    return begin


def raw_connection(base: str) -> socket.socket:
    url = urlsplit(base)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def closed_by_server(sock: socket.socket) -> bool:
    """Read until the server closes the connection; False if it is still open after the
    socket's timeout."""
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_routes(served, connection):
    # A worker killed long ago: still in RQ's set of workers, its registration expired.
    connection.sadd("rq:workers", "rq:worker:host.4242")
    base = served()
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 503
    assert health.json()["redis"] == "ok" and health.json()["workers"] == "no worker registered"
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'newsmon_dead_letters{subscription="hook"} 0.0' in metrics.text
    missing = httpx.get(f"{base}/nothing")
    assert (missing.status_code, missing.text) == (404, "not found: try /healthz or /metrics\n")
    assert "server" not in missing.headers


def test_redis_down_is_a_503_not_a_crash(served):
    # No retries: redis-py's default backoff would stretch each request past httpx's timeout.
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    base = served(unreachable)
    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 503 and health.json()["redis"].startswith("unreachable")
    metrics = httpx.get(f"{base}/metrics")
    assert (metrics.status_code, metrics.text) == (503, "redis unavailable\n")


def test_a_request_head_must_arrive_in_time(served, monkeypatch):
    monkeypatch.setattr(serve, "HEAD_SECONDS", 0.5)
    base = served()
    sock = raw_connection(base)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
    # Drip a header byte at a time: every byte would restart a keep-alive timer.
    for _ in range(10):
        try:
            sock.sendall(b"x")
        except OSError:
            break
        time.sleep(0.2)
    assert closed_by_server(sock)
    sock.close()
    # Requests that arrive whole are answered on a kept-alive connection, one after another.
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(f"{base}/metrics").status_code == 200
            time.sleep(0.3)


def test_an_oversized_request_head_is_refused(served):
    """A head still unfinished past MAX_HEAD_BYTES is refused, not buffered on."""
    sock = raw_connection(served())
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"a" * 20_000)
    assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    assert closed_by_server(sock)
    sock.close()


def test_connections_beyond_the_limit_are_turned_away(served, monkeypatch):
    monkeypatch.setattr(serve, "MAX_CONNECTIONS", 3)
    base = served()
    held = [raw_connection(base) for _ in range(3)]
    try:
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert "Service Unavailable" in httpx.get(f"{base}/healthz").text
    finally:
        for sock in held:
            sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_stops_cleanly_when_told(tmp_path, connection):
    config = load(write_config(tmp_path, subscriptions=[HOOK]))
    port, stop = free_port(), threading.Event()
    thread = threading.Thread(
        target=serve.serve, args=("127.0.0.1", port, connection, config, stop), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 503
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "serve never listened"
            time.sleep(0.05)
    kept_open = httpx.Client()
    kept_open.get(f"http://127.0.0.1:{port}/metrics")  # an idle keep-alive connection
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz")
    kept_open.close()


def test_serve_logs_json_lines_only(tmp_path, start_process, redis_url):
    directory = write_config(tmp_path / "config", subscriptions=[HOOK])
    process = start_process(
        "serve", "--config", str(directory), "--port", "0", env={"REDIS_URL": redis_url}
    )
    process.wait_for(lambda: "serve.started" in [e["event"] for e in process.events()])
    port = next(e["port"] for e in process.events() if e["event"] == "serve.started")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
    process.wait_for(lambda: any(e["level"] == "warning" for e in process.events()))
    assert process.stop() == 0
    lines = process.log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is JSON: uvicorn's too
    warning = next(e for e in events if e["level"] == "warning")
    assert warning["event"] == "Invalid HTTP request received." and warning["timestamp"]
    assert [e["event"] for e in events if e["event"].startswith("serve.")] == [
        "serve.started",
        "serve.stopped",
    ]
    assert not any("GET /metrics" in line for line in lines)  # no access log


@contextmanager
def commands_sent(connection: redis.Redis) -> Iterator[list[list[str]]]:
    """Every command the Redis server receives inside the block, as [name, args...]."""
    seen: list[list[str]] = []
    marker = f"newsmon-test-end-{time.time_ns()}"
    ready = threading.Event()

    def watch() -> None:
        with connection.monitor() as monitor:
            ready.set()
            while True:
                command = monitor.next_command()["command"].split(" ")
                if command[-1] == marker:
                    return
                seen.append([command[0].upper(), *command[1:]])

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(10)
    yield seen
    connection.echo(marker)
    thread.join(10)
    assert not thread.is_alive()


def data_commands(commands: list[list[str]]) -> list[list[str]]:
    """Without a new pooled connection's handshake (HELLO, CLIENT SETINFO ...)."""
    return [c for c in commands if c[0] not in {"HELLO", "CLIENT", "AUTH", "SELECT", "PING"}]


def writes_so_far(connection: redis.Redis) -> int:
    """Changes to the data since start ('save' is off, so this only grows)."""
    return connection.info("persistence")["rdb_changes_since_last_save"]


def scrape(base: str) -> str:
    answer = httpx.get(f"{base}/metrics")
    assert answer.status_code == 200
    return answer.text


def kill(connection: redis.Redis, dead: int) -> None:
    letters = DeadLetters(connection, 14 * 86400)
    for alert in make_alerts(dead, "hook"):
        letters.add(alert, attempts=8, reason="HTTP 500")


def test_metrics_is_a_read_of_constant_size_per_subscription(served, connection):
    base = served()
    scrape(base)  # the first reads the API's subscriptions; later ones only their version
    with commands_sent(connection) as before:
        scrape(base)
    kill(connection, 2_000)
    size, changes = connection.dbsize(), writes_so_far(connection)
    letters = connection.hlen(keys.DEAD_LETTERS)

    with commands_sent(connection) as during:
        text = scrape(base)

    assert 'newsmon_dead_letters{subscription="hook"} 2000.0' in text
    assert writes_so_far(connection) == changes
    assert (connection.dbsize(), connection.hlen(keys.DEAD_LETTERS)) == (size, letters)
    # No dead letter is read or decoded: one count per subscription, as many commands as
    # with none at all.
    dead_keys = {keys.DEAD_LETTERS, keys.DEAD_LETTERS_ORDER, keys.dead_letters_of("hook")}
    touching = [c for c in during if len(c) > 1 and c[1] in dead_keys]
    assert [c[0] for c in touching] == ["ZCOUNT"]
    assert len(data_commands(during)) == len(data_commands(before))


def test_metrics_sends_no_write_command(served, connection):
    base = served()
    write_commands = {
        name.upper()
        for name, info in connection.command().items()
        if "write" in {str(flag) for flag in info["flags"]}
    }
    with commands_sent(connection) as during:
        scrape(base)
    assert [c for c in during if c[0] in write_commands] == []


@pytest.mark.parametrize("variable", ["NEWSMON_API_TOKEN", "NEWSMON_VIEW_TOKEN"])
def test_a_short_token_stops_serve_from_starting(tmp_path, start_process, redis_url, variable):
    """A token that can be guessed is worse than none, which at least keeps the board to
    this machine: `newsmon serve` exits 2 naming the variable and how to make a good one."""
    directory = write_config(tmp_path / "config", subscriptions=[HOOK])
    env = {"REDIS_URL": redis_url, variable: "a" * (auth.MIN_TOKEN_CHARS - 1)}
    process = start_process("serve", "--config", str(directory), "--port", "0", env=env)
    assert process.finish() == 2
    said = process.log_path.read_text()
    assert f"{variable} has {auth.MIN_TOKEN_CHARS - 1} characters" in said
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in said
    assert "serve.started" not in said
