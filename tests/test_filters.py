"""Filters beyond topics: feeds or tags, keywords and excluded keywords, per subscription."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from monitor.core.config import ConfigError, load_config
from monitor.core.models import Entry, Subscription
from monitor.poller.loop import Poller
from tests.helpers import RSS, SECRET, load, polled_before, run_worker, write_config
from tests.stories import Item, rss
from workers.pipeline.match import alerts_for, passes_filters

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ZAPORIZHZHIA = Item(
    "zap",
    "z1",
    "Energoatom says the Zaporizhzhia nuclear plant lost its last power line",
    "The nuclear operator said diesel generators were running at the plant.",
    "https://news.example.org/zap",
)
MARKETS = Item(
    "markets",
    "m1",
    "Gas markets jump as Zaporizhzhia nuclear plant loses power again",
    "Natural gas futures rose in Europe; the energy ministry called for calm.",
    "https://news.example.org/markets",
)
ELSEWHERE = Item(
    "elsewhere",
    "e1",
    "Energy ministry plans new wind power auctions next spring",
    "Renewable capacity would double, the energy minister said.",
    "https://news.example.org/wind",
)


def entry(title: str, summary: str = "", feed: str = "wire") -> Entry:
    return Entry(
        id="e",
        feed_name=feed,
        feed_url="https://e.org/f",
        key="k",
        title=title,
        link="https://e.org/a",
        summary=summary,
    )


@pytest.mark.parametrize(
    ("subscription", "title", "summary", "feed", "passes"),
    [
        # Keywords match whole words and their inflections, as topic terms do.
        ({"keywords": ("Zaporizhzhia",)}, "Shelling near Zaporizhzhia", "", "wire", True),
        ({"keywords": ("drone strike",)}, "Two drone strikes overnight", "", "wire", True),
        ({"keywords": ("front line",)}, "Along the frontline, calm", "", "wire", True),
        ({"keywords": ("port",)}, "Report on exports", "", "wire", False),
        ({"keywords": ("Kyiv", "Lviv")}, "Quiet night", "Sirens in Lviv.", "wire", True),
        ({"exclude_keywords": ("market",)}, "Energy markets calm", "", "wire", False),
        ({"exclude_keywords": ("market",)}, "Energy ministry calm", "", "wire", True),
        ({"feeds": frozenset({"wire"})}, "Anything", "", "wire", True),
        ({"feeds": frozenset({"wire"})}, "Anything", "", "blog", False),
        ({}, "Anything", "", "blog", True),
    ],
)
def test_filters_narrow_a_subscription(subscription, title, summary, feed, passes):
    sub = Subscription("s", "https://h.example/x", frozenset({"*"}), (SECRET,), **subscription)
    assert passes_filters(entry(title, summary, feed), sub) is passes
    assert bool(alerts_for(entry(title, summary, feed), (sub,), NOW)) is passes


def test_energy_only_about_zaporizhzhia_not_markets_is_one_subscription(
    tmp_path, connection, http_server, start_process, redis_url
):
    items = [ZAPORIZHZHIA, MARKETS, ELSEWHERE]
    http_server.route("/wire.xml", (200, RSS, rss(items)))
    http_server.route("/blog.xml", (200, RSS, rss(items, title="Blog")))
    http_server.route("/desk", (204, {}, b""))
    http_server.route("/all", (204, {}, b""))
    directory = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": http_server.url_for("/wire.xml"), "tags": ["agency"]},
            {"name": "blog", "url": http_server.url_for("/blog.xml")},
        ],
        subscriptions=[
            {
                "id": "desk",
                "url": http_server.url_for("/desk"),
                "topics": ["energy"],
                "secret": SECRET,
                "tags": ["agency"],
                "keywords": ["Zaporizhzhia"],
                "exclude_keywords": ["market"],
            },
            # The same without the exclusion: the markets story is about energy too.
            {
                "id": "all",
                "url": http_server.url_for("/all"),
                "topics": ["energy"],
                "secret": SECRET,
                "keywords": ["Zaporizhzhia"],
            },
        ],
    )
    config = load(directory)
    assert config.subscriptions[0].feeds == {"wire"}
    polled_before(connection, config.feeds)
    poller = Poller(config, connection)
    poller.poll_feeds(config.feeds[:1])
    run_worker(config, connection)
    verifier = Webhook(SECRET)
    delivered = [
        verifier.verify(r.body, r.headers)["data"]
        for r in http_server.requests
        if r.path == "/desk"
    ]
    assert [(d["entry"]["link"], d["topics"]) for d in delivered] == [
        (ZAPORIZHZHIA.link, ["energy"])
    ]
    to_all = [
        json.loads(r.body)["data"]["entry"]["link"]
        for r in http_server.requests
        if r.path == "/all"
    ]
    assert sorted(to_all) == sorted([ZAPORIZHZHIA.link, MARKETS.link])

    listing = start_process(
        "subscriptions", "list", "--config", str(directory), env={"REDIS_URL": redis_url}
    )
    assert listing.finish() == 0
    desk = next(line for line in listing.log_path.read_text().splitlines() if "desk" in line)
    assert desk.endswith("feeds=wire  keywords=Zaporizhzhia  exclude_keywords=market"), desk


@pytest.mark.parametrize(
    ("subscription", "key", "says"),
    [
        ({"feeds": ["nope"]}, 'subscriptions[id="s"].feeds', "unknown feed 'nope'; name a feed"),
        ({"tags": ["sport"]}, 'subscriptions[id="s"].tags', "no feed has the tag 'sport'"),
        ({"keywords": ["!!"]}, 'subscriptions[id="s"].keywords', "has no words; remove it"),
        ({"keywords": []}, 'subscriptions[id="s"].keywords', "is empty"),
        (
            {"exclude_keywords": "market"},
            'subscriptions[id="s"].exclude_keywords',
            "must be list, not str 'market'; write a list, e.g. [",
        ),
        ({"keywords": [3]}, 'subscriptions[id="s"].keywords', "list of strings, each in quotes"),
        (
            {"digest_minutes": "hourly"},
            'subscriptions[id="s"].digest_minutes',
            "write a whole number",
        ),
    ],
)
def test_a_bad_filter_names_file_key_and_fix(tmp_path, subscription, key, says):
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": "https://e.org/f", "tags": ["agency"]}],
        subscriptions=[
            {"id": "s", "url": "https://h.example/x", "topics": ["*"], "secret": SECRET}
            | subscription
        ],
    )
    with pytest.raises(ConfigError) as raised:
        load_config(directory)
    [problem] = raised.value.problems
    assert problem.file.endswith("subscriptions.toml")
    assert problem.key == key
    assert says in problem.message, json.dumps(problem.message)
