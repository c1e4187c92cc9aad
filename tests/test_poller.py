"""The poller against a real local feed server and real Redis."""

from __future__ import annotations

import gzip

import pytest
import structlog
from rq import Queue

from monitor import keys
from monitor.models import Feed
from monitor.parse import ParseError, parse_feed
from monitor.poller import Poller
from tests.conftest import load, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, atom, json_feed, rss

RSS = {"content-type": "application/rss+xml"}


def make_poller(tmp_path, connection, http_server, *paths: str, settings: str = "") -> Poller:
    feeds = [
        {"name": path.strip("/").replace(".", "-"), "url": http_server.url_for(path)}
        for path in paths
    ]
    return Poller(
        load(write_config(tmp_path / "config", feeds=feeds, settings=settings)), connection
    )


def queued_entries(connection) -> list:
    jobs = Queue(keys.ENTRIES_QUEUE, connection=connection).get_jobs()
    return [entry for job in jobs for entry in job.args[0]]


def test_enqueues_only_new_entries_and_uses_conditional_get(tmp_path, connection, http_server):
    def answer(request):
        if request.headers.get("if-none-match") == '"v2"':
            return 304, {}, b""
        body = rss(ROUND_TWO_LIVEBLOG) if answer.round == 2 else rss(ROUND_ONE_LIVEBLOG)
        return 200, {**RSS, "etag": f'"v{answer.round}"'}, body

    answer.round = 1
    http_server.route("/blog.xml", answer)
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    feed = poller.feeds[0]

    assert poller.poll_feed(feed).new_entries == 5
    answer.round = 2
    outcome = poller.poll_feed(feed)
    assert outcome.new_entries == len(ROUND_TWO_LIVEBLOG) - 5
    assert poller.poll_feed(feed).status == "not_modified"

    guids = [e.key for e in queued_entries(connection)]
    assert guids == [i.guid for i in ROUND_TWO_LIVEBLOG]  # each once, in feed order
    sent = [r.headers.get("if-none-match") for r in http_server.requests]
    assert sent == [None, '"v1"', '"v2"']


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((500, {}, b"oops"), "HTTP 500"),
        ((404, {}, b""), "HTTP 404"),
        (
            (200, {"content-type": "text/html"}, b"<!DOCTYPE html><html><body>Hello</body></html>"),
            "HTML page",
        ),
        ((200, RSS, b"\x00\x01garbage that is not xml at all"), "not a feed"),
        ((200, {"content-type": "application/json"}, b'{"hello": "world"}'), "JSON Feed"),
        ((200, RSS, b"x" * 5000), "not a feed"),
        ((200, RSS, rss(ROUND_TWO_LIVEBLOG) * 10), "byte cap"),
    ],
)
def test_broken_feed_fails_with_reason_and_others_go_on(
    tmp_path, connection, http_server, answer, reason
):
    http_server.route("/broken.xml", answer)
    http_server.route("/good.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    poller = make_poller(
        tmp_path,
        connection,
        http_server,
        "/broken.xml",
        "/good.xml",
        settings="[poller]\nmax_body_bytes = 50000\n",
    )
    with structlog.testing.capture_logs() as logs:
        outcomes = {o.feed: o for o in poller.run_once()}
    assert outcomes["broken-xml"].status == "failed"
    assert reason in outcomes["broken-xml"].reason
    assert outcomes["good-xml"].new_entries == 5
    failed = [e for e in logs if e["event"] == "feed.failed"]
    assert len(failed) == 1 and failed[0]["feed"] == "broken-xml" and reason in failed[0]["reason"]
    assert connection.hget(keys.feed_state("broken-xml"), "errors") == b"1"


def test_unreachable_feed_is_a_failure_not_a_crash(tmp_path, connection, http_server):
    poller = make_poller(tmp_path, connection, http_server, "/x.xml")
    outcome = poller.poll_feed(Feed("gone", "http://127.0.0.1:9/feed.xml", 60))
    assert outcome.status == "failed" and "Connect" in outcome.reason


def test_a_due_feed_is_fetched_by_one_poller_only(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    first = make_poller(tmp_path, connection, http_server, "/blog.xml")
    second = make_poller(tmp_path / "b", connection, http_server, "/blog.xml")
    assert len(first.run_once()) == 1
    assert second.run_once() == []  # the lease is held until the interval has passed
    assert len(http_server.requests) == 1


def test_gzip_body_and_formats(tmp_path, connection, http_server):
    http_server.route(
        "/blog.xml",
        (200, {**RSS, "content-encoding": "gzip"}, gzip.compress(rss(ROUND_ONE_LIVEBLOG))),
    )
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    assert poller.poll_feed(poller.feeds[0]).new_entries == 5

    feed = Feed("f", "https://example.org/feed", 60)
    for body in (rss(ROUND_ONE_LIVEBLOG), atom(ROUND_ONE_LIVEBLOG), json_feed(ROUND_ONE_LIVEBLOG)):
        entries = parse_feed(feed, body)
        assert [e.title for e in entries] == [i.title for i in ROUND_ONE_LIVEBLOG]
        assert all(e.published and e.published.tzinfo for e in entries)
    # JSON Feed: "+01:00" is normalised to UTC.
    assert parse_feed(feed, json_feed(ROUND_ONE_LIVEBLOG))[0].published.hour == 9


def test_entry_keys_fall_back_from_guid_to_link_to_content():
    feed = Feed("f", "https://example.org/feed", 60)
    body = (
        b"<rss version='2.0'><channel><title>t</title>"
        b"<item><guid>g-1</guid><title>A</title><link>https://e.org/a</link></item>"
        b"<item><title>B</title><link>https://e.org/b</link></item>"
        b"<item><title>C</title><description>c</description></item>"
        b"</channel></rss>"
    )
    keys_ = [e.key for e in parse_feed(feed, body)]
    assert keys_[0] == "g-1" and keys_[1] == "https://e.org/b" and keys_[2].startswith("sha1:")
    with pytest.raises(ParseError):
        parse_feed(feed, b"<html><head></head><body>nope</body></html>")
