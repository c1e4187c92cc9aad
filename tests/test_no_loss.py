"""At-least-once from the poller's enqueue to the receiver's 2xx, whatever process dies when.

Real `newsmon worker` processes are killed (SIGKILL, after SIGSTOP to hold them at the
moment chosen) right after they take a job, in the middle of dedupe and classify, and in the
middle of delivery; new workers must then deliver every expected webhook-id.
"""

from __future__ import annotations

import signal
import time

import pytest
from standardwebhooks import Webhook

from monitor.core import keys
from monitor.core.models import Alert, Entry
from monitor.poller.loop import Poller
from tests.helpers import SECRET, load, polled_before, write_config
from tests.stories import rss, unrelated_items

RSS = {"content-type": "application/rss+xml"}
ITEMS = unrelated_items(60, prefix="loss")  # two slices of a job: one dies in the middle


def hooks(http_server) -> list:
    return [r for r in http_server.requests if r.path == "/hook"]


def expected_ids() -> set[str]:
    return {Alert.make_id(Entry.make_id("blog", item.guid), "all") for item in ITEMS}


def events_of(processes, name: str) -> list[dict]:
    return [e for p in processes for e in p.events() if e["event"] == name]


def kill(processes) -> None:
    """Freeze every worker first, so none moves on while the others are being killed."""
    for process in processes:
        process.popen.send_signal(signal.SIGSTOP)
    for process in processes:
        process.popen.send_signal(signal.SIGKILL)
        process.finish()


@pytest.mark.parametrize("moment", ["after_pop", "mid_dedupe", "mid_delivery"])
def test_every_alert_arrives_though_the_workers_die(
    moment, tmp_path, connection, http_server, redis_url, start_process
):
    def slow_ok(request):
        time.sleep(0.05)
        return 200, {}, b""

    http_server.route("/blog.xml", (200, RSS, rss(ITEMS)))
    http_server.route("/hook", slow_ok)
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}],
        subscriptions=[
            {"id": "all", "url": http_server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
        ],
        settings="[delivery]\nmax_in_flight = 1\n",
    )
    config = load(directory)
    env = {"REDIS_URL": redis_url}
    first = [start_process("worker", "--config", str(directory), env=env) for _ in range(2)]
    for worker in first:
        worker.wait_for(lambda w=worker: events_of([w], "worker.started"))

    if moment == "after_pop":
        for worker in first:
            worker.popen.send_signal(signal.SIGSTOP)
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    if moment == "after_pop":
        time.sleep(0.5)
    elif moment == "mid_dedupe":
        first[0].wait_for(lambda: events_of(first, "entry.classified"))
    else:
        first[0].wait_for(lambda: hooks(http_server))
    kill(first)
    delivered_before = {r.headers["webhook-id"] for r in hooks(http_server)}
    assert delivered_before < expected_ids()

    second = [start_process("worker", "--config", str(directory), env=env) for _ in range(2)]
    second[0].wait_for(
        lambda: {r.headers["webhook-id"] for r in hooks(http_server)} >= expected_ids(),
        timeout=60,
    )
    for request in hooks(http_server):
        Webhook(SECRET).verify(request.body, request.headers)
    assert {r.headers["webhook-id"] for r in hooks(http_server)} == expected_ids()
    if moment != "after_pop":  # a frozen worker may or may not have claimed the job by then
        assert sum(e["released_jobs"] for e in events_of(second, "worker.started")) >= 1
    for worker in second:
        assert worker.stop() == 0
    assert connection.llen(keys.ENTRIES_QUEUE.join(("rq:queue:", ""))) == 0
