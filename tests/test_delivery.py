"""Delivery through a real `newsmon worker` process: retries, Retry-After, permanent failures."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

from standardwebhooks import Webhook

from monitor.poller.loop import Poller
from tests.helpers import SECRET, load, make_alerts, polled_before, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, rss
from workers import runtime
from workers.delivery.deadletters import DeadLetters
from workers.delivery.schedule import schedule_deliveries

RSS = {"content-type": "application/rss+xml"}
TIMEOUT_SECONDS = 2
HANG_SECONDS = 4


def setup(tmp_path, connection, http_server, answer, items=3, schedule="[0, 1, 1]", settings=""):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:items])))
    http_server.route("/hook", answer)
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}],
        subscriptions=[
            {"id": "all", "url": http_server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
        ],
        settings=f"[delivery]\ntimeout_seconds = 2\nretry_schedule_seconds = {schedule}\n"
        + settings,
    )
    config = load(directory)
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds([config.feeds[0]])[0]
    return directory


def hook_requests(http_server):
    return [r for r in http_server.requests if r.path == "/hook"]


def test_unavailable_receiver_gets_every_alert_after_retries(
    tmp_path, connection, http_server, redis_url, start_process
):
    def answer(request):
        seen = sum(
            r.headers["webhook-id"] == request.headers["webhook-id"]
            for r in hook_requests(http_server)
        )
        return (503, {}, b"busy") if seen <= 2 else (200, {}, b"ok")

    directory = setup(tmp_path, connection, http_server, answer)
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    worker.wait_for(lambda: sum(e["event"] == "alert.delivered" for e in worker.events()) == 3)
    assert worker.stop() == 0

    by_id: dict[str, list] = {}
    for request in hook_requests(http_server):
        Webhook(SECRET).verify(request.body, request.headers)
        by_id.setdefault(request.headers["webhook-id"], []).append(request)
    assert len(by_id) == 3 and all(len(attempts) == 3 for attempts in by_id.values())
    for attempts in by_id.values():  # same message, same body; a new timestamp per attempt
        assert len({a.body for a in attempts}) == 1
        stamps = [int(a.headers["webhook-timestamp"]) for a in attempts]
        assert stamps[2] > stamps[0]
    retries = [e for e in worker.events() if e["event"] == "alert.retry"]
    assert len(retries) == 6 and {e["reason"] for e in retries} == {"HTTP 503"}
    assert all(e["alert_id"] in by_id and e["subscription"] == "all" for e in retries)


def test_retry_after_is_honoured(tmp_path, connection, http_server, redis_url, start_process):
    def answer(request):
        first = len(hook_requests(http_server)) == 1
        return (429, {"retry-after": "3"}, b"") if first else (200, {}, b"")

    directory = setup(tmp_path, connection, http_server, answer, items=1)
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    worker.wait_for(lambda: any(e["event"] == "alert.delivered" for e in worker.events()))
    worker.stop()
    first, second = (int(r.headers["webhook-timestamp"]) for r in hook_requests(http_server)[:2])
    assert second - first >= 3  # the schedule said 1 s; the receiver asked for 3


def test_client_error_is_not_retried_and_is_dead_lettered(
    tmp_path, connection, http_server, redis_url, start_process
):
    directory = setup(tmp_path, connection, http_server, (400, {}, b"bad request"))
    worker = start_process(
        "worker", "--config", str(directory), "--burst", env={"REDIS_URL": redis_url}
    )
    assert worker.finish() == 0
    assert len(hook_requests(http_server)) == 3
    dead = DeadLetters(connection, 3600).list()
    assert len(dead) == 3 and {d["reason"] for d in dead} == {"HTTP 400"}
    assert sum(e["event"] == "alert.failed" for e in worker.events()) == 3


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_worker_killed_mid_batch_loses_no_alert(
    tmp_path, connection, http_server, redis_url, start_process
):
    def slow_ok(request):
        time.sleep(0.2)
        return 200, {}, b""

    directory = setup(
        tmp_path, connection, http_server, slow_ok, items=5, settings="max_in_flight = 1\n"
    )
    env = {"REDIS_URL": redis_url}
    first = start_process("worker", "--config", str(directory), env=env)
    first.wait_for(lambda: len(hook_requests(http_server)) >= 2)
    assert children(first.popen.pid) == []  # the scheduler is a thread: nothing to outlive it
    first.popen.send_signal(signal.SIGKILL)
    first.finish()
    expected = {e["alert_id"] for e in first.events() if e["event"] == "alert.enqueued"}
    assert len(expected) == 5
    assert len({r.headers["webhook-id"] for r in hook_requests(http_server)}) < 5

    second = start_process("worker", "--config", str(directory), env=env)
    second.wait_for(
        lambda: {r.headers["webhook-id"] for r in hook_requests(http_server)} == expected
    )
    assert second.stop() == 0
    started = next(e for e in second.events() if e["event"] == "worker.started")
    assert started["released_jobs"] == 1


def test_dead_letters_are_listed_and_replayed_under_the_same_id(
    tmp_path, connection, http_server, redis_url, start_process
):
    answers = {"status": 400}
    directory = setup(
        tmp_path, connection, http_server, lambda request: (answers["status"], {}, b"")
    )
    env = {"REDIS_URL": redis_url}
    start_process("worker", "--config", str(directory), "--burst", env=env).finish()
    failed_ids = {r.headers["webhook-id"] for r in hook_requests(http_server)}

    listing = start_process("deliveries", "dead", "--config", str(directory), "--json", env=env)
    assert listing.finish() == 0
    dead = [json.loads(line) for line in listing.log_path.read_text().splitlines()]
    assert {d["alert_id"] for d in dead} == failed_ids and len(dead) == 3

    answers["status"] = 200
    replay = start_process(
        "deliveries",
        "replay",
        "--config",
        str(directory),
        "--subscription",
        "all",
        "--since",
        "1h",
        env=env,
    )
    assert replay.finish() == 0 and "replaying 3 alerts" in replay.log_path.read_text()
    http_server.requests.clear()
    start_process("worker", "--config", str(directory), "--burst", env=env).finish()
    assert {r.headers["webhook-id"] for r in hook_requests(http_server)} == failed_ids
    assert DeadLetters(connection, 3600).list() == []


def test_a_hanging_endpoint_does_not_hold_up_a_healthy_one(
    tmp_path, connection, http_server, redis_url, start_process
):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_TWO_LIVEBLOG)))
    http_server.route("/fast", (204, {}, b""))
    http_server.route("/hang", lambda request: (time.sleep(3), (200, {}, b""))[1])
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}],
        subscriptions=[
            {"id": sid, "url": http_server.url_for(f"/{sid}"), "topics": ["*"], "secret": SECRET}
            for sid in ("hang", "fast")
        ],
        settings="[delivery]\ntimeout_seconds = 1\nmax_in_flight = 2\n",
    )
    config = load(directory)
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds([config.feeds[0]])[0]
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    fast = lambda: sum(r.path == "/fast" for r in http_server.requests)  # noqa: E731
    # Timed from the first delivery: a worker's start (its encoder's first load too) on a
    # busy machine is no part of what the hanging endpoint costs the healthy one.
    worker.wait_for(lambda: fast() >= 1)
    started = time.monotonic()
    worker.wait_for(lambda: fast() == 7)
    took = time.monotonic() - started
    worker.stop()
    # Seven stories: the healthy endpoint got all of them while the hanging one cost at most
    # one round of timeouts; its backlog waits in its own schedule.
    assert took < 4
    assert sum(r.path == "/hang" for r in http_server.requests) <= 2


def test_a_hanging_endpoint_holds_one_worker_and_delays_no_one_else(
    tmp_path, connection, http_server, redis_url, start_process
):
    in_flight = {"now": 0, "most": 0}
    lock = threading.Lock()

    def hang(request):
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
        time.sleep(HANG_SECONDS)  # past the delivery timeout: the worker gives up first
        with lock:
            in_flight["now"] -= 1
        return 200, {}, b""

    http_server.route("/fast", (200, {}, b""))
    http_server.route("/hang", hang)
    directory = write_config(
        tmp_path / "config",
        subscriptions=[
            {"id": sid, "url": http_server.url_for(f"/{sid}"), "topics": ["*"], "secret": SECRET}
            for sid in ("fast", "hang")
        ],
        settings=f"[delivery]\ntimeout_seconds = {TIMEOUT_SECONDS}\nmax_in_flight = 1\n",
    )
    rt = runtime.Runtime.build(load(directory), connection)
    env = {"REDIS_URL": redis_url}
    workers = [start_process("worker", "--config", str(directory), env=env) for _ in range(2)]
    for worker in workers:
        worker.wait_for(lambda w=worker: "worker.started" in [e["event"] for e in w.events()])
    for round_ in range(10):  # each round: one job per endpoint, as a slice of entries makes
        alerts = {sid: make_alerts(1, sid, offset=round_) for sid in ("hang", "fast")}
        schedule_deliveries(rt.connection, rt.config.settings, alerts, attempt=1, delay_seconds=0)
        time.sleep(0.1)
    fast = lambda: [r for r in http_server.requests if r.path == "/fast"]  # noqa: E731
    workers[0].wait_for(lambda: len(fast()) == 10)
    first_hang = next(r for r in http_server.requests if r.path == "/hang")
    # Every other subscriber's alert arrived before the hanging endpoint's first timeout,
    # and the endpoint never had more requests open than its limit, across both workers.
    assert max(r.received for r in fast()) < first_hang.received + TIMEOUT_SECONDS
    assert in_flight["most"] == 1
    for worker in workers:
        assert worker.stop() == 0
