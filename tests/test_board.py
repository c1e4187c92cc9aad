"""The live board over real HTTP: what it shows, escaped; who may see it; the figures it
reads (the latest stories, each subscription's last hour). The browser tests are in
test_board_browser.py."""

from __future__ import annotations

import time
from html.parser import HTMLParser

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core import counters, keys
from monitor.core.models import Entry
from monitor.ops import board_access, board_render, stats
from monitor.ops.auth import FailureThrottle
from monitor.ops.serve import Reloadable, bound_port, make_server, start, stop_server
from tests.helpers import SECRET, load, own_address, write_config
from workers.pipeline.stories import Stories

VIEW_TOKEN = "view-secret-0123456789-0123456789"
API_TOKEN = "api-secret-0123456789-0123456789"
HOOK = {"id": "hook", "url": "https://hooks.example/in", "topics": ["*"], "secret": SECRET}
FEED = {"name": "wire", "url": "https://wire.example/rss"}
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">Talks resume'
# Every route of the board, each answering only whom the board lets look.
PROTECTED = (
    "/",
    "/board/live",
    "/board/data.json",
    "/board/story/st_a",
    "/board/subscription/hook",
    "/board/board.js",
)


def report(entry_id: str, title: str, link: str, topics: tuple[str, ...]) -> Entry:
    """An entry that starts a story of its own."""
    return Entry(
        id=entry_id,
        feed_name="wire",
        feed_url=FEED["url"],
        key=entry_id,
        title=title,
        link=link,
        summary="",
        story_id=f"st_{entry_id}",
        topics=topics,
    )


def record(connection, entry_id: str, title: str, link: str, topics: tuple[str, ...]) -> None:
    with connection.pipeline() as pipe:
        Stories(connection, 3600).add(pipe, report(entry_id, title, link, topics))
        pipe.execute()


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path / "config", feeds=[FEED], subscriptions=[HOOK]))


