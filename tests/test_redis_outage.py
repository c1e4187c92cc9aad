"""Redis killed and restarted under a running poller and worker: both wait it out, say so once,
write nothing but JSON lines, and scheduled work moves again within seconds."""

from __future__ import annotations

import json
import time

from monitor.ops.redis_server import EmbeddedRedis, connect
from tests.helpers import SECRET, news_after_the_first_poll, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, rss

RSS = {"content-type": "application/rss+xml"}
RECOVERY_SECONDS = 10


def test_poller_and_worker_ride_out_a_redis_restart(tmp_path, http_server, start_process):
    answers: list[int] = []

    def first_busy(request):
        answers.append(503 if not answers else 200)
        return answers[-1], {"retry-after": "4"}, b""

    http_server.route("/blog.xml", news_after_the_first_poll(rss(ROUND_ONE_LIVEBLOG[:1])))
    http_server.route("/hook", first_busy)
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml"), "interval_seconds": 1}],
        subscriptions=[
            {"id": "all", "url": http_server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
        ],
        # Retry-After puts the retry in the middle of the outage: it must move once Redis is back.
        settings="[delivery]\nretry_schedule_seconds = [0, 1]\n",
    )
    server = EmbeddedRedis(tmp_path / "redis")
    env = {"REDIS_URL": server.start()}
    worker = start_process("worker", "--config", str(directory), env=env)
    poller = start_process("poll", "--config", str(directory), env=env)
    worker.wait_for(lambda: answers == [503])
    time.sleep(1.5)  # AOF is written every second: let the scheduled retry reach the disk
    server.kill()
    time.sleep(5)
    assert answers == [503]
    server.start()
    restarted = time.monotonic()
    worker.wait_for(lambda: answers == [503, 200], timeout=RECOVERY_SECONDS + 5)
    assert time.monotonic() - restarted < RECOVERY_SECONDS
    poller.wait_for(lambda: "redis.recovered" in [e["event"] for e in poller.events()])

    for process in (worker, poller):
        assert process.popen.poll() is None, "a process exited during the outage"
        assert process.stop() == 0
        lines = process.log_path.read_text().splitlines()
        events = [json.loads(line)["event"] for line in lines]  # each line one JSON object
        assert events.count("redis.unavailable") == 1
        assert events.count("redis.recovered") == 1
    assert connect(env["REDIS_URL"]).ping()
    server.stop()
