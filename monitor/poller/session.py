"""What one poller's turns share: the fetcher and its limits, and the saves of polls that
brought no document, written to Redis together once per turn of the loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.core.config import Settings
from monitor.core.feedstate import FeedState
from monitor.poller.fetch import Fetcher


@dataclass(frozen=True, slots=True)
class Save:
    """What a poll without a document writes: its feed's changed state fields, its counters
    and its next due time (which ends its lease)."""

    feed: str
    fields: dict[str, str]
    counters: dict[str, int]
    due: float
    fetch_seconds: float  # how long its fetch took (the fetch duration histogram)


class Session:
    """What the polls on one event loop share: the fetcher and its limits (`concurrency`
    fetches in flight overall, `per_host` to any one host), and the saves not written yet."""

    def __init__(self, settings: Settings):
        self.fetcher = Fetcher(
            settings.fetch_timeout_seconds,
            settings.max_feed_bytes,
            settings.fetch_per_host,
            settings.fetch_concurrency,
        )
        self.overall = asyncio.Semaphore(settings.fetch_concurrency)
        self.per_host = settings.fetch_per_host
        self.hosts: dict[str, asyncio.Semaphore] = {}
        self.saves: list[Save] = []

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.fetcher.aclose()

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = urlsplit(url).hostname or ""
        per_host = self.hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with per_host, self.overall:
            yield

    def save(
        self,
        feed: str,
        state: FeedState,
        counters: dict[str, int],
        due: float,
        *,
        fetch_seconds: float,
    ) -> None:
        """Keep a poll's save for the next write (on the event loop's thread only)."""
        changes = state.take_changes()
        self.saves.append(Save(feed, changes, counters, due, fetch_seconds=fetch_seconds))

    def take_saves(self) -> list[Save]:
        saves, self.saves = self.saves, []
        return saves