class Elements(HTMLParser):
    """The tags, attributes and text of an HTML fragment."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def parsed(fragment: str) -> Elements:
    elements = Elements()
    elements.feed(fragment)
    elements.close()
    return elements


def test_the_page_shows_stories_feeds_subscriptions_and_queues(connection, config, serve_url):
    record(connection, "a", "Envoys meet in Paris", "https://wire.example/a", ("diplomacy",))
    record(connection, "b", HOSTILE, "javascript:window.pwned=3", ("frontline",))
    counters.record(connection, {"alerts_delivered": 3, "alerts_retried": 1}, "hook")
    base = serve_url(config)

    page = httpx.get(f"{base}/")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    assert '<a href="https://wire.example/a"' in html and "Envoys meet in Paris" in html
    assert '<a href="/board/story/st_a">Envoys meet in Paris</a>' in html
    # The hostile headline is text, and its javascript: link is not a link.
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "<script>window" not in html and "<img" not in html and "javascript:" not in html
    # Newest first: "b" was recorded last.
    assert html.index("Talks resume") < html.index("Envoys meet in Paris")
    assert '<option value="diplomacy">' in html
    assert 'data-label="Feed">wire</td>' in html and "never fetched" in html
    assert '<a href="/board/subscription/hook">hook</a>' in html
    assert "newsmon-entries" in html and "newsmon-deliveries" in html

    assets = (
        ("board.js", "text/javascript"),
        ("board.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    )
    for asset, media_type in assets:
        answer = httpx.get(f"{base}/board/{asset}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media_type)


def test_the_data_follows_the_topic_filter(connection, config, serve_url):
    record(connection, "a", "Envoys meet in Paris", "https://wire.example/a", ("diplomacy",))
    record(connection, "b", "Drones downed near Kyiv", "https://wire.example/b", ("frontline",))
    counters.record(connection, {"alerts_delivered": 3, "alerts_dead": 1}, "hook")
    base = serve_url(config)

    everything = httpx.get(f"{base}/board/data.json").json()
    assert [s["title"] for s in everything["stories"]] == [
        "Drones downed near Kyiv",
        "Envoys meet in Paris",
    ]
    assert everything["stories"][0]["outlets"] == ["wire"]
    (subscription,) = everything["subscriptions"]
    assert subscription["id"] == "hook" and subscription["status"] == "ok"
    assert subscription["last_hour"] == {"delivered": 3, "retried": 0, "failed": 0, "dead": 1}
    assert [f["feed"] for f in everything["feeds"]] == ["wire"]
    assert set(everything["queues"]) == {keys.ENTRIES_QUEUE, keys.DELIVERIES_QUEUE}

    diplomacy = httpx.get(f"{base}/board/data.json", params={"topic": "diplomacy"}).json()
    assert [s["title"] for s in diplomacy["stories"]] == ["Envoys meet in Paris"]
    page = httpx.get(f"{base}/", params={"topic": "diplomacy"}).text
    assert "Envoys meet in Paris" in page and "Drones downed" not in page
    assert '<option value="diplomacy" selected>' in page
    unknown = httpx.get(f"{base}/board/data.json", params={"topic": "sport"})
    assert unknown.status_code == 400 and "no topic 'sport'" in unknown.text


def test_the_latest_stories_are_read_a_page_at_a_time(connection):
    stories = Stories(connection, 3600)
    with connection.pipeline() as pipe:
        for i in range(30):
            topics = ("health",) if i % 10 == 0 else ("culture",)
            stories.add(pipe, report(f"e{i}", f"Story {i}", "", topics), now=1000.0 + i)
        pipe.execute()
    assert [s.title for s in stories.latest(3)] == ["Story 29", "Story 28", "Story 27"]
    # Three health stories, scattered: found across pages, and no more than asked for.
    assert [s.title for s in stories.latest(2, "health")] == ["Story 20", "Story 10"]
    assert [s.title for s in stories.latest(5, "health")] == ["Story 20", "Story 10", "Story 0"]


def test_last_hour_counts_leave_older_minutes_out(connection):
    counters.record(connection, {"alerts_delivered": 2, "alerts_failed": 1}, "hook")
    counters.record(connection, {"alerts_delivered": 5}, "other")
    old_minute = int(time.time() // 60) - stats.LAST_HOUR_MINUTES
    connection.hset(keys.stats_minute(old_minute), counters.subscription_field("hook", "dead"), 7)
    assert stats.subscriptions_last_hour(connection, ["hook", "other", "quiet"]) == {
        "hook": {"delivered": 2, "retried": 0, "failed": 1, "dead": 0},
        "other": {"delivered": 5, "retried": 0, "failed": 0, "dead": 0},
        "quiet": {"delivered": 0, "retried": 0, "failed": 0, "dead": 0},
    }


def test_tokens_open_the_board_and_nothing_else_does(connection, config, serve_url, monkeypatch):
    monkeypatch.setenv("NEWSMON_VIEW_TOKEN", VIEW_TOKEN)
    monkeypatch.setenv("NEWSMON_API_TOKEN", API_TOKEN)
    base = serve_url(config)

    for path in PROTECTED:
        refused = httpx.get(f"{base}{path}")
        assert refused.status_code == 401, path
        assert "NEWSMON_VIEW_TOKEN" in refused.text
    wrong = {"authorization": f"Bearer {VIEW_TOKEN[:-1]}X"}
    assert httpx.get(f"{base}/board/data.json", headers=wrong).status_code == 401
    for token in (VIEW_TOKEN, API_TOKEN):
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/board/data.json", headers=bearer).status_code == 200
    assert httpx.get(f"{base}/?token=guess").status_code == 401

    # A token in the address, once: the page, and a cookie that stands for it after that.
    opened = httpx.get(f"{base}/?token={VIEW_TOKEN}")
    assert opened.status_code == 200 and '<h1><a href="/">newsmon</a></h1>' in opened.text
    set_cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    cookie = opened.cookies[board_access.COOKIE]
    assert VIEW_TOKEN not in cookie
    for path in PROTECTED:
        kept = httpx.get(f"{base}{path}", cookies={board_access.COOKIE: cookie})
        assert kept.status_code in (200, 404), path  # 404: no story of that id
    forged_cookie = {board_access.COOKIE: cookie[:-1] + "0"}
    assert httpx.get(f"{base}/", cookies=forged_cookie).status_code == 401
    # The cookie opens the board, not the API: it is no bearer token.
    forged = {"authorization": f"Bearer {cookie}"}
    assert httpx.get(f"{base}/board/data.json", headers=forged).status_code == 401


def test_without_a_token_only_loopback_may_look(connection, config):
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    server = make_server("0.0.0.0", 0, Reloadable(connection, config))
    thread = start(server)
    try:
        port = bound_port(server)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        refused = httpx.get(f"http://{address}:{port}/board/data.json")
        assert refused.status_code == 403 and "set NEWSMON_VIEW_TOKEN" in refused.text
        assert httpx.get(f"http://{address}:{port}/healthz").status_code == 503  # not the board's
    finally:
        stop_server(server, thread)


def test_a_forwarded_for_header_makes_no_client_loopback(config, serve_url, monkeypatch):
    """With FORWARDED_ALLOW_IPS='*' uvicorn believes X-Forwarded-For from anyone: the board
    decides from the socket's peer, and a request a proxy says it relayed is not this
    machine's (a proxy on this machine relays the world from 127.0.0.1)."""
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    base = serve_url(config)
    assert httpx.get(f"{base}/board/data.json").status_code == 200
    for header in ("x-forwarded-for", "forwarded", "x-real-ip"):
        for claimed in ("127.0.0.1", "203.0.113.9"):
            refused = httpx.get(f"{base}/board/data.json", headers={header: claimed})
            assert refused.status_code == 403, (header, claimed)
            assert "set NEWSMON_VIEW_TOKEN" in refused.text


