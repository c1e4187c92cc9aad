"""A request's body read with a cap on its size and a deadline, for the routes of
`newsmon serve` that take one (a WebSub push, an API call): anyone may call them, so a
client must not hold memory or a connection longer than such a body needs."""

from __future__ import annotations

import anyio
from starlette.requests import ClientDisconnect, Request


class BodyRefused(Exception):
    """A body not read: the HTTP status to answer (413, 408 or 400) and why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


async def read_capped(request: Request, *, cap: int, seconds: float) -> bytes:
    """The body, at most `cap` bytes, sent within `seconds`. The size is counted as it
    streams in, since a content-length can be absent (chunked) and is only the client's
    word; a declared length over the cap is refused before a byte is read."""
    too_large = BodyRefused(413, f"over the {cap}-byte cap")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks, size = [], 0
    try:
        with anyio.fail_after(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(408, f"not sent in {seconds} s") from None
    except ClientDisconnect:
        raise BodyRefused(400, "not sent whole") from None
    return b"".join(chunks)
