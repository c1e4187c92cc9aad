"""A feed's past is recorded, not alerted: its first document, and items older than
[alerts] max_age_hours. Real Redis, a real feed server, a real RQ worker and receivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

import structlog
from standardwebhooks import Webhook
from structlog.contextvars import merge_contextvars

from monitor.core import keys
from monitor.poller.loop import Poller
from tests.helpers import RSS, SECRET, load, run_worker, write_config
from tests.stories import Item, unrelated_items
from workers.pipeline.stories import Stories


def dated_rss(items: list[tuple[Item, datetime | None]]) -> bytes:
    body = "".join(
        f"<item><guid>{escape(i.guid)}</guid><title>{escape(i.title)}</title>"
        f"<link>{escape(i.link)}</link><description>{escape(i.summary)}</description>"
        + (f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>" if when else "")
        + "</item>"
        for i, when in items
    )
    channel = f"<channel><title>t</title>{body}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def delivered_links(http_server, subscription: str) -> list[str]:
    verifier = Webhook(SECRET)
    return sorted(
        verifier.verify(r.body, r.headers)["data"]["entry"]["link"]
        for r in http_server.requests
        if r.path == f"/{subscription}"
    )


def test_a_feeds_past_is_recorded_but_alerted_only_to_who_asks(
    tmp_path, connection, http_server, start_process, redis_url
):
    now = datetime.now(UTC)
    archive = unrelated_items(4, "past")
    fresh, stale, later = unrelated_items(3, "news")
    # A repeat of an archived item under a new guid: the same story, seen before.
    repeat = Item("rep", "rep-1", archive[0].title, archive[0].summary, archive[0].link)
    first = [
        (archive[0], now - timedelta(hours=1)),
        (archive[1], now - timedelta(hours=30)),
        (archive[2], now - timedelta(days=10)),
        (archive[3], None),
    ]
    http_server.route("/feed.xml", (200, RSS, dated_rss(first)))
    for path in ("/desk", "/backfill"):
        http_server.route(path, (204, {}, b""))
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": http_server.url_for("/feed.xml")}],
        subscriptions=[
            {"id": "desk", "url": http_server.url_for("/desk"), "topics": ["*"], "secret": SECRET},
            {
                "id": "backfill",
                "url": http_server.url_for("/backfill"),
                "topics": ["*"],
                "secret": SECRET,
                "backfill_hours": 48,
            },
        ],
    )
    config = load(directory)
    poller = Poller(config, connection)

    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        poller.poll_feeds(config.feeds)  # the first document: the feed's whole past
        run_worker(config, connection)
    assert delivered_links(http_server, "desk") == []
    # Within 48 hours, or undated: the subscription that asked for the past gets those.
    assert delivered_links(http_server, "backfill") == sorted(
        [archive[0].link, archive[1].link, archive[3].link]
    )
    backfilled = [e for e in logs if e["event"] == "feed.backfilled"]
    assert [(e["feed"], e["entries"]) for e in backfilled] == [("blog", 4)]
    assert not [e for e in logs if e["event"] == "entry.enqueued"]
    # Only what a subscription asked for is classified: never the 10-day-old item.
    classified = sorted(e["title"] for e in logs if e["event"] == "entry.classified")
    assert classified == sorted(archive[i].title for i in (0, 1, 3))
    # The rest of the past is no story of now (`newsmon stories`).
    recorded = sorted(s.title for s in Stories(connection, 3600).recent(0))
    assert recorded == classified

    # An edit of an item of the past: no update of what the desk never saw.
    edited = Item("e", archive[3].guid, archive[3].title + " (updated)", "", archive[3].link)
    second = [
        *first[:3],
        (edited, None),
        (fresh, now - timedelta(minutes=5)),
        (stale, now - timedelta(hours=30)),  # new to the feed, but older than max_age_hours
        (later, None),  # undated: counts as new
        (repeat, now),
    ]
    http_server.route("/feed.xml", (200, RSS, dated_rss(second)))
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        poller.poll_feeds(config.feeds)
        run_worker(config, connection)
    assert delivered_links(http_server, "desk") == sorted([fresh.link, later.link])
    # archive[3] twice: once as it was, once its update (it was sent the original).
    sent = [archive[0], archive[1], archive[3], archive[3], fresh, later, stale]
    assert delivered_links(http_server, "backfill") == sorted(i.link for i in sent)
    # The stale item is new past; the edit is an edit of the past, not more of it.
    assert [e["entries"] for e in logs if e["event"] == "feed.backfilled"] == [1]
    edits = [(e["title"], e["backfilled"]) for e in logs if e["event"] == "entry.edited"]
    assert edits == [(edited.title, True)]
    duplicates = [e for e in logs if e["event"] == "entry.duplicate"]
    assert [e["title"] for e in duplicates] == [repeat.title]

    listing = start_process(
        "feeds", "--json", "--config", str(directory), env={"REDIS_URL": redis_url}
    )
    assert listing.finish() == 0
    rows = [json.loads(line) for line in listing.log_path.read_text().splitlines()]
    assert [(r["feed"], r["backfilled"]) for r in rows] == [("blog", 5)]


def test_a_feed_known_before_the_upgrade_alerts_its_next_news(tmp_path, connection, http_server):
    """State written by a poller older than this rule has no `backfilled` field, but has a
    first fetch: its next document is news, not its past."""
    http_server.route("/feed.xml", (200, RSS, dated_rss([(i, None) for i in unrelated_items(2)])))
    http_server.route("/desk", (204, {}, b""))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "blog", "url": http_server.url_for("/feed.xml")}],
            subscriptions=[
                {
                    "id": "desk",
                    "url": http_server.url_for("/desk"),
                    "topics": ["*"],
                    "secret": SECRET,
                }
            ],
        )
    )
    connection.hset(keys.feed_state("blog"), mapping={"first_fetched": "1733049600.0"})
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    assert len(delivered_links(http_server, "desk")) == 2
