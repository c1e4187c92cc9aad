"""`newsmon check --online`: every feed fetched once and parsed, as the poller would, and
what each answered reported. A dry run: nothing is enqueued or alerted, and no feed's state
is read or written (no conditional request, no Redis at all)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.core.config import Config
from monitor.core.models import Feed
from monitor.core.redact import redact_text, redact_url
from monitor.poller.fetch import Fetcher, FetchError
from monitor.poller.parse import ParseError, parse_feed


@dataclass(frozen=True)
class Answer:
    feed: str
    status: int  # the HTTP status; 0 when the server did not answer
    items: int | None = None  # None when no feed was read
    kind: str = ""  # RSS, Atom, JSON Feed, live blog
    problem: str = ""  # why no feed was read, or that the feed moved

    @property
    def ok(self) -> bool:
        return self.items is not None


def check_online(config: Config) -> list[Answer]:
    """What each feed of `config` answers now, in feeds.toml's order."""
    return asyncio.run(_check_all(config))


async def _check_all(config: Config) -> list[Answer]:
    settings = config.settings
    fetcher = Fetcher(
        settings.fetch_timeout_seconds,
        settings.max_feed_bytes,
        settings.fetch_per_host,
        settings.fetch_concurrency,
    )
    # The poller's limits: so many fetches at once, so many to any one host.
    overall = asyncio.Semaphore(settings.fetch_concurrency)
    hosts = {urlsplit(feed.url).hostname for feed in config.feeds}
    per_host = {host: asyncio.Semaphore(settings.fetch_per_host) for host in hosts}

    async def check(feed: Feed) -> Answer:
        async with per_host[urlsplit(feed.url).hostname], overall:
            return await _check(fetcher, feed)

    try:
        return await asyncio.gather(*(check(feed) for feed in config.feeds))
    finally:
        await fetcher.aclose()


async def _check(fetcher: Fetcher, feed: Feed) -> Answer:
    try:
        fetched = await fetcher.fetch(feed.url)
    except FetchError as exc:
        return Answer(feed.name, exc.status, problem=str(exc))
    body = fetched.body or b""
    try:
        parsed = await asyncio.to_thread(parse_feed, feed, body, fetched.content_type)
    except ParseError as exc:
        return Answer(feed.name, fetched.status, problem=str(exc))
    except Exception as exc:  # as the poller: one feed's surprise is its own failure
        reason = redact_text(f"unexpected {type(exc).__name__}: {exc}")
        return Answer(feed.name, fetched.status, problem=reason)
    moved = f"moved for good to {redact_url(fetched.moved_to)}" if fetched.moved_to else ""
    return Answer(feed.name, fetched.status, len(parsed.entries), parsed.kind, moved)
