"""`newsmon run` as an operator runs it: embedded Redis, poller and workers, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from monitor.core.models import Entry
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.ops.redis_server import answers as redis_answers
from monitor.poller.loop import Poller
from tests.helpers import RSS, load, polled_before, run_config
from tests.stories import ROUND_ONE_LIVEBLOG, rss, unrelated_items


def without_redis_url() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL"}


def test_run_delivers_and_stops_cleanly_on_sigterm(
    tmp_path, http_server, start_process, monkeypatch
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    run = start_process("run", "--config", str(directory), "--workers", "2")
    hooks = lambda: [r for r in http_server.requests if r.path == "/hook"]  # noqa: E731
    run.wait_for(lambda: len(hooks()) == len(ROUND_ONE_LIVEBLOG))
    run.wait_for(
        lambda: (
            sum(
                e["event"] == "feed.not_modified" or e["event"] == "feed.fetched"
                for e in run.events()
            )
            >= 2
        )
    )  # the 1 s interval: polled again
    assert run.stop() == 0
    events = [e["event"] for e in run.events()]
    for expected in (
        "redis.started",
        "process.started",
        "feed.fetched",
        "entry.enqueued",
        "entry.classified",
        "alert.enqueued",
        "alert.delivered",
        "run.stopped",
    ):
        assert expected in events
    assert events.index("redis.stopped") > max(
        i for i, e in enumerate(events) if e == "worker.stopped"
    )
    assert len(hooks()) == len(ROUND_ONE_LIVEBLOG)  # the second poll found nothing new
    assert (tmp_path / "data" / "redis").is_dir()
    started = next(e for e in run.events() if e["event"] == "redis.started")
    assert started["server"].endswith("/redis-server") and started["version"][0].isdigit()


def test_second_run_on_the_same_data_is_refused_clearly(
    tmp_path, http_server, start_process, monkeypatch
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    first = start_process("run", "--config", str(directory), "--workers", "1")
    first.wait_for(lambda: "redis.started" in [e["event"] for e in first.events()])
    second = start_process("run", "--config", str(directory), "--workers", "1")
    assert second.finish() == 1
    (failure,) = [e for e in second.events() if e["event"] == "redis.failed"]
    assert "another newsmon is running" in failure["reason"]
    assert first.stop() == 0


def test_work_queued_before_a_restart_is_done_after_it(
    tmp_path, http_server, start_process, monkeypatch
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    config = load(directory)
    # Entries are queued, then Redis goes down before any worker has seen them.
    server = EmbeddedRedis(config.settings.data_dir / "redis")
    connection = connect(server.start())
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds([config.feeds[0]])[0]
    connection.close()
    server.kill()  # as abrupt as a power cut: AOF (fsync every second) must hold the jobs

    http_server.requests.clear()
    http_server.route("/blog.xml", (500, {}, b""))  # so the alerts can only come from the queue
    run = start_process("run", "--config", str(directory), "--workers", "1")
    run.wait_for(
        lambda: sum(r.path == "/hook" for r in http_server.requests) == len(ROUND_ONE_LIVEBLOG)
    )
    run.wait_for(lambda: "feed.failed" in [e["event"] for e in run.events()])
    assert run.stop() == 0


def test_a_restarted_run_alerts_nothing_twice(tmp_path, http_server, start_process, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    hooks = lambda: [r for r in http_server.requests if r.path == "/hook"]  # noqa: E731
    first = start_process("run", "--config", str(directory), "--workers", "1")
    first.wait_for(lambda: len(hooks()) == len(ROUND_ONE_LIVEBLOG))
    assert first.stop() == 0
    second = start_process("run", "--config", str(directory), "--workers", "1")
    second.wait_for(lambda: sum(e["event"] == "feed.fetched" for e in second.events()) >= 1)
    second.wait_for(lambda: "worker.started" in [e["event"] for e in second.events()])
    assert second.stop() == 0
    fetched = next(e for e in second.events() if e["event"] == "feed.fetched")
    assert fetched["new"] == 0
    assert len(hooks()) == len(ROUND_ONE_LIVEBLOG)


def test_a_killed_run_leaves_no_process_behind(tmp_path, http_server, start_process, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    run = start_process("run", "--config", str(directory), "--workers", "1")
    run.wait_for(lambda: "worker.started" in [e["event"] for e in run.events()])
    children = [e["pid"] for e in run.events() if e["event"] == "process.started"]
    run.popen.send_signal(signal.SIGKILL)
    run.finish()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in children) or _answers(load(directory)):
        assert time.monotonic() < deadline, "children of a killed run are still running"
        time.sleep(0.1)


def test_a_crashed_embedded_redis_is_restarted_and_nothing_else_is(
    tmp_path, http_server, start_process, monkeypatch
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    directory = run_config(tmp_path, http_server)
    hooks = lambda: [r for r in http_server.requests if r.path == "/hook"]  # noqa: E731
    run = start_process("run", "--config", str(directory), "--workers", "1")
    run.wait_for(lambda: len(hooks()) == len(ROUND_ONE_LIVEBLOG))
    redis_pid = next(e["pid"] for e in run.events() if e["event"] == "redis.started")
    os.kill(redis_pid, signal.SIGKILL)
    run.wait_for(lambda: sum(e["event"] == "redis.started" for e in run.events()) == 2)
    later = unrelated_items(3, prefix="after-restart")
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG + later)))
    run.wait_for(
        lambda: (
            {json.loads(r.body)["data"]["entry"]["id"] for r in hooks()}
            >= {Entry.make_id("blog", item.guid) for item in later}
        ),
        timeout=60,
    )
    events = [e["event"] for e in run.events()]
    assert "process.exited" not in events  # poller and worker waited for Redis
    assert "redis.unavailable" in events and "redis.recovered" in events
    assert run.stop() == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _answers(config) -> bool:
    server = EmbeddedRedis(config.settings.data_dir / "redis")
    return server.socket.exists() and redis_answers(server.url)
