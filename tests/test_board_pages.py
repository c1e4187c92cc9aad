"""The board's pages over real HTTP, beyond the front page: a story's reports and who was
alerted of it, a subscription's messages and attempts, why a failing subscription fails and
when it is tried next, a feed's error status, the page for Redis down; everything from feeds
and endpoints escaped."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from monitor.core import keys
from monitor.core.feedstate import FeedState
from monitor.core.models import Alert, Entry
from tests.helpers import SECRET, load, newsmon, write_config
from workers.delivery.endpoints import Endpoints
from workers.delivery.messages import MessageLog
from workers.delivery.outcome import DeliveryStatus, Outcome
from workers.delivery.rounds import Round
from workers.pipeline.stories import Stories

FEED = {"name": "wire", "url": "https://wire.example/rss"}
HOOK = {"id": "hook", "url": "https://hooks.example/in", "topics": ["*"], "secret": SECRET}
OTHER = {"id": "other", "url": "https://other.example/in", "topics": ["*"], "secret": SECRET}
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">Talks resume'


@pytest.fixture
def config(tmp_path):
    directory = write_config(tmp_path / "config", feeds=[FEED], subscriptions=[HOOK, OTHER])
    return load(directory)


def report(entry_id: str, story_of: str, feed: str, title: str, link: str) -> Entry:
    """A report from `feed` of the story that `story_of` started (itself, for a first)."""
    return Entry(
        id=entry_id,
        feed_name=feed,
        feed_url=f"https://{feed}.example/rss",
        key=entry_id,
        title=title,
        link=link,
        summary="",
        story_id=f"st_{story_of}",
    )


def alert_for(entry: Entry, subscription_id: str) -> Alert:
    return Alert(
        id=Alert.make_id(entry.id, subscription_id),
        subscription_id=subscription_id,
        topics=entry.topics,
        entry=entry,
        created=datetime.now(UTC),
    )


def a_story_told_to_two_subscriptions(connection) -> Entry:
    """Story st_a: wire's first report, then a hostile outlet's report joined by the pair
    model; `hook` was told of it (a 500, then delivered), `other` could not be reached."""
    first = report("a", "a", "wire", "Envoys meet in Paris", "https://wire.example/a")
    second = report("b", "a", "<b>evil</b>", HOSTILE, "javascript:alert(1)")
    why = {"reason": "story", "of": "a", "similarity": 0.97, "cosine": 0.81}
    stories = Stories(connection, 3600)
    with connection.pipeline() as pipe:
        stories.add(pipe, first, now=1000.0)
        stories.add(pipe, second, why, now=1060.0)
        pipe.execute()
    log = MessageLog(connection)
    to_hook, to_other = alert_for(first, "hook"), alert_for(first, "other")
    error = Outcome(DeliveryStatus.RETRY, "HTTP 500 Internal Server Error", 500, None, 12.0)
    log.record(Round(retry=[(to_hook, error)]), attempt=1)
    log.record(Round(delivered=[(to_hook, Outcome(DeliveryStatus.DELIVERED, "", 200))]), 2)
    refused = Outcome(DeliveryStatus.RETRY, "<i>connection refused</i>")
    log.record(Round(retry=[(to_other, refused)]), attempt=1)
    return first


def test_a_story_opens_to_its_reports_and_who_was_alerted(connection, config, serve_url):
    a_story_told_to_two_subscriptions(connection)
    base = serve_url(config)

    front = httpx.get(f"{base}/").text
    assert '<a href="/board/story/st_a">Envoys meet in Paris</a>' in front
    page = httpx.get(f"{base}/board/story/st_a")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    html = page.text
    # Every report: its outlet, time, link (an http one only), and why it joined.
    assert html.index("Envoys meet in Paris") < html.index("Talks resume")
    assert '<a href="https://wire.example/a" rel="noopener noreferrer"' in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "&lt;script&gt;window.pwned=1" in html
    assert "<script>window" not in html and "<img" not in html and "javascript:" not in html
    assert "first report" in html
    assert "story match with wire: similarity 0.97, cosine 0.81" in html
    # Who was told, and what became of it, attempt by attempt.
    assert '<a href="/board/subscription/hook">hook</a>' in html
    assert '<a href="/board/subscription/other">other</a>' in html
    assert "#1 · retry · HTTP 500 · 12 ms · HTTP 500 Internal Server Error" in html
    assert '<span class="badge delivered">delivered</span>' in html
    assert "&lt;i&gt;connection refused&lt;/i&gt;" in html and "<i>" not in html

    missing = httpx.get(f"{base}/board/story/st_nothing")
    assert missing.status_code == 404 and "No such story" in missing.text


def test_a_story_recorded_by_an_older_newsmon_still_reads(
    connection, config, serve_url, tmp_path, redis_url
):
    """A story's hash as newsmon wrote it when a story match kept the pair model's
    probability twice, as its similarity and in its `why`: still in the window after an
    upgrade, it reads as it was written, on the board and in `newsmon stories`."""
    now = time.time()
    why = {"reason": "story", "of": "a", "similarity": 0.97, "probability": 0.97, "cosine": 0.81}
    connection.hset(
        keys.story("st_a"),
        mapping={
            "v": 1,
            "title": "Envoys meet in Paris",
            "link": "https://wire.example/a",
            "topics": '["diplomacy"]',
            "first_seen": now - 60,
            "last_seen": now,
            "o:wire": now - 60,
            "o:daily": now,
            "e:a": "wire",
            "e:b": "daily",
            "r:a": json.dumps({"title": "Envoys meet in Paris", "link": "", "at": now - 60}),
            "r:b": json.dumps({"title": "Talks resume in Paris", "link": "", "at": now}),
            "w:b": json.dumps(why),
        },
    )
    connection.zadd(keys.STORIES, {"st_a": now})

    assert Stories(connection, 3600).get("st_a").why == {"b": why}
    html = httpx.get(f"{serve_url(config)}/board/story/st_a").text
    assert "story match with wire: similarity 0.97, probability 0.97, cosine 0.81" in html
    listing = newsmon("stories", "--config", str(tmp_path / "config"), env={"REDIS_URL": redis_url})
    assert listing.returncode == 0, listing.stderr
    assert "b joined a (story): similarity 0.97, probability 0.97, cosine 0.81" in listing.stdout


def test_a_subscription_opens_to_its_messages_and_attempts(connection, config, serve_url):
    a_story_told_to_two_subscriptions(connection)
    base = serve_url(config)

    page = httpx.get(f"{base}/board/subscription/other")
    assert page.status_code == 200
    html = page.text
    assert "Subscription other" in html
    assert '<a href="/board/story/st_a">Envoys meet in Paris</a>' in html
    assert "#1 · retry · no answer · 0 ms · &lt;i&gt;connection refused&lt;/i&gt;" in html
    missing = httpx.get(f"{base}/board/subscription/nobody")
    assert missing.status_code == 404 and "No such subscription" in missing.text


def test_a_failing_subscription_says_why_and_when_it_is_tried_next(connection, config, serve_url):
    endpoints = Endpoints(connection)
    endpoints.failed("hook", "HTTP 503 Service Unavailable")
    endpoints.block("hook", 600)
    base = serve_url(config)

    (row,) = [
        s for s in httpx.get(f"{base}/board/data.json").json()["subscriptions"] if s["id"] == "hook"
    ]
    assert row["status"] == "failing" and row["last_error"] == "HTTP 503 Service Unavailable"
    assert 590 < row["next_try"] - time.time() <= 600
    for path in ("/", "/board/live", "/board/subscription/hook"):
        html = httpx.get(f"{base}{path}").text
        assert "HTTP 503 Service Unavailable" in html, path
        assert "in 10 min" in html, path
    endpoints.succeeded("hook")
    assert "HTTP 503" not in httpx.get(f"{base}/board/live").text


def test_a_feed_that_answered_404_shows_404(connection, config, serve_url):
    state = FeedState.read({})
    state.failed("HTTP 404 Not Found", time.time(), 404)
    connection.hset(keys.feed_state("wire"), mapping=state.take_changes())
    html = httpx.get(f"{serve_url(config)}/").text
    assert 'data-label="Last status">404</td>' in html
    assert "HTTP 404 Not Found" in html


def test_with_redis_down_the_page_says_so(config, serve_url):
    # No retries: redis-py's default backoff would stretch each request past httpx's timeout.
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    base = serve_url(config, unreachable)
    for path in ("/", "/board/story/st_a", "/board/subscription/hook"):
        page = httpx.get(f"{base}{path}")
        assert page.status_code == 503, path
        assert page.headers["content-type"].startswith("text/html")
        assert "<h2>Redis is not answering</h2>" in page.text
        assert "Connection refused" in page.text
    live = httpx.get(f"{base}/board/live")
    assert live.status_code == 503 and live.text.startswith("redis: ")
    # The page's own style and icon need no Redis.
    assert httpx.get(f"{base}/board/board.css").status_code == 200


def test_every_page_links_its_icon(connection, config, serve_url):
    a_story_told_to_two_subscriptions(connection)
    base = serve_url(config)
    for path in ("/", "/board/story/st_a", "/board/subscription/hook"):
        page = httpx.get(f"{base}{path}").text
        assert '<link rel="icon" href="/board/favicon.svg" type="image/svg+xml">' in page, path
