"""Trying feeds before and after adding them: `newsmon check --online` says what each feed
answers and leaves no trace; `newsmon poll --once [FEED]` polls now, as the poller does, so
a worker alerts what it found without waiting for the feed's interval."""

from __future__ import annotations

import json

from monitor.core.config import load_config
from tests.helpers import (
    HTML,
    RSS,
    SECRET,
    assert_valid_delivery,
    newsmon,
    polled_before,
    queued_entries,
    run_worker,
    write_config,
)
from tests.stories import (
    ROUND_ONE_LIVEBLOG,
    ROUND_TWO_LIVEBLOG,
    atom,
    json_feed,
    liveblog_page,
    rss,
)


def test_check_online_reports_what_each_feed_answered_and_records_nothing(
    tmp_path, connection, http_server, redis_url
):
    http_server.route("/live.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/wire", (200, {"content-type": "application/atom+xml"}, atom([])))
    http_server.route(
        "/daily.json",
        (200, {"content-type": "application/feed+json"}, json_feed(ROUND_TWO_LIVEBLOG[:1])),
    )
    http_server.route("/old.xml", (308, {"location": "/live.xml"}, b""))
    http_server.route("/page", (200, HTML, b"<!doctype html><html><body>news</body></html>"))
    http_server.route("/blog", (200, HTML, liveblog_page(ROUND_ONE_LIVEBLOG[:3], "graph")))
    http_server.route("/down.xml", (503, {}, b""))
    names = ["live", "wire", "daily", "old", "page", "blog", "down"]
    paths = ["/live.xml", "/wire", "/daily.json", "/old.xml", "/page", "/blog", "/down.xml"]
    feeds = [{"name": n, "url": http_server.url_for(p)} for n, p in zip(names, paths, strict=True)]
    directory = write_config(tmp_path / "config", feeds=feeds)

    result = newsmon("check", "--online", "--config", str(directory), env={"REDIS_URL": redis_url})

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{directory}: OK (7 feeds, 8 topics, 0 subscriptions)",
        "live                 200  RSS        5 items",
        "wire                 200  Atom       0 items",
        "daily                200  JSON Feed  1 item",
        "old                  200  RSS        5 items  moved for good to "
        + http_server.url_for("/live.xml"),
        "page                 200  no feed    not a feed: the server returned an HTML page",
        "blog                 200  live blog  3 items",
        "down                 503  no feed    HTTP 503 Service Unavailable",
        "5 feeds answered with a feed, 2 did not",
    ]
    assert connection.keys("*") == []  # no state, no schedule, no job
    good = write_config(tmp_path / "good", feeds=feeds[:3])
    assert newsmon("check", "--online", "--config", str(good)).returncode == 0


def test_poll_once_polls_the_feed_named_now_and_a_worker_alerts_what_it_found(
    tmp_path, connection, http_server, redis_url
):
    http_server.route("/live.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/wire.xml", (200, RSS, rss(ROUND_TWO_LIVEBLOG[:1], title="Wire")))
    http_server.route("/hook", (200, {}, b""))
    directory = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "live", "url": http_server.url_for("/live.xml"), "interval_seconds": 3600},
            {"name": "wire", "url": http_server.url_for("/wire.xml")},
        ],
        subscriptions=[
            {"id": "all", "url": http_server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
        ],
    )
    config = load_config(directory)
    polled_before(connection, config.feeds)  # their archives read: what comes now is news
    env = {"REDIS_URL": redis_url}

    result = newsmon("poll", "--once", "live", "--config", str(directory), env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    fetched = [
        e for e in map(json.loads, result.stdout.splitlines()) if e["event"] == "feed.fetched"
    ]
    assert [(e["feed"], e["new"], e["next_poll_in"]) for e in fetched] == [("live", 5, 3600)]
    assert [r.path for r in http_server.requests] == ["/live.xml"]
    assert {e.title for e in queued_entries(connection)} == {i.title for i in ROUND_ONE_LIVEBLOG}

    run_worker(config, connection)
    alerted = [assert_valid_delivery(r) for r in http_server.requests if r.path == "/hook"]
    assert {m["data"]["entry"]["title"] for m in alerted} == {i.title for i in ROUND_ONE_LIVEBLOG}

    # Every feed, the one just polled too: --once polls now whatever its next poll.
    every = newsmon("poll", "--once", "--config", str(directory), env=env)
    assert every.returncode == 0, every.stdout + every.stderr
    assert sorted(r.path for r in http_server.requests if r.path != "/hook") == [
        "/live.xml",
        "/live.xml",
        "/wire.xml",
    ]
    assert {e.title for e in queued_entries(connection)} == {ROUND_TWO_LIVEBLOG[0].title}


def test_poll_once_refuses_a_feed_it_does_not_know_before_reaching_redis(tmp_path):
    directory = write_config(tmp_path / "config", feeds=[{"name": "live", "url": "https://e.org/"}])

    unknown = newsmon("poll", "--once", "liev", "--config", str(directory))
    without_once = newsmon("poll", "live", "--config", str(directory))

    assert (unknown.returncode, unknown.stderr) == (
        2,
        f"newsmon: no feed named 'liev' in {directory / 'feeds.toml'}; did you mean 'live'?\n",
    )
    assert (without_once.returncode, without_once.stderr) == (
        2,
        "newsmon: polling one feed is a one-off: `newsmon poll --once live`\n",
    )