def test_another_host_claiming_loopback_is_refused(connection, config, monkeypatch):
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    server = make_server("0.0.0.0", 0, Reloadable(connection, config))
    thread = start(server)
    try:
        url = f"http://{address}:{bound_port(server)}/board/data.json"
        claims = {"x-forwarded-for": "127.0.0.1", "host": "localhost"}
        assert httpx.get(url, headers=claims).status_code == 403
    finally:
        stop_server(server, thread)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io"]
)
def test_without_a_token_a_host_of_another_name_is_a_400(config, serve_url, host):
    """DNS rebinding: a page of evil.example points its name at 127.0.0.1, and the browser on
    this machine fetches the board for its script, sending Host: evil.example."""
    base = serve_url(config)
    for path in PROTECTED:
        refused = httpx.get(f"{base}{path}", headers={"host": host})
        assert refused.status_code == 400, path
        assert f"Host {host!r} is not this machine" in refused.text
        assert "localhost, 127.0.0.1 or [::1]" in refused.text
    port = base.rpartition(":")[2]
    for name in (f"localhost:{port}", f"LOCALHOST:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert httpx.get(f"{base}/board/data.json", headers={"host": name}).status_code == 200
    assert httpx.get(f"{base}/healthz", headers={"host": host}).status_code == 503  # not gated


def test_with_a_token_the_board_answers_any_host(config, serve_url, monkeypatch):
    monkeypatch.setenv("NEWSMON_VIEW_TOKEN", VIEW_TOKEN)
    base = serve_url(config)
    bearer = {"authorization": f"Bearer {VIEW_TOKEN}", "host": "newsmon.example"}
    assert httpx.get(f"{base}/board/data.json", headers=bearer).status_code == 200


def test_wrong_tokens_are_throttled_per_client(config, serve_url, monkeypatch):
    """After FailureThrottle's failures, a client is answered 429 with Retry-After, even
    with the right token; another address is still heard. The API and the board share it."""
    monkeypatch.setenv("NEWSMON_VIEW_TOKEN", VIEW_TOKEN)
    base = serve_url(config)
    right = {"authorization": f"Bearer {VIEW_TOKEN}"}
    for _ in range(FailureThrottle().failures):
        assert httpx.get(f"{base}/board/data.json").status_code == 401
    for headers in ({}, right):
        throttled = httpx.get(f"{base}/board/data.json", headers=headers)
        assert throttled.status_code == 429
        assert 0 < int(throttled.headers["retry-after"]) <= 60
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as elsewhere:
        assert elsewhere.get(f"{base}/board/data.json", headers=right).status_code == 200


LINKS = [
    "https://a.example/x",
    "HTTP://A.example",
    "http://[",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
]
story_texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)


@settings(max_examples=200, deadline=None)
@given(
    title=story_texts,
    link=st.one_of(story_texts, st.sampled_from(LINKS)),
    outlets=st.lists(story_texts, max_size=3),
    topics=st.lists(story_texts, max_size=3),
)
def test_whatever_a_feed_sends_renders_as_text(title, link, outlets, topics):
    story = {
        "id": "st_1",
        "title": title,
        "link": link,
        "outlets": outlets,
        "topics": topics,
        "first_seen": 1000.0,
        "last_seen": 1060.0,
    }
    row = parsed(board_render.render_story(story, now=1000.0))
    assert {tag for tag, _ in row.tags} <= {"tr", "td", "a", "span"}
    hrefs = [attributes["href"] for tag, attributes in row.tags if tag == "a"]
    assert hrefs[0] == "/board/story/st_1"  # the headline opens the story's page
    assert hrefs[1:] in ([], [link])  # and the article, when its link is http(s)
    assert hrefs[1:] or not link.lower().startswith(("http://", "https://"))
    for _, attributes in row.tags:
        assert all(not name.startswith("on") for name in attributes)
    assert (title or "(no headline)") in row.text


@settings(max_examples=100, deadline=None)
@given(name=story_texts, error=story_texts, reason=story_texts)
def test_whatever_a_server_answers_renders_as_text(name, error, reason):
    """A feed's last error and a disabled subscription's reason carry what a remote server
    said (a reason phrase, a body's start)."""
    feed = {
        "feed": name,
        "health": "failing",
        "last_status": "500",
        "last_fetched": "2026-12-01T10:00:00Z",
        "next_due_in_seconds": 30.0,
        "errors": 1,
        "last_error": error,
    }
    subscription = {
        "id": name,
        "status": "disabled",
        "disabled_reason": reason,
        "failing_since": None,
        "last_error": error,
        "next_try": None,
        "last_hour": dict.fromkeys(stats.SUBSCRIPTION_COUNTERS, 0),
        "dead_letters": 0,
    }
    now = time.time()
    for fragment, texts in (
        (board_render.render_feed(feed, now), (name, error)),
        (board_render.render_subscription(subscription, now), (name, reason)),
    ):
        row = parsed(fragment)
        assert {tag for tag, _ in row.tags} <= {"tr", "td", "span", "a"}
        assert all(text in row.text for text in texts)
