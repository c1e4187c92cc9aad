"""Feeds in, signed topic alerts out: poller, real RQ worker, real receiver, real Redis."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import structlog
from standardwebhooks import Webhook
from structlog.contextvars import merge_contextvars

from monitor.poller.loop import Poller
from tests.helpers import (
    SECRET,
    assert_valid_delivery,
    load,
    polled_before,
    run_worker,
    write_config,
)
from tests.stories import (
    DAILY_ITEMS,
    ROUND_ONE_LIVEBLOG,
    ROUND_TWO_LIVEBLOG,
    STORY_TOPICS,
    WIRE_ITEMS,
    atom,
    json_feed,
    rss,
)

RSS = {"content-type": "application/rss+xml"}
SUBSCRIPTIONS = {
    "diplomacy-desk": ["diplomacy"],
    "health-desk": ["health", "humanitarian"],
    "firehose": ["*"],
}


def test_rounds_of_feeds_alert_once_per_story_per_subscription(tmp_path, connection, http_server):
    http_server.route(
        "/liveblog.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG))
    )
    http_server.route(
        "/wire.atom", (200, {"content-type": "application/atom+xml"}, atom(WIRE_ITEMS))
    )
    http_server.route(
        "/daily.json", (200, {"content-type": "application/feed+json"}, json_feed(DAILY_ITEMS))
    )
    http_server.route("/hooks", (204, {}, b""))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[
                {"name": "liveblog", "url": http_server.url_for("/liveblog.xml")},
                {"name": "wire", "url": http_server.url_for("/wire.atom")},
                {"name": "daily", "url": http_server.url_for("/daily.json")},
            ],
            subscriptions=[
                {
                    "id": sid,
                    "url": http_server.url_for(f"/hooks?sub={sid}"),
                    "topics": topics,
                    "secret": SECRET,
                }
                for sid, topics in SUBSCRIPTIONS.items()
            ],
        )
    )
    polled_before(connection, config.feeds)
    poller = Poller(config, connection)
    items_by_link = {i.link: i for i in [*ROUND_TWO_LIVEBLOG, *WIRE_ITEMS, *DAILY_ITEMS]}

    # The context merged in, as in the JSON lines: jobs bind their entries' ids there.
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        poller.poll_feeds([config.feeds[0]])[0]  # round one: the live blog's first five items
        run_worker(config, connection)
        http_server.route(
            "/liveblog.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_TWO_LIVEBLOG))
        )
        for feed in config.feeds:  # round two: repeats, edits, other outlets
            poller.poll_feeds([feed])[0]
        run_worker(config, connection)
        poller.poll_feeds([config.feeds[0]])[0]  # round three: nothing new
        run_worker(config, connection)

    deliveries = [r for r in http_server.requests if r.path.startswith("/hooks")]
    verifier = Webhook(SECRET)
    delivered: Counter[tuple[str, str]] = Counter()
    for request in deliveries:
        payload = verifier.verify(request.body, request.headers)  # raises on a bad signature
        assert assert_valid_delivery(request) == payload  # the published contract holds
        data = payload["data"]
        story = items_by_link[data["entry"]["link"]].story
        subscription = request.path.split("sub=")[1]
        assert data["subscription_id"] == subscription
        wanted = SUBSCRIPTIONS[subscription]
        expected_topics = [t for t in STORY_TOPICS[story] if "*" in wanted or t in wanted]
        assert sorted(data["topics"]) == sorted(expected_topics), (story, subscription)
        assert request.headers["webhook-id"] == data["alert_id"]
        delivered[(subscription, story)] += 1

    expected = {
        (sid, story)
        for sid, topics in SUBSCRIPTIONS.items()
        for story, story_topics in STORY_TOPICS.items()
        if "*" in topics or set(topics) & set(story_topics)
    }
    assert set(delivered) == expected
    assert all(count == 1 for count in delivered.values()), delivered
    assert len({r.headers["webhook-id"] for r in deliveries}) == len(deliveries)

    duplicates = [e for e in logs if e["event"] == "entry.duplicate"]
    reasons = Counter(e["reason"] for e in duplicates)
    # lb-106 (text), lb-107 (text), lb-108/109 (title), lb-110 (text, after boilerplate),
    # wire-1 (near), wire-3 (title), daily-1 (link)
    assert len(duplicates) == 8, [(e["entry_id"], e["reason"]) for e in duplicates]
    assert reasons["link"] == 1 and reasons["near"] >= 1
    assert all(e["duplicate_of"] and e["story_id"].startswith("st_") for e in duplicates)
    new_entries = len(ROUND_TWO_LIVEBLOG) + len(WIRE_ITEMS) + len(DAILY_ITEMS)
    assert sum(e["event"] == "entry.enqueued" for e in logs) == new_entries
    assert sum(e["event"] == "entry.classified" for e in logs) == len(STORY_TOPICS)
    assert sum(e["event"] == "alert.delivered" for e in logs) == len(deliveries)
    assert {e["feed"] for e in logs if e["event"] == "feed.fetched"} == {
        "liveblog",
        "wire",
        "daily",
    }

    # No log line carries a secret or a body.
    logged = repr(logs)
    assert SECRET.removeprefix("whsec_") not in logged
    assert not any(i.summary and i.summary[:60] in logged for i in items_by_link.values())

    # Every alert of one story carries one story id, in every subscription.
    stories = {}
    for request in deliveries:
        data = json.loads(request.body)["data"]
        stories.setdefault(items_by_link[data["entry"]["link"]].story, set()).add(data["story_id"])
    assert all(len(ids) == 1 for ids in stories.values())


def test_an_item_edited_in_place_updates_its_story_once(tmp_path, connection, http_server):
    """Same guid, new headline: not a new story, but one `alert.updated` on the old story id.
    An edit of an entry that was itself a duplicate changes nothing a subscriber sees."""
    paris, kharkiv = ROUND_ONE_LIVEBLOG[0], ROUND_ONE_LIVEBLOG[1]
    repeat = replace(paris, guid="lb-repeat", link=f"{paris.link}-repeat")
    http_server.route("/blog.xml", (200, RSS, rss([paris, kharkiv, repeat])))
    http_server.route("/hooks", (204, {}, b""))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "liveblog", "url": http_server.url_for("/blog.xml")}],
            subscriptions=[
                {
                    "id": "all",
                    "url": http_server.url_for("/hooks"),
                    "topics": ["*"],
                    "secret": SECRET,
                }
            ],
        )
    )
    polled_before(connection, config.feeds)
    poller = Poller(config, connection)
    assert poller.poll_feeds(config.feeds)[0].new_entries == 3
    run_worker(config, connection)

    edited = replace(paris, title=paris.title + ", officials confirm")
    edited_repeat = replace(repeat, summary=repeat.summary + " More to follow.")
    http_server.route("/blog.xml", (200, RSS, rss([edited, kharkiv, edited_repeat])))
    with structlog.testing.capture_logs() as logs:
        outcome = poller.poll_feeds(config.feeds)[0]
        run_worker(config, connection)
        assert poller.poll_feeds(config.feeds)[0].edited_entries == 0  # seen as edited once
    assert (outcome.new_entries, outcome.edited_entries) == (0, 2)

    bodies = [
        Webhook(SECRET).verify(r.body, r.headers)
        for r in http_server.requests
        if r.path == "/hooks" and assert_valid_delivery(r)
    ]
    created = {b["data"]["entry"]["id"]: b for b in bodies if b["type"] == "alert.created"}
    updated = [b for b in bodies if b["type"] == "alert.updated"]
    assert len(created) == 2 and len(updated) == 1
    update = updated[0]["data"]
    original = created[update["entry"]["id"]]["data"]
    assert update["entry"]["title"] == edited.title
    assert update["story_id"] == original["story_id"]
    assert update["alert_id"] != original["alert_id"]
    story_updates = [e for e in logs if e["event"] == "story.updated"]
    assert sorted(e["alerted"] for e in story_updates) == [False, True]
