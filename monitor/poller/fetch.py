"""Fetch step: one conditional GET of a feed, with timeouts and a size cap.

Returns the body (or "not modified") and the validators to send next time. Every way a
fetch can go wrong becomes a FetchError with a reason an operator can act on. The client is
asyncio-based, so one poller process keeps hundreds of fetches in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from monitor.core import PROJECT_URL, __version__
from monitor.core.http import async_http_client, blocked_reason, retry_after_seconds

USER_AGENT = f"newsmon/{__version__} (feed monitor; +{PROJECT_URL})"
MAX_REDIRECTS = 5


class FetchError(Exception):
    """The feed could not be fetched; str(error) is the reason logged with `feed.failed`.
    `retry_after` is set when the server asked us to come back later (429/503 Retry-After)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    body: bytes | None  # None on 304 Not Modified
    etag: str | None
    last_modified: str | None
    content_type: str
    moved_to: str | None = None  # the final URL, when every redirect on the way was permanent
    max_age: float | None = None  # seconds the server says the body stays fresh


class Fetcher:
    """A pooled asyncio HTTP client for feeds; create and use it inside one event loop."""

    def __init__(self, timeout_seconds: float, max_bytes: int):
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self.client = async_http_client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={
                "user-agent": USER_AGENT,
                "accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
            },
        )

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        async with self._bounded():
            return await self._fetch(url, etag, last_modified)

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {}
        if etag:
            headers["if-none-match"] = etag
        if last_modified:
            headers["if-modified-since"] = last_modified
        async with self.client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304:
                return FetchResult(
                    304, None, etag, last_modified, "", _moved_to(response), _max_age(response)
                )
            if response.status_code != 200:
                retry_after = None
                if response.status_code in (429, 503):
                    retry_after = retry_after_seconds(
                        response.headers.get("retry-after"), time.time()
                    )
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                raise FetchError(reason, retry_after)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchError(f"body of {declared} bytes exceeds the {self.max_bytes}-byte cap")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"body exceeds the {self.max_bytes}-byte cap")
                chunks.append(chunk)
            return FetchResult(
                200,
                b"".join(chunks),
                response.headers.get("etag"),
                response.headers.get("last-modified"),
                response.headers.get("content-type", ""),
                _moved_to(response),
                _max_age(response),
            )

    async def post_form(self, url: str, form: dict[str, str]) -> httpx.Response:
        """A form POST through the same guarded client (WebSub subscription requests)."""
        async with self._bounded():
            return await self.client.post(url, data=form, follow_redirects=False)

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """Bounds a whole request in time and turns every way it fails into a FetchError.

        httpx's timeouts bound each read; this one bounds the whole request, so a server that
        drips one byte at a time cannot hold a fetch slot for ever."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                yield
        except TimeoutError:
            raise FetchError(f"took longer than {self.timeout_seconds:g}s") from None
        except httpx.TooManyRedirects:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise FetchError(blocked_reason(exc) or f"{type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        await self.client.aclose()


def _moved_to(response: httpx.Response) -> str | None:
    """301 and 308 say the feed has moved for good; 302 and 307 say nothing of the kind."""
    if response.history and all(r.status_code in (301, 308) for r in response.history):
        return str(response.url)
    return None


def _max_age(response: httpx.Response) -> float | None:
    """Cache-Control s-maxage, else max-age, in seconds; None when absent or unreadable."""
    directives = {}
    for part in response.headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        directives[name.lower()] = value.strip('"')
    for name in ("s-maxage", "max-age"):
        if directives.get(name, "").isdigit():
            return float(directives[name])
    return None
