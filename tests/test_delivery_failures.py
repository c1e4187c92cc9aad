"""Deliveries when receivers misbehave: every case against a real local receiver and Redis.

These call the delivery job in-process (as a worker would) and read the retries it
schedules from RQ's scheduled-job registry, so no test waits out a retry schedule.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import structlog
from standardwebhooks import Webhook

from monitor.core import keys, queues
from monitor.core.documents import read_alert
from monitor.core.http import retry_after_seconds
from tests.helpers import SECRET, documents, load, make_alerts, write_config
from workers import jobs, runtime
from workers.delivery.signing import new_secret


def install(
    tmp_path, connection, urls: dict[str, str], settings: str = "", secret: str | list[str] = SECRET
) -> runtime.Runtime:
    config = load(
        write_config(
            tmp_path / "config",
            subscriptions=[
                {"id": sid, "url": url, "topics": ["*"], "secret": secret}
                for sid, url in urls.items()
            ],
            settings="[delivery]\ntimeout_seconds = 1\nretry_schedule_seconds = [0, 60, 600]\n"
            + settings,
        )
    )
    rt = runtime.Runtime.build(config, connection)
    runtime.install(rt)
    return rt


def scheduled(connection) -> list[tuple[float, list, int]]:
    """(seconds from now, alerts, attempt) of each delivery job waiting in RQ's schedule."""
    queue = queues.queue(keys.DELIVERIES_QUEUE, connection)
    registry = queue.scheduled_job_registry
    now = time.time()
    jobs_ = [
        (score - now, queue.fetch_job(job_id.decode()))
        for job_id, score in connection.zrange(registry.key, 0, -1, withscores=True)
    ]
    return sorted(
        ((delay, [read_alert(d) for d in job.args[1]], job.args[2]) for delay, job in jobs_),
        key=lambda j: j[0],
    )


def test_503_schedules_each_failed_message_for_its_next_attempt(tmp_path, connection, http_server):
    http_server.route("/hook", (503, {}, b"busy"))
    install(tmp_path, connection, {"hook": http_server.url_for("/hook")})
    with structlog.testing.capture_logs() as logs:
        result = jobs.deliver_alerts("hook", documents(make_alerts(2)), attempt=1)
    assert result == {"delivered": 0, "retrying": 2, "untried": 0}
    ((delay, alerts, attempt),) = scheduled(connection)
    assert attempt == 2 and len(alerts) == 2
    assert 0 <= delay <= 60  # full jitter: a random wait up to the schedule's 60 s
    assert [e["event"] for e in logs] == ["alert.retry", "alert.retry"]


def test_retry_after_longer_than_the_schedule_wins(tmp_path, connection, http_server):
    http_server.route("/hook", (429, {"retry-after": "300"}, b""))
    install(tmp_path, connection, {"hook": http_server.url_for("/hook")})
    jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1)
    ((delay, _, attempt),) = scheduled(connection)
    assert attempt == 2 and 295 <= delay <= 300


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("999999", 86400.0),
        ("soon", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: now
    ],
)
def test_retry_after_values(value, expected):
    assert retry_after_seconds(value, time.time()) == expected
    in_a_minute = datetime.fromtimestamp(time.time() + 60, UTC).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )
    assert 55 <= retry_after_seconds(in_a_minute, time.time()) <= 60


@pytest.mark.parametrize("status", [400, 401, 404, 301])
def test_other_4xx_and_3xx_fail_at_once(tmp_path, connection, http_server, status):
    http_server.route("/hook", (status, {"location": "http://127.0.0.1:9/x"}, b""))
    rt = install(tmp_path, connection, {"hook": http_server.url_for("/hook")})
    with structlog.testing.capture_logs() as logs:
        jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1)
    assert scheduled(connection) == []
    assert [e["event"] for e in logs] == ["alert.failed"]
    assert rt.dead_letters.list()[0]["reason"] == f"HTTP {status}"
    assert len(http_server.requests) == 1  # a redirect is not followed


