"""Fetch step: one conditional GET of a feed, with timeouts and a size cap.

Returns the body (or "not modified") and the validators to send next time. Every way a
fetch can go wrong becomes a FetchError with a reason an operator can act on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from monitor import __version__
from monitor.netguard import blocked_reason, http_client

USER_AGENT = f"newsmon/{__version__} (feed monitor)"
MAX_REDIRECTS = 5


class FetchError(Exception):
    """The feed could not be fetched; str(error) is the reason logged with `feed.failed`."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: int
    body: bytes | None  # None on 304 Not Modified
    etag: str | None
    last_modified: str | None
    content_type: str


class Fetcher:
    """A pooled HTTP client for feeds; safe to share between threads."""

    def __init__(self, timeout_seconds: float, max_bytes: int):
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self.client = http_client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={
                "user-agent": USER_AGENT,
                "accept": "application/rss+xml, application/atom+xml, application/feed+json, "
                "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
            },
        )

    def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        headers = {}
        if etag:
            headers["if-none-match"] = etag
        if last_modified:
            headers["if-modified-since"] = last_modified
        # httpx's timeouts bound each read; the deadline bounds the whole download, so a
        # server that drips one byte at a time cannot hold a fetch slot for ever.
        deadline = time.monotonic() + self.timeout_seconds
        try:
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return FetchResult(304, None, etag, last_modified, "")
                if response.status_code != 200:
                    raise FetchError(
                        f"HTTP {response.status_code} {response.reason_phrase}".strip()
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(
                        f"body of {declared} bytes exceeds the {self.max_bytes}-byte cap"
                    )
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FetchError(f"body exceeds the {self.max_bytes}-byte cap")
                    if time.monotonic() > deadline:
                        raise FetchError(f"download took longer than {self.timeout_seconds:g}s")
                    chunks.append(chunk)
                return FetchResult(
                    200,
                    b"".join(chunks),
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                    response.headers.get("content-type", ""),
                )
        except httpx.TooManyRedirects:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects") from None
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise FetchError(blocked_reason(exc) or f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self.client.close()
