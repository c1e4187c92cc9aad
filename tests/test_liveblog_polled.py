"""A live blog page polled as a feed, end to end: the poller against the suite's local HTTP
server and real Redis, a real RQ worker, a webhook receiver checking the signatures."""

from __future__ import annotations

from dataclasses import replace

import pytest
import structlog
from standardwebhooks import Webhook
from structlog.contextvars import merge_contextvars

from monitor.core.config import ConfigError
from monitor.core.models import FeedKind
from monitor.poller.loop import Poller
from tests.helpers import HTML, SECRET, LocalServer, assert_valid_delivery, load, run_worker
from tests.helpers import write_config as write
from tests.stories import ROUND_ONE_LIVEBLOG, Item, liveblog_page

PARIS, KHARKIV, INFECTIONS, GAS, FILM = ROUND_ONE_LIVEBLOG


class LiveBlog:
    """The page at /live of a local server, as its newsroom republishes it (a new ETag each
    time), answering 304 to a request that names the current one."""

    def __init__(self, server: LocalServer):
        self.body, self.version = b"", 0
        server.route("/live", self.answer)

    def publish(self, items: list[Item], shape: str = "graph") -> None:
        self.body, self.version = liveblog_page(items, shape), self.version + 1

    def answer(self, request):
        etag = f'"v{self.version}"'
        if request.headers.get("if-none-match") == etag:
            return 304, {}, b""
        return 200, {**HTML, "etag": etag}, self.body


def config_of(tmp_path, server: LocalServer, settings: str = "", **feed: object):
    server.route("/hook", (204, {}, b""))
    return load(
        write(
            tmp_path / "config",
            feeds=[{"name": "live", "url": server.url_for("/live"), **feed}],
            subscriptions=[
                {"id": "all", "url": server.url_for("/hook"), "topics": ["*"], "secret": SECRET}
            ],
            settings=settings,
        )
    )


def deliveries(server: LocalServer) -> list[dict]:
    return [
        Webhook(SECRET).verify(r.body, r.headers)
        for r in server.requests
        if r.path == "/hook" and assert_valid_delivery(r)
    ]


def test_new_posts_are_alerted_an_edited_one_updated_and_a_deleted_one_forgotten(
    tmp_path, connection, http_server
):
    blog = LiveBlog(http_server)
    config = config_of(tmp_path, http_server)
    poller = Poller(config, connection)

    # The posts of the first fetch are the live blog's past: recorded, never alerted.
    blog.publish([PARIS, KHARKIV])
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        first = poller.poll_feeds(config.feeds)[0]
    run_worker(config, connection)
    assert (first.status, first.new_entries, deliveries(http_server)) == ("fetched", 2, [])
    assert [e["event"] for e in logs] == ["feed.backfilled", "feed.fetched"]
    assert logs[-1]["entries"] == 2 and logs[-1]["feed"] == "live"
    assert poller.poll_feeds(config.feeds)[0].status == "not_modified"

    # Two posts on top of the page (newest first): one alert each.
    blog.publish([PARIS, KHARKIV, INFECTIONS, GAS])
    with structlog.testing.capture_logs() as logs:
        second = poller.poll_feeds(config.feeds)[0]
    run_worker(config, connection)
    assert (second.new_entries, second.edited_entries) == (2, 0)
    assert [e["title"] for e in logs if e["event"] == "entry.enqueued"] == [
        GAS.title,
        INFECTIONS.title,
    ]
    created = {d["data"]["entry"]["title"]: d for d in deliveries(http_server)}
    assert sorted(created) == sorted([INFECTIONS.title, GAS.title])
    assert created[GAS.title]["data"]["entry"]["link"] == GAS.link

    # One post corrected in place, one taken down: one update, nothing for the deletion.
    corrected = replace(GAS, title=GAS.title + " (corrected)")
    blog.publish([PARIS, INFECTIONS, corrected])
    third = poller.poll_feeds(config.feeds)[0]
    run_worker(config, connection)
    assert (third.status, third.new_entries, third.edited_entries) == ("fetched", 0, 1)
    updated = [d for d in deliveries(http_server) if d["type"] == "alert.updated"]
    assert [d["data"]["entry"]["title"] for d in updated] == [corrected.title]
    assert updated[0]["data"]["story_id"] == created[GAS.title]["data"]["story_id"]
    assert len(deliveries(http_server)) == 3

    sent = [r.headers.get("if-none-match") for r in http_server.requests if r.path == "/live"]
    assert sent == [None, '"v1"', '"v1"', '"v2"']


def test_kind_liveblog_is_read_from_feeds_toml_and_any_other_kind_refused(
    tmp_path, connection, http_server
):
    blog = LiveBlog(http_server)
    blog.publish([PARIS])
    config = config_of(tmp_path, http_server, kind="liveblog")
    assert config.feeds[0].kind is FeedKind.LIVEBLOG
    assert Poller(config, connection).poll_feeds(config.feeds)[0].new_entries == 1
    with pytest.raises(ConfigError, match=r"feeds\[name=\"live\"\]\.kind: unknown kind 'blog'"):
        config_of(tmp_path, http_server, kind="blog")


def test_a_live_blog_page_over_the_size_cap_fails_like_any_feed(tmp_path, connection, http_server):
    blog = LiveBlog(http_server)
    blog.publish(ROUND_ONE_LIVEBLOG * 20)
    config = config_of(tmp_path, http_server, settings="[poller]\nmax_body_bytes = 20000\n")
    outcome = Poller(config, connection).poll_feeds(config.feeds)[0]
    assert outcome.status == "failed" and "20000-byte cap" in outcome.reason


def test_a_live_blog_page_on_a_private_address_is_refused(
    tmp_path, connection, http_server, monkeypatch
):
    blog = LiveBlog(http_server)
    blog.publish([PARIS])
    config = config_of(tmp_path, http_server)
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_TARGETS")  # the guard back on, as newsmon ships
    outcome = Poller(config, connection).poll_feeds(config.feeds)[0]
    assert outcome.status == "failed" and "non-public address" in outcome.reason
    assert [r.path for r in http_server.requests] == []