def test_410_disables_the_subscription_until_re_enabled(tmp_path, connection, http_server):
    http_server.route("/hook", (410, {}, b"gone"))
    rt = install(
        tmp_path, connection, {"hook": http_server.url_for("/hook")}, settings="max_in_flight = 1\n"
    )
    with structlog.testing.capture_logs() as logs:
        jobs.deliver_alerts("hook", documents(make_alerts(3)), attempt=1)
        jobs.deliver_alerts("hook", documents(make_alerts(2)[1:]), attempt=1)  # later alerts
    assert len(http_server.requests) == 1
    assert "subscription.disabled" in [e["event"] for e in logs]
    assert (
        rt.endpoints.health(rt.subscription("hook")).disabled_reason
        == "the endpoint answered 410 Gone"
    )
    assert len(rt.dead_letters.list("hook")) == 3  # the 410's and the untried; e1 twice -> once
    assert (
        rt.endpoints.enable("hook")
        and rt.endpoints.health(rt.subscription("hook")).disabled_reason is None
    )


def test_a_hanging_endpoint_holds_a_worker_only_for_one_round(tmp_path, connection, http_server):
    release = threading.Event()
    http_server.route("/hang", lambda request: (release.wait(5), (200, {}, b""))[1])
    install(tmp_path, connection, {"hook": http_server.url_for("/hang")})
    started = time.monotonic()
    result = jobs.deliver_alerts("hook", documents(make_alerts(20)), attempt=1)
    took = time.monotonic() - started
    # max_in_flight (4) requests time out together after 1 s; the other 16 are not tried.
    assert result == {"delivered": 0, "retrying": 4, "untried": 16}
    assert took < 2.5
    waiting = scheduled(connection)
    assert sorted((len(a), attempt) for _, a, attempt in waiting) == [(4, 2), (16, 1)]
    # The endpoint is now in its own backoff: the next job is deferred without a request.
    requests_so_far = len(http_server.requests)
    with structlog.testing.capture_logs() as logs:
        assert jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1) == {"deferred": 1}
    assert len(http_server.requests) == requests_so_far
    assert logs[0]["event"] == "delivery.deferred"
    release.set()


def test_a_receiver_that_closes_the_connection_is_retried(tmp_path, connection, private_targets):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.recv(65536)
            client.close()

    threading.Thread(target=hang_up, daemon=True).start()
    install(tmp_path, connection, {"hook": f"http://127.0.0.1:{listener.getsockname()[1]}/"})
    with structlog.testing.capture_logs() as logs:
        jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1)
    listener.close()
    # Which error the client sees depends on how far its request got before the hang-up.
    assert logs[0]["event"] == "alert.retry"
    assert re.search(r"RemoteProtocolError|ReadError|WriteError", logs[0]["reason"])


def test_an_endpoint_failing_too_long_is_disabled(tmp_path, connection, http_server):
    http_server.route("/hook", (500, {}, b""))
    rt = install(
        tmp_path,
        connection,
        {"hook": http_server.url_for("/hook")},
        settings="disable_after_hours = 0.0001\n",
    )  # 0.36 s
    jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1)
    connection.hset(keys.endpoint("hook"), "blocked_until", 0)  # its next try is due now
    time.sleep(0.5)
    with structlog.testing.capture_logs() as logs:
        jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=2)
    disabled = [e for e in logs if e["event"] == "subscription.disabled"]
    assert disabled and disabled[0]["reason"].startswith("failing for")
    assert rt.endpoints.health(rt.subscription("hook")).disabled_reason


def test_every_secret_signs_each_delivery(tmp_path, connection, http_server):
    old, new = SECRET, new_secret()
    http_server.route("/hook", (204, {}, b""))
    install(tmp_path, connection, {"hook": http_server.url_for("/hook")}, secret=[new, old])
    jobs.deliver_alerts("hook", documents(make_alerts(1)), attempt=1)
    (request,) = http_server.requests
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
