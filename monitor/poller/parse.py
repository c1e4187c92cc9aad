"""Parse step: feed bytes -> Entry objects, plus what the feed says about itself (its RSS
`<ttl>`, its WebSub hub). RSS and Atom through feedparser, JSON Feed here, and an HTML page
by the live blog it carries (liveblog.py), one item per post.

An entry's key (what makes it "the same item" inside its feed) is its guid, else its link,
else a hash of its title and content; the choice is made per document (see _key_field).
Dates become aware UTC datetimes; a date in the future is clamped to now so it cannot sort
ahead of everything.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.core.models import Entry, Feed, FeedKind
from monitor.poller.liveblog import NoLiveBlog, read_live_blog

MAX_TTL_SECONDS = 24 * 3600
HTML_PAGE = "not a feed: the server returned an HTML page"
NO_LIVE_BLOG = "not a live blog: the page carries no schema.org LiveBlogPosting"
FEED_ROOTS = (b"<rss", b"<feed", b"<rdf:rdf")


class ParseError(Exception):
    """The body is not a feed newsmon can read; str(error) is the reason logged."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    entries: list[Entry]
    kind: str = ""  # what the document was: RSS, Atom, JSON Feed or live blog
    title: str = ""
    ttl_seconds: float | None = None  # RSS <ttl>: poll no more often than this
    hub: str | None = None  # the WebSub hub the feed advertises ...
    topic: str | None = None  # ... and the URL (rel="self") to subscribe to there


def parse_feed(
    feed: Feed, body: bytes, content_type: str = "", now: datetime | None = None
) -> ParsedFeed:
    now = now or datetime.now(UTC)
    stripped = body.lstrip()
    about: dict[str, Any] = {}
    if feed.kind is FeedKind.LIVEBLOG:
        items, about = _live_blog(body, feed.url, NO_LIVE_BLOG)
    elif "json" in content_type or stripped.startswith(b"{"):
        items, about = _json_feed(stripped)
    elif _is_html_page(stripped):
        items, about = _live_blog(body, feed.url, HTML_PAGE)
    else:
        items, about = _xml_feed(body, content_type)
    field = _key_field(items)
    return ParsedFeed([_entry(feed, item, field, now) for item in items], **about)


LIVE_BLOG = "live blog"
XML_KINDS = {"rss": "RSS", "atom": "Atom", "cdf": "CDF"}  # feedparser's versions: rss20, atom10


def _key_field(items: list[dict]) -> str:
    """Which field identifies this feed's items: guid, else link, else a content hash.

    Decided per document, not per item: a feed whose guids (or links) repeat across different
    items, or are missing on most of them, cannot be trusted to tell items apart by them.
    """
    for field in ("guid", "link"):
        values = [item[field] for item in items if item[field]]
        contents = {(item[field], item["title"], item["summary"]) for item in items if item[field]}
        distinct_items_per_value = len(contents) / max(len(set(values)), 1)
        if len(values) * 2 > len(items) and distinct_items_per_value == 1:
            return field
    return "hash"


def _xml_feed(body: bytes, content_type: str) -> tuple[list[dict], dict]:
    parsed = feedparser.parse(
        body, response_headers={"content-type": content_type or "application/xml"}
    )
    if not parsed.version and not parsed.entries:
        reason = parsed.get("bozo_exception") or "no RSS, Atom or JSON Feed structure found"
        raise ParseError(f"not a feed: {reason}")
    items = []
    for item in parsed.entries:
        content = item.get("content") or []
        summary = item.get("summary") or (content[0].get("value", "") if content else "")
        published = item.get("published_parsed") or item.get("updated_parsed")
        items.append(
            {
                "guid": item.get("id") or "",
                "link": item.get("link") or "",
                "title": item.get("title") or "",
                "summary": summary,
                "published": datetime.fromtimestamp(calendar.timegm(published), UTC)
                if published
                else None,
            }
        )
    links = {link.get("rel"): link.get("href") for link in parsed.feed.get("links", [])}
    ttl = str(parsed.feed.get("ttl", "")).strip()
    version = parsed.version or ""
    about = {
        "kind": next((name for prefix, name in XML_KINDS.items() if version.startswith(prefix)),
                     version or "unknown"),
        "title": " ".join(str(parsed.feed.get("title") or "").split()),
        "ttl_seconds": min(int(ttl) * 60, MAX_TTL_SECONDS) if ttl.isdigit() else None,
        "hub": links.get("hub"),
        "topic": links.get("self"),
    }  # fmt: skip
    return items, about


