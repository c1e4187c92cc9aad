"""Feed discovery, as feed readers do it: the feeds a page advertises with
`<link rel="alternate" type="application/rss+xml|application/atom+xml|application/feed+json"
href="...">`, or the page itself when it is a feed.

The page is fetched through newsmon's guarded client (monitor/core/http.py: no loopback or
private address unless allowed), with the poller's timeout and size cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from monitor.core.config import Settings
from monitor.core.config.values import http_url
from monitor.core.http import blocked_reason, http_client
from monitor.core.models import Feed
from monitor.core.redact import redact_text
from monitor.poller.fetch import MAX_REDIRECTS, USER_AGENT
from monitor.poller.parse import ParseError, parse_feed

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
}
HTML_TYPES = ("text/html", "application/xhtml+xml")


class DiscoveryError(Exception):
    """The page could not be read; str(error) says why."""


@dataclass(frozen=True)
class FoundFeed:
    title: str
    kind: str  # RSS, Atom, JSON Feed or live blog
    url: str


@dataclass(frozen=True)
class Page:
    url: str  # after redirects: relative links resolve against it
    content_type: str
    body: bytes

    def text(self) -> str:
        charset = httpx.Headers({"content-type": self.content_type}).encoding or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


def discover(url: str, settings: Settings) -> list[FoundFeed]:
    """The feeds at `url`: itself if it is a feed (a live blog page is one), and, when it is
    a page or no feed, those it links to."""
    page = fetch_page(url, settings)
    found = []
    try:
        parsed = parse_feed(Feed("discovered", page.url, 0), page.body, page.content_type)
    except ParseError:
        pass  # no feed itself: a page, perhaps linking to some
    else:
        found.append(FoundFeed(parsed.title, parsed.kind, page.url))
    if page.content_type.lower().startswith(HTML_TYPES) or not found:
        found += [link for link in feed_links(page.text(), page.url) if link.url != page.url]
    return found


def feed_links(html: str, page_url: str) -> list[FoundFeed]:
    """The feeds an HTML page links to, their relative URLs resolved against its `<base>`
    (itself resolved against `page_url`), else against `page_url`; each URL once."""
    links = _Links()
    links.feed(html)
    links.close()
    base = urljoin(page_url, links.base) if links.base else page_url
    found: dict[str, FoundFeed] = {}
    for title, kind, href in links.feeds:
        url = urljoin(base, href)
        if not http_url(url) and url not in found:
            found[url] = FoundFeed(title, kind, url)
    return list(found.values())


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None  # the first <base href>, as HTML takes it
        self.feeds: list[tuple[str, str, str]] = []  # title, kind, href

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        href = attributes.get("href", "").strip()
        if tag == "base" and href and self.base is None:
            self.base = href
        elif tag == "link" and href and "alternate" in attributes.get("rel", "").lower().split():
            kind = FEED_TYPES.get(attributes.get("type", "").split(";")[0].strip().lower())
            if kind:
                self.feeds.append((" ".join(attributes.get("title", "").split()), kind, href))


def fetch_page(url: str, settings: Settings) -> Page:
    """A GET of `url`, following up to MAX_REDIRECTS redirects; the body at most
    `settings.max_feed_bytes`, the whole request at most `settings.fetch_timeout_seconds`."""
    seconds = settings.fetch_timeout_seconds
    deadline = time.monotonic() + seconds
    client = http_client(
        headers={"user-agent": USER_AGENT},
        timeout=httpx.Timeout(seconds, connect=min(10.0, seconds)),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
    )
    try:
        with client, client.stream("GET", url) as response:
            if response.status_code != 200:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                raise DiscoveryError(reason)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > settings.max_feed_bytes:
                    raise DiscoveryError(f"body exceeds the {settings.max_feed_bytes}-byte cap")
                if time.monotonic() > deadline:
                    raise DiscoveryError(f"took longer than {seconds:g}s")
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "")
            return Page(str(response.url), content_type, b"".join(chunks))
    except httpx.HTTPError as exc:
        reason = blocked_reason(exc) or f"{type(exc).__name__}: {exc}"
        raise DiscoveryError(redact_text(reason)) from None
