"""Config changes without a restart: SIGHUP, or `newsmon reload`, has running pollers and
workers read their config folder again; an invalid folder is refused and they run on."""

from __future__ import annotations

import re
import signal
import socket

import httpx

from monitor.poller.loop import Poller
from tests.helpers import RSS, SECRET, load, newsmon, polled_before, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, rss


def events(process, name: str) -> list[dict]:
    return [e for e in process.events() if e["event"] == name]


def asked(http_server, path: str) -> int:
    return sum(r.path == path for r in http_server.requests)


def test_a_poller_reads_a_new_feed_on_sighup_and_runs_on_when_the_folder_is_invalid(
    tmp_path, http_server, redis_url, start_process
):
    http_server.route("/first.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/second.xml", (200, RSS, rss(ROUND_TWO_LIVEBLOG)))
    first = {"name": "first", "url": http_server.url_for("/first.xml"), "interval_seconds": 1}
    second = {"name": "second", "url": http_server.url_for("/second.xml"), "interval_seconds": 1}
    directory = write_config(tmp_path / "config", feeds=[first])
    poller = start_process("poll", "--config", str(directory), env={"REDIS_URL": redis_url})
    poller.wait_for(lambda: asked(http_server, "/first.xml") >= 1)
    assert asked(http_server, "/second.xml") == 0

    write_config(directory, feeds=[first, second])
    poller.popen.send_signal(signal.SIGHUP)
    poller.wait_for(lambda: asked(http_server, "/second.xml") >= 1)
    [reloaded] = events(poller, "config.reloaded")
    assert reloaded["feeds"] == 2

    (directory / "feeds.toml").write_text('[[feeds]]\nname = "broken"\n')  # no url
    poller.popen.send_signal(signal.SIGHUP)
    poller.wait_for(lambda: events(poller, "config.reload_refused"))
    [refused] = events(poller, "config.reload_refused")
    assert any("feeds.toml" in p and "url" in p for p in refused["problems"])
    before = asked(http_server, "/second.xml")
    poller.wait_for(lambda: asked(http_server, "/second.xml") > before)  # still polling both
    assert poller.stop() == 0


def test_a_worker_alerts_a_subscription_added_once_it_read_its_folder_again(
    tmp_path, connection, http_server, redis_url, start_process
):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:1])))
    http_server.route("/old", (204, {}, b""))
    http_server.route("/new", (204, {}, b""))
    feeds = [{"name": "blog", "url": http_server.url_for("/blog.xml")}]
    old = {"id": "old", "url": http_server.url_for("/old"), "topics": ["*"], "secret": SECRET}
    new = {"id": "new", "url": http_server.url_for("/new"), "topics": ["*"], "secret": SECRET}
    directory = write_config(tmp_path / "config", feeds=feeds, subscriptions=[old])
    config = load(directory)
    polled_before(connection, config.feeds)
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    Poller(config, connection).poll_feeds(config.feeds)
    worker.wait_for(lambda: asked(http_server, "/old") == 1)

    write_config(directory, feeds=feeds, subscriptions=[old, new])
    worker.popen.send_signal(signal.SIGHUP)
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:2])))
    Poller(config, connection).poll_feeds(config.feeds)
    worker.wait_for(lambda: asked(http_server, "/new") == 1 and asked(http_server, "/old") == 2)
    assert events(worker, "config.reloaded")[0]["subscriptions"] == 2
    assert worker.stop() == 0


def test_newsmon_reload_validates_first_then_signals_this_hosts_pollers(
    tmp_path, http_server, redis_url, start_process
):
    http_server.route("/first.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    feeds = [{"name": "first", "url": http_server.url_for("/first.xml")}]
    directory = write_config(tmp_path / "config", feeds=feeds)
    env = {"REDIS_URL": redis_url}
    poller = start_process("poll", "--config", str(directory), env=env)
    poller.wait_for(lambda: events(poller, "feed.backfilled") or events(poller, "feed.fetched"))

    (directory / "feeds.toml").write_text('[[feeds]]\nname = "broken"\n')
    refused = newsmon("reload", "--config", str(directory), env=env)
    assert refused.returncode == 2 and "feeds.toml" in refused.stderr
    assert not events(poller, "config.reload_refused")  # it never reached the poller

    write_config(directory, feeds=feeds)
    done = newsmon("reload", "--config", str(directory), env=env)
    assert done.returncode == 0, done.stderr
    assert f".{poller.popen.pid}: asked to read {directory} again" in done.stdout
    poller.wait_for(lambda: events(poller, "config.reloaded"))
    assert poller.stop() == 0


def test_newsmon_serve_reads_its_folder_again_and_newsmon_reload_finds_it(
    tmp_path, http_server, redis_url, start_process
):
    old = {"id": "old", "url": http_server.url_for("/old"), "topics": ["*"], "secret": SECRET}
    new = {"id": "new", "url": http_server.url_for("/new"), "topics": ["*"], "secret": SECRET}
    directory = write_config(tmp_path / "config", subscriptions=[old])
    env = {"REDIS_URL": redis_url}
    server = start_process("serve", "--port", "0", "--config", str(directory), env=env)
    server.wait_for(lambda: events(server, "serve.started"))
    metrics = f"http://127.0.0.1:{events(server, 'serve.started')[0]['port']}/metrics"

    def subscriptions() -> set[str]:
        text = httpx.get(metrics).text
        return set(re.findall(r'newsmon_dead_letters\{subscription="([^"]+)"\}', text))

    assert subscriptions() == {"old"}
    write_config(directory, subscriptions=[old, new])
    done = newsmon("reload", "--config", str(directory), env=env)
    assert f"serve {socket.gethostname()}.{server.popen.pid}: asked to read" in done.stdout
    server.wait_for(lambda: subscriptions() == {"old", "new"})
    assert events(server, "config.reloaded")[0]["subscriptions"] == 2

    (directory / "subscriptions.toml").write_text('[[subscriptions]]\nid = "broken"\n')
    server.popen.send_signal(signal.SIGHUP)
    server.wait_for(lambda: events(server, "config.reload_refused"))
    assert subscriptions() == {"old", "new"}  # it serves on with the config it had
    assert server.stop() == 0
