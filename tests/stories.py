"""Fixture news, written for newsmon's tests in the style of a live blog and two wire outlets,
and the documents that carry it: RSS, Atom, JSON Feed and live blog pages.

Each item names the story it belongs to; variants of one story (repeats under a new guid,
small edits, a headline without its summary, boilerplate, tracking parameters, a longer
version) must produce one alert, and look-alike stories (same subject, other place and
numbers) must stay apart.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape as escape_html
from typing import Any
from xml.sax.saxutils import escape

# Today's news (a feed's past, published before [alerts] max_age_hours, is not alerted).
PUBLISHED = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
PLUS_ONE = timezone(timedelta(hours=1))

BOILERPLATE = (
    "Your support keeps our reporters close to the story. "
    "Join our commenting forum to share your view."
)


@dataclass(frozen=True)
class Item:
    story: str
    guid: str
    title: str
    summary: str
    link: str


SITE = "https://liveblog.example.org/ukraine"
WIRE = "https://wire.example.net"
DAILY = "https://daily.example.com"

# story -> the topics it must be classified into
STORY_TOPICS = {
    "paris-meeting": ("diplomacy",),
    "kharkiv-drone": ("frontline", "humanitarian"),
    "resistant-infections": ("health",),
    "gas-transit": ("diplomacy", "energy"),
    "film-prize": ("culture",),
    "irregular-routes": ("migration", "humanitarian"),
    "martial-law-vote": ("politics",),
    "aid-freeze": ("humanitarian",),
    "sumy-drone": ("frontline", "humanitarian"),
    "alpine-snow": (),
    "drones-downed": ("frontline",),
    "refinery-fire": ("energy", "frontline"),
}

PARIS = Item(
    "paris-meeting",
    "lb-101",
    "Paris to host foreign ministers for talks on Ukraine",
    "France has asked the foreign ministers of Germany, Poland and Italy, together with "
    "the new US secretary of state, to meet in Paris on 14 March, two diplomats said on "
    "condition of anonymity.",
    f"{SITE}#post-101",
)
KHARKIV = Item(
    "kharkiv-drone",
    "lb-102",
    "Two killed as drone hits apartment block in Kharkiv",
    "At least two residents died and five were hurt when a drone struck a nine-storey "
    "apartment block in Kharkiv overnight, the regional governor said. Rescue crews were "
    "still searching the rubble at dawn.",
    f"{SITE}#post-102",
)
INFECTIONS = Item(
    "resistant-infections",
    "lb-103",
    "Hospitals near the front report surge in drug-resistant infections",
    "Doctors in eastern Ukraine say antibiotic-resistant bacteria are spreading fast "
    "among wounded patients, and health agencies abroad are watching closely.",
    f"{SITE}#post-103",
)
GAS = Item(
    "gas-transit",
    "lb-104",
    "Slovakia summons Ukraine's ambassador as gas transit row deepens",
    "Bratislava called in Kyiv's envoy after Ukraine stopped Russian gas flowing through its "
    "pipelines to Slovakia at the start of the year.",
    f"{SITE}#post-104",
)
FILM = Item(
    "film-prize",
    "lb-105",
    "Documentary about a battle for one village wins festival prize",
    "'2,000 Steps to Klishchiivka', a film that follows one platoon through a single day, "
    "took the top documentary award at the festival on Sunday.",
    f"{SITE}#post-105",
)

ROUND_ONE_LIVEBLOG = [PARIS, KHARKIV, INFECTIONS, GAS, FILM]

ROUND_TWO_LIVEBLOG = [
    *ROUND_ONE_LIVEBLOG,
    # The same item re-posted under a new guid, with punctuation edits.
    Item(
        "paris-meeting",
        "lb-106",
        "Paris to host foreign ministers for talks on Ukraine",
        "France has asked the foreign ministers of Germany, Poland and Italy - together with the "
        "new US secretary of state - to meet in Paris on 14 March, two diplomats said on "
        "condition of anonymity.",
        f"{SITE}#post-106",
    ),
    # "2,000" became "2000" and a hyphen was dropped.
    Item(
        "film-prize",
        "lb-107",
        "Documentary about a battle for one village wins festival prize",
        "'2000 Steps to Klishchiivka', a film that follows one platoon through a single day, "
        "took the top documentary award at the festival on Sunday.",
        f"{SITE}#post-107",
    ),
    # The headline alone, then the headline with a new teaser.
    Item("resistant-infections", "lb-108", INFECTIONS.title, "", f"{SITE}#post-108"),
    Item(
        "resistant-infections",
        "lb-109",
        INFECTIONS.title,
        "What is driving the spread of resistant bacteria on the wards, and what can be done?",
        f"{SITE}#post-109",
    ),
    # The item again, wrapped in boilerplate.
    Item(
        "kharkiv-drone",
        "lb-110",
        KHARKIV.title,
        f"{KHARKIV.summary} {BOILERPLATE}",
        f"{SITE}#post-110",
    ),
    Item(
        "irregular-routes",
        "lb-111",
        "Families turn to irregular routes to bring children out of Ukraine",
        "Charities warn that changes to the sponsorship scheme leave parents few legal ways to "
        "reunite with their children, pushing some towards people traffickers.",
        f"{SITE}#post-111",
    ),
    Item(
        "martial-law-vote",
        "lb-112",
        "Parliament in Kyiv extends martial law and delays election",
        "Lawmakers voted 320 to 15 to extend martial law for another 90 days, putting off any "
        "presidential election until the fighting ends.",
        f"{WIRE}/politics/martial-law",
    ),
]

WIRE_ITEMS = [
    # Another outlet, one word changed: a near duplicate across feeds.
    Item(
        "kharkiv-drone",
        "wire-1",
        "Drone hits Kharkiv apartment block, killing two",
        "At least two residents died and five were injured when a drone struck a nine-storey "
        "apartment block in Kharkiv overnight, the regional governor said. Rescue crews were "
        "still searching the rubble at dawn.",
        f"{WIRE}/europe/kharkiv-drone",
    ),
    # A look-alike: same subject, another city and other numbers. A different story.
    Item(
        "sumy-drone",
        "wire-2",
        "One killed as drone hits apartment building in Sumy",
        "A man died and three people were injured when a drone struck a five-storey apartment "
        "building in Sumy, and emergency services pulled residents from the rubble, the mayor "
        "said.",
        f"{WIRE}/europe/sumy-drone",
    ),
    # A longer version of the gas item, with one extra sentence.
    Item(
        "gas-transit",
        "wire-3",
        "Slovakia summons Ukraine's ambassador as gas transit row deepens",
        "Bratislava called in Kyiv's envoy after Ukraine stopped Russian gas flowing through its "
        "pipelines to Slovakia at the start of the year. Talks are expected next week.",
        f"{WIRE}/europe/slovakia-gas",
    ),
    Item(
        "aid-freeze",
        "wire-4",
        "Aid freeze forces relief groups to cut staff",
        "Humanitarian programmes paid for by Washington have begun laying off workers after a "
        "90-day pause on foreign aid, charities said.",
        f"{WIRE}/world/aid-freeze",
    ),
    Item(
        "alpine-snow",
        "wire-5",
        "Storm brings heavy snow to the Alps",
        "Ski resorts closed several lifts as more than a metre of snow fell in 24 hours.",
        f"{WIRE}/weather/alps",
    ),
]

DAILY_ITEMS = [
    # The wire's martial-law link, with tracking parameters: the same story.
    Item(
        "martial-law-vote",
        "daily-1",
        "Kyiv lawmakers prolong martial law",
        "Ukraine's parliament backed a further extension of martial law on Tuesday.",
        f"{WIRE}/politics/martial-law?utm_source=daily&utm_medium=rss&fbclid=abc",
    ),
    Item(
        "drones-downed",
        "daily-2",
        "Ukraine says air defences shot down 40 drones overnight",
        "The air force said 40 of 52 drones launched overnight were shot down and the rest were "
        "lost to electronic jamming.",
        f"{DAILY}/news/drones-downed",
    ),
    Item(
        "refinery-fire",
        "daily-3",
        "Oil refinery in southern Russia burns after drone attack",
        "A large fire broke out at an oil refinery near Krasnodar after a drone attack, local "
        "officials said, and fuel production was halted.",
        f"{DAILY}/news/refinery-fire",
    ),
]


def rss(items: list[Item], title: str = "Live: war in Ukraine", head: str = "") -> bytes:
    """An RSS 2.0 document; `head` is extra channel XML (a <ttl>, WebSub links)."""
    body = "".join(
        f'<item><guid isPermaLink="false">{escape(i.guid)}</guid><title>{escape(i.title)}</title>'
        f"<link>{escape(i.link)}</link>"
        f"<description>{escape('<p>' + i.summary + '</p>')}</description>"
        f"<pubDate>{format_datetime(PUBLISHED, usegmt=True)}</pubDate></item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f"<title>{escape(title)}</title><link>{SITE}</link>{head}{body}</channel></rss>"
    ).encode()


def atom(items: list[Item], title: str = "Wire: Europe") -> bytes:
    body = "".join(
        f"<entry><id>urn:wire:{escape(i.guid)}</id><title>{escape(i.title)}</title>"
        f'<link href="{escape(i.link)}"/><summary>{escape(i.summary)}</summary>'
        f"<updated>{PUBLISHED.isoformat()}</updated></entry>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(title)}</title><id>urn:wire</id><updated>{PUBLISHED.isoformat()}</updated>"
        f"{body}</feed>"
    ).encode()


def json_feed(items: list[Item], title: str = "Daily") -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": title,
            "items": [
                {
                    "id": i.guid,
                    "url": i.link,
                    "title": i.title,
                    "summary": i.summary,
                    "date_published": PUBLISHED.astimezone(PLUS_ONE).isoformat(),
                }
                for i in items
            ],
        }
    ).encode()


# Live blog pages, in the shapes news sites publish them: an HTML page around the posts (an
# appeal for support, a comment prompt, cards of other articles) and the posts again in its
# JSON-LD, whose LiveBlogPosting stands alone or sits in an `@graph`. Their posts are the
# fixture news above, newest first, a minute apart.

# Other articles the page links to: text of the page that is no post of the live blog.
RELATED = (
    ("Explainer: what the ceasefire talks could change", f"{SITE}/explainer-talks"),
    ("Opinion: the winter ahead for the power grid", f"{SITE}/opinion-grid"),
)
# A post left in a comment of the page: not published, so no post either.
DRAFT = {"@type": "BlogPosting", "url": f"{SITE}#draft", "headline": "Draft: hold until noon"}
PAGE_TEXT = (BOILERPLATE, DRAFT["headline"], *(title for title, _ in RELATED))


def post_node(item: Item, minute: int, ids: str = "both") -> dict[str, Any]:
    """A post as JSON-LD: a BlogPosting with its `@id` and `url` (`ids`: "both", "url" or
    "none"), published `minute` minutes after PUBLISHED."""
    node: dict[str, Any] = {"@type": "BlogPosting"}
    if ids == "both":
        node["@id"] = f"{SITE}#block-{item.guid}"
    if ids in ("both", "url"):
        node["url"] = item.link
    published = (PUBLISHED + timedelta(minutes=minute)).isoformat()
    return {
        **node,
        "headline": item.title,
        "articleBody": item.summary,
        "datePublished": published,
        "dateModified": published,
    }


def live_blog(posts: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    return {
        "@type": "LiveBlogPosting",
        "@id": SITE,
        "url": SITE,
        "headline": "Live: war in Ukraine",
        "coverageStartTime": PUBLISHED.isoformat(),
        "liveBlogUpdate": posts,
    }


def liveblog_page(items: list[Item], shape: str = "plain", ids: str = "both") -> bytes:
    """The live blog page of `items` (oldest first; the page lists them newest first).

    `shape`: "plain" (the LiveBlogPosting alone), "graph" (in an @graph beside the page's
    WebPage and NewsArticle), "nested" (the WebPage's mainEntity, typed with a list), or
    "single" (one post, `liveBlogUpdate` an object, not a list)."""
    posts = [post_node(item, minute, ids) for minute, item in enumerate(items)][::-1]
    blog = live_blog(posts[0] if shape == "single" else posts)
    if shape == "graph":
        document: dict[str, Any] = {
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "WebPage", "@id": f"{SITE}#page", "name": "Live: war in Ukraine"},
                {"@type": "NewsArticle", "headline": RELATED[0][0], "url": RELATED[0][1]},
                blog,
            ],
        }
    elif shape == "nested":
        blog["@type"] = ["LiveBlogPosting", "NewsArticle"]
        document = {"@context": "https://schema.org", "@type": "WebPage", "mainEntity": blog}
    else:
        document = {"@context": "https://schema.org", **blog}
    return html_page(json_ld(document), items[::-1])


def json_ld(document: Any) -> str:
    """A JSON-LD script; `</` is written `<\\/`, as pages do, so no text ends the script."""
    text = json.dumps(document, ensure_ascii=False).replace("</", "<\\/")
    return f'<script type="application/ld+json">{text}</script>'


def html_page(scripts: str, shown: list[Item] = ()) -> bytes:
    """An HTML page with these scripts in its head, showing `shown` as its posts, amid text of
    its own that is no post."""
    articles = "".join(
        f'<article id="{escape_html(i.guid)}"><h2>{escape_html(i.title)}</h2>'
        f"<p>{escape_html(i.summary)}</p></article>"
        for i in shown
    )
    cards = "".join(
        f'<a class="card" href="{url}"><h3>{escape_html(t)}</h3></a>' for t, url in RELATED
    )
    breadcrumbs = json_ld({"@context": "https://schema.org", "@type": "BreadcrumbList"})
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>Live: war in Ukraine</title>"
        f"{breadcrumbs}{scripts}"
        # Markup in a script's text: no script and no post.
        "<script>var promo = '<div class=\"promo\"><!-- slot --></div>';</script>"
        "</head><body><h1>Live: war in Ukraine</h1>"
        f"<!-- {json_ld(live_blog([DRAFT]))} -->"
        f"<main>{articles}</main>"
        f"<aside class='support'><p>{escape_html(BOILERPLATE)}</p></aside>"
        f"<section class='related'>{cards}</section>"
        "</body></html>"
    ).encode()


_WORDS = (
    "harbour",
    "council",
    "orchard",
    "bridge",
    "ledger",
    "meadow",
    "convoy",
    "furnace",
    "quarry",
    "lantern",
    "archive",
    "basalt",
    "cellar",
    "thistle",
    "saddle",
    "glacier",
    "pylon",
    "tannery",
    "beacon",
    "granary",
    "ferry",
    "cobalt",
    "willow",
    "turbine",
    "parish",
    "kiln",
    "estuary",
    "gallery",
    "rampart",
    "citadel",
    "foundry",
    "marsh",
    "spindle",
    "vineyard",
    "causeway",
    "boiler",
    "canal",
    "barracks",
    "dune",
    "lagoon",
    "plateau",
    "hamlet",
    "mill",
    "abbey",
    "depot",
    "jetty",
    "forge",
    "terrace",
    "reservoir",
    "tunnel",
)


def unrelated_items(count: int, prefix: str = "u") -> list[Item]:
    """`count` items that share no story: each headline is its own random draw of words."""
    draw = random.Random(prefix)
    items = []
    for number in range(count):
        words = draw.sample(_WORDS, 9)
        items.append(
            Item(
                f"unrelated-{prefix}{number}",
                f"{prefix}-{number}",
                " ".join(words[:6]).capitalize(),
                " ".join(words[3:]).capitalize() + ".",
                f"{SITE}/{prefix}/{number}",
            )
        )
    return items
