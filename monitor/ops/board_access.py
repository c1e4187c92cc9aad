"""Who may look at the board (board.py): with NEWSMON_VIEW_TOKEN or NEWSMON_API_TOKEN set,
a request carrying either (`Authorization: Bearer`, or the cookie that opening `/?token=T`
once sets: HttpOnly, SameSite=Strict, 30 days); with neither set, only this machine
(`from_this_machine`), by a name of this machine (`names_this_machine`). The cookie holds a
digest of the token, not the token: a board cookie that leaks opens the board, never the
API. Wrong tokens count towards the client's FailureThrottle (429). Every response forbids
inline script and every origin but this one (Content-Security-Policy, HEADERS), and the
HTML is rendered on the server alone with feed text escaped, so a headline is text
wherever it shows.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from monitor.ops.auth import (
    API_TOKEN_ENV,
    VIEW_TOKEN_ENV,
    FailureThrottle,
    bearer_matches,
    client_address,
    token_from_env,
)

COOKIE = "newsmon_board"
COOKIE_MAX_AGE = 30 * 86400
COOKIE_CONTEXT = b"newsmon board cookie"
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the first URL may carry ?token=
    "cache-control": "no-store",
}

log = structlog.get_logger()


def cookie_for(token: str) -> str:
    return hmac.new(token.encode(), COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# serve.py keeps the socket's peer here before uvicorn's proxy-headers step rewrites
# scope["client"] from X-Forwarded-For, which any client can send.
PEER_SCOPE_KEY = "newsmon.peer"
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
LOOPBACK_NAMES = ("localhost", "localhost.")


def from_this_machine(request: Request) -> bool:
    """Whether a request without a token may see the board: its TCP peer is a loopback
    address, and no proxy says it relayed it.

    Decided from the socket's peer only, never from what a proxy header claims (with
    FORWARDED_ALLOW_IPS='*', `X-Forwarded-For: 127.0.0.1` from anywhere would do): only
    the kernel knows where a connection comes from. A request carrying a forwarding header
    is not this machine's, even from a loopback peer: a reverse proxy on this machine
    relays every client of the world from 127.0.0.1. Binding to a public address without
    a token is still allowed (the Dockerfile and Procfile do it for /healthz and /metrics);
    the board then answers only to this machine, and says which variable opens it."""
    peer = request.scope.get(PEER_SCOPE_KEY)
    if not (peer and is_loopback(peer[0])):
        return False
    return not any(name in request.headers for name in FORWARDING_HEADERS)


def host_name(host_header: str) -> str:
    """The name of a Host header, without its port ("[::1]:8000" -> "::1")."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def names_this_machine(request: Request) -> bool:
    """Whether the Host header names this machine (localhost or a loopback address). A page
    of another site can point its own name at 127.0.0.1 (DNS rebinding) and then read what
    its script fetches, so without a token only these names are answered."""
    name = host_name(request.headers.get("host", "")).lower()
    return name in LOOPBACK_NAMES or is_loopback(name)


@dataclass(frozen=True)
class Access:
    """The tokens that open the board: the viewer's and the API's, whichever are set."""

    tokens: tuple[str, ...]
    throttle: FailureThrottle

    @classmethod
    def from_env(cls, throttle: FailureThrottle) -> Access:
        found = (token_from_env(VIEW_TOKEN_ENV), token_from_env(API_TOKEN_ENV))
        return cls(tuple(token for token in found if token), throttle)

    def token_matches(self, presented: str) -> bool:
        return bearer_matches(f"Bearer {presented}", self.tokens)

    def refusal(self, request: Request) -> Response | None:
        """None when `request` may see the board, else the answer that says why not."""
        if not self.tokens:
            if not from_this_machine(request):
                return self.refuse(
                    request,
                    403,
                    "not loopback",
                    f"The board answers only on this machine until a token is set: set "
                    f"{VIEW_TOKEN_ENV} (or {API_TOKEN_ENV}) for newsmon serve, then open "
                    f"/?token=... once.\n",
                )
            if names_this_machine(request):
                return None
            return self.refuse(
                request,
                400,
                "host not this machine",
                f"Host {request.headers.get('host', '')!r} is not this machine: without a "
                f"token the board answers only to localhost, 127.0.0.1 or [::1]. Open it "
                f"by one of those, or set {VIEW_TOKEN_ENV} for newsmon serve.\n",
            )
        if waited := self.throttled(request):
            return waited
        if bearer_matches(request.headers.get("authorization"), self.tokens):
            return None
        cookie = request.cookies.get(COOKIE, "")
        digests = tuple(cookie_for(token) for token in self.tokens)
        if cookie and bearer_matches(f"Bearer {cookie}", digests):
            return None
        return self.refuse(
            request,
            401,
            "no valid token",
            f"The board needs {VIEW_TOKEN_ENV} (or {API_TOKEN_ENV}): open /?token=... once "
            f"in a browser, or send Authorization: Bearer ...\n",
        )

    def throttled(self, request: Request) -> Response | None:
        """The 429 for a client that sent too many wrong tokens of late, else None."""
        client = client_address(request)
        if (wait := self.throttle.retry_after(client)) is None:
            return None
        log.info("board.denied", path=request.url.path, client=client, reason="throttled")
        return PlainTextResponse(
            f"Too many wrong tokens from {client}; try again in {wait} s.\n",
            status_code=429,
            headers={**HEADERS, "retry-after": str(wait)},
        )

    def refuse(self, request: Request, status: int, reason: str, message: str) -> Response:
        client = client_address(request)
        log.info("board.denied", path=request.url.path, client=client, reason=reason)
        if status == 401:
            self.throttle.failed(client)
        headers = {**HEADERS, **({"www-authenticate": "Bearer"} if status == 401 else {})}
        return PlainTextResponse(message, status_code=status, headers=headers)
