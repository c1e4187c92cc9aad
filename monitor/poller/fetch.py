"""Fetch step: one conditional GET of a feed, with timeouts and a size cap.

Returns the body (or "not modified") and the validators to send next time. Every way a
fetch can go wrong becomes a FetchError with a reason an operator can act on. The client is
asyncio-based, so one poller process keeps hundreds of fetches in flight.

Requests go straight to the transport (monitor.core.http.HostPools), not through
httpx.AsyncClient: a feed fetch needs a GET, redirects and the caps below, and the client's
per-request work (building the request, its cookie jar) was a quarter of a fetch's CPU. No
cookie jar also means no cookie one feed's server sets goes back to it with the next fetch.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from monitor.core import PROJECT_URL, __version__
from monitor.core.config import Settings
from monitor.core.http import HostPools, blocked_reason, retry_after_seconds
from monitor.core.redact import redact_text

USER_AGENT = f"newsmon/{__version__} (feed monitor; +{PROJECT_URL})"
HEADERS = (
    ("user-agent", USER_AGENT),
    (
        "accept",
        "application/rss+xml, application/atom+xml, application/feed+json, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
    ),
    ("accept-encoding", "gzip, deflate"),
)
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """The feed could not be fetched; str(error) is the reason logged with `feed.failed`,
    kept as the feed's last_error and shown by `newsmon feeds` and the board. It is redacted
    here, where it is made: httpx's messages may quote a URL (a redirect's Location) with
    its credentials. `retry_after` is set when the server asked us to come back later
    (429/503 Retry-After); `status` when the server answered (an error status, or a 200
    whose body was refused)."""

    def __init__(self, reason: str, retry_after: float | None = None, status: int = 0):
        super().__init__(redact_text(reason))
        self.retry_after = retry_after
        self.status = status


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
    """Feed requests over pooled connections, `per_host` per host for the `hosts` hosts used
    last (HostPools); create and use it inside one event loop."""

    def __init__(
        self,
        timeout_seconds: float,
        max_bytes: int,
        per_host: int = Settings.fetch_per_host,
        hosts: int = Settings.fetch_concurrency,
    ):
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self.transport = HostPools(per_host, hosts)
        timeout = httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds))
        self.extensions = {"timeout": timeout.as_dict()}

    async def fetch(
        self, url: str, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        headers = list(HEADERS)
        if etag:
            headers.append(("if-none-match", etag))
        if last_modified:
            headers.append(("if-modified-since", last_modified))
        async with self._bounded():
            response, moved_to = await self._get(httpx.URL(url), headers)
            try:
                return await self._result(response, etag, last_modified, moved_to)
            finally:
                await response.aclose()

    async def post_form(self, url: str, form: dict[str, str]) -> int:
        """A form POST through the same pools (WebSub subscription requests); the status of
        the answer, whose body is not read."""
        async with self._bounded():
            request = httpx.Request(
                "POST",
                url,
                headers={"user-agent": USER_AGENT},
                data=form,
                extensions=self.extensions,
            )
            response = await self.transport.handle_async_request(request)
            await response.aclose()
            return response.status_code

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def _get(
        self, url: httpx.URL, headers: list[tuple[str, str]]
    ) -> tuple[httpx.Response, str | None]:
        """The response to a GET of `url` after up to MAX_REDIRECTS redirects (its body still
        to read), and its URL when every redirect on the way was permanent (301 and 308 say
        the feed moved for good; 302 and 307 say nothing of the kind).

        Credentials in the URL go as Basic auth, and only to the origin they came with (or
        its https upgrade), as httpx's client sends them."""
        credentials = [("authorization", _basic_auth(url))] if url.userinfo else []
        redirects = []
        for _ in range(MAX_REDIRECTS + 1):
            request = httpx.Request(
                "GET", url, headers=headers + credentials, extensions=self.extensions
            )
            response = await self.transport.handle_async_request(request)
            response.request = request
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or location is None:
                moved = redirects and all(status in (301, 308) for status in redirects)
                return response, str(request.url) if moved else None
            await response.aclose()
            redirects.append(response.status_code)
            url = request.url.join(location)
            if not _same_origin(request.url, url):
                credentials = []
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    async def _result(
        self,
        response: httpx.Response,
        etag: str | None,
        last_modified: str | None,
        moved_to: str | None,
    ) -> FetchResult:
        if response.status_code == 304:
            # Read to its end (a 304 has no body), or its connection is closed, not reused.
            async for _ in response.aiter_raw():
                pass
            return FetchResult(304, None, etag, last_modified, "", moved_to, _max_age(response))
        if response.status_code != 200:
            retry_after = None
            if response.status_code in (429, 503):
                retry_after = retry_after_seconds(response.headers.get("retry-after"), time.time())
            reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
            raise FetchError(reason, retry_after, response.status_code)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchError(
                f"body of {declared} bytes exceeds the {self.max_bytes}-byte cap", status=200
            )
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"body exceeds the {self.max_bytes}-byte cap", status=200)
            chunks.append(chunk)
        return FetchResult(
            200,
            b"".join(chunks),
            response.headers.get("etag"),
            response.headers.get("last-modified"),
            response.headers.get("content-type", ""),
            moved_to,
            _max_age(response),
        )

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
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out ({type(exc).__name__})") from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid URL: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(blocked_reason(exc) or f"{type(exc).__name__}: {exc}") from None


def _basic_auth(url: httpx.URL) -> str:
    userpass = f"{url.username}:{url.password}".encode()
    return "Basic " + base64.b64encode(userpass).decode()


def _same_origin(sent_to: httpx.URL, redirected_to: httpx.URL) -> bool:
    """The same scheme, host and port, or the same host moved from http to https on the
    default ports (which httpx.URL leaves out: their `port` is None)."""
    same = sent_to.scheme == redirected_to.scheme and sent_to.port == redirected_to.port
    upgrade = sent_to.scheme == "http" and redirected_to.scheme == "https"
    default_ports = sent_to.port is None and redirected_to.port is None
    return sent_to.host == redirected_to.host and (same or (upgrade and default_ports))


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