def _json_feed(body: bytes) -> tuple[list[dict], dict]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not a feed: invalid JSON ({exc})") from None
    if not isinstance(document, dict) or "jsonfeed.org/version" not in str(
        document.get("version", "")
    ):
        raise ParseError("not a feed: JSON without a JSON Feed 'version'")
    items = []
    for item in document.get("items") or []:
        if not isinstance(item, dict):
            continue
        items.append(
            {
                "guid": str(item.get("id") or ""),
                "link": str(item.get("url") or ""),
                "title": str(item.get("title") or ""),
                "summary": str(
                    item.get("summary")
                    or item.get("content_html")
                    or item.get("content_text")
                    or ""
                ),
                "published": _iso_date(item.get("date_published") or item.get("date_modified")),
            }
        )
    hubs = [h for h in document.get("hubs") or [] if isinstance(h, dict)]
    websub = [
        str(h["url"]) for h in hubs if str(h.get("type", "")).lower() == "websub" and h.get("url")
    ]
    about = {
        "kind": "JSON Feed",
        "title": " ".join(str(document.get("title") or "").split()),
        "hub": websub[0] if websub else None,
        "topic": document.get("feed_url") or None,
    }
    return items, about


def _is_html_page(body: bytes) -> bool:
    """An HTML page, not a feed: its head opens <html> (or its doctype) before any feed's root
    element, so an RSS item quoting HTML near the top is still read as RSS."""
    head = body[:1024].lower()
    html = min(
        (i for i in (head.find(b"<!doctype html"), head.find(b"<html")) if i >= 0), default=-1
    )
    return html >= 0 and not any(0 <= head.find(root) < html for root in FEED_ROOTS)


def _live_blog(body: bytes, page_url: str, missing: str) -> tuple[list[dict], dict[str, Any]]:
    """The posts of the live blog a page carries, as items, and what it says of itself;
    `missing` is the reason of the error when it carries none."""
    try:
        blog = read_live_blog(body)
    except NoLiveBlog as exc:
        raise ParseError(f"{missing} ({exc})" if str(exc) else missing) from None
    items = []
    for post in blog.posts:
        url, title = _string(post.get("url")), _string(post.get("headline"))
        published = _string(post.get("datePublished"))
        items.append(
            {
                # Its own id, else its own address, else what it says and when.
                "guid": _string(post.get("@id")) or url or f"{title} {published}".strip(),
                "link": _post_link(page_url, url),
                "title": title,
                "summary": _string(post.get("articleBody")) or _string(post.get("description")),
                "published": _iso_date(published) or _iso_date(post.get("dateModified")),
            }
        )
    return items, {"kind": LIVE_BLOG, "title": blog.title}


def _string(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _post_link(page_url: str, url: str) -> str:
    """A post's own address, resolved against its page's; the page's when the post has none,
    or one that is no http(s) URL (a `javascript:` link must not reach a subscriber)."""
    try:
        link = urljoin(page_url, url)
        usable = urlsplit(link).scheme in ("http", "https")
    except ValueError:  # an unbalanced "[" in a host
        return page_url
    return link if url and usable else page_url


def _iso_date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # No timezone means UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _entry(feed: Feed, item: dict, key_field: str, now: datetime) -> Entry:
    content_hash = hashlib.sha1(f"{item['title']}\0{item['summary']}".encode()).hexdigest()
    key = (item[key_field] if key_field != "hash" else "") or "sha1:" + content_hash
    published = item["published"]
    if published is not None and published > now:
        published = now
    return Entry(
        id=Entry.make_id(feed.name, key),
        feed_name=feed.name,
        feed_url=feed.url,
        key=key,
        title=item["title"],
        link=item["link"],
        summary=item["summary"],
        published=published,
        fetched=now,
    )
