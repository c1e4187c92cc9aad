"""The live board at `/` of `newsmon serve`: the latest stories, feeds, subscriptions, queues
and workers, on one read-only page.

GET /                 the page, rendered here with everything escaped; `?topic=T` filters
                      the stories. The page's script then polls:
GET /board/data.json  the same figures as JSON (`read_board`), every few seconds
GET /board/board.js, /board/board.css   the page's script and style (package data)

Who may look: with NEWSMON_VIEW_TOKEN or NEWSMON_API_TOKEN set, a request carrying either
(`Authorization: Bearer`, or the cookie that opening `/?token=T` once sets: HttpOnly,
SameSite=Strict, 30 days); with neither set, only this machine (`from_this_machine`), by a
name of this machine (`names_this_machine`). The cookie holds a digest of the token, not
the token: a board cookie that leaks opens the board, never the API. Wrong tokens count
towards the client's FailureThrottle (429). Every response forbids inline script and every
origin but this one (Content-Security-Policy), and the script writes feed text with
textContent only, so a headline is text wherever it shows.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from string import Template
from typing import Any

import redis
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.core.config import Config
from monitor.ops import admin, stats
from monitor.ops.auth import (
    API_TOKEN_ENV,
    VIEW_TOKEN_ENV,
    FailureThrottle,
    bearer_matches,
    client_address,
    token_from_env,
)
from monitor.ops.redis_server import durability
from workers.pipeline.stories import Stories

STORIES_SHOWN = 50
REFRESH_SECONDS = 3
COOKIE = "newsmon_board"
COOKIE_MAX_AGE = 30 * 86400
COOKIE_CONTEXT = b"newsmon board cookie"
ASSETS = files("monitor.ops") / "board_assets"
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the first URL may carry ?token=
    "cache-control": "no-store",
}

log = structlog.get_logger()


def read_board(connection: redis.Redis, config: Config, topic: str | None) -> dict[str, Any]:
    """Everything the board shows, as JSON-ready data."""
    window_seconds = config.settings.dedupe_window_seconds
    stories = Stories(connection, window_seconds).latest(STORIES_SHOWN, topic)
    snap = stats.snapshot(connection, config)
    last_hour = stats.subscriptions_last_hour(connection, snap["subscriptions"])
    return {
        "generated_at": time.time(),
        "topic": topic,
        "stories": [asdict(story) for story in stories],
        "feeds": [row for row, _ in admin.feed_rows(connection, config)],
        "subscriptions": [
            {
                "id": subscription_id,
                "status": view["status"],
                "failing_since": view["failing_since"],
                "disabled_reason": view["disabled_reason"],
                "last_hour": last_hour[subscription_id],
                "dead_letters": view["dead_letters"],
            }
            for subscription_id, view in snap["subscriptions"].items()
        ],
        "queues": snap["queues"],
        "per_minute": snap["per_minute"],
        "pollers": snap["pollers"],
        "poller_heartbeat_age_seconds": snap["poller_heartbeat_age_seconds"],
        "workers": snap["workers"],
        "redis_warning": durability(connection).warning(),
    }


# The page. Every value a feed, a config or Redis controls goes through escape(); the
# script (board.js) renders the same cells from /board/data.json with textContent.


def _clock(unix_time: float | None, now: float) -> str:
    """UTC: the time of day when it is today, else the date too (board.js: clock)."""
    if unix_time is None:
        return "-"
    moment = datetime.fromtimestamp(unix_time, UTC)
    same_day = moment.date() == datetime.fromtimestamp(now, UTC).date()
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M")


def _duration(seconds: float) -> str:
    """A short span (board.js: duration)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cell(text: object, css: str = "") -> str:
    attribute = f' class="{escape(css)}"' if css else ""
    return f"<td{attribute}>{escape(str(text))}</td>"


def _badge(state: str) -> str:
    return f'<span class="badge {escape(state)}">{escape(state.replace("_", " "))}</span>'


def safe_link(url: str) -> str | None:
    """The link when it is http(s), the only schemes the board makes clickable. A plain
    prefix test: nothing to parse, so nothing a browser could read another way."""
    return url if url[:8].lower().startswith(("http://", "https://")) else None


def render_story(story: dict[str, Any], now: float) -> str:
    title = escape(story["title"] or "(no headline)")
    link = safe_link(story["link"])
    headline = (
        f'<a href="{escape(link)}" rel="noopener noreferrer" target="_blank">{title}</a>'
        if link
        else title
    )
    topics = "".join(f'<span class="topic">{escape(t)}</span>' for t in story["topics"])
    return (
        f'<tr data-story="{escape(story["id"])}">'
        + _cell(_clock(story["first_seen"], now), "time")
        + _cell(_clock(story["last_seen"], now), "time")
        + f'<td class="headline">{headline}</td>'
        + _cell(", ".join(story["outlets"]), "outlets")
        + f'<td class="topics">{topics or "-"}</td></tr>'
    )


def _next_poll(seconds: float | None) -> str:
    """board.js: nextPoll"""
    if seconds is None:
        return "-"
    return "now" if seconds < 1 else f"in {_duration(seconds)}"


def _unix(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def render_feed(row: dict[str, Any], now: float) -> str:
    return (
        "<tr>"
        + _cell(row["feed"])
        + f"<td>{_badge(row['health'])}</td>"
        + _cell(row["last_status"] or "-")
        + _cell(_clock(_unix(row["last_fetched"]), now), "time")
        + _cell(_next_poll(row["next_due_in_seconds"]), "time")
        + _cell(row["errors"], "number")
        + _cell(row["last_error"] or "", "error")
        + "</tr>"
    )


def render_subscription(row: dict[str, Any], now: float) -> str:
    status = _badge(row["status"])
    if row["disabled_reason"]:
        status += f" {escape(row['disabled_reason'])}"
    counts = "".join(_cell(row["last_hour"][k], "number") for k in stats.SUBSCRIPTION_COUNTERS)
    return (
        "<tr>"
        + _cell(row["id"])
        + f"<td>{status}</td>"
        + counts
        + _cell(row["dead_letters"], "number")
        + _cell(_clock(row["failing_since"], now), "time")
        + "</tr>"
    )


def render_glance(board: dict[str, Any]) -> str:
    """Cards of (label, figure, note) (board.js: glance)."""
    beat = board["poller_heartbeat_age_seconds"]
    rates = board["per_minute"]
    items = [
        (
            "pollers",
            str(board["pollers"]),
            "none beat in the last minute" if beat is None else f"last beat {_duration(beat)} ago",
        ),
        ("workers", str(board["workers"]), "registered"),
    ]
    for queue, depths in board["queues"].items():
        note = f"{depths['started']} started · {depths['scheduled']} scheduled · "
        items.append((queue, f"{depths['queued']} queued", note + f"{depths['failed']} failed"))
    items.append(
        (
            "per minute",
            f"{rates['entries_processed']} entries",
            f"{rates['entries_duplicate']} duplicates · {rates['alerts_delivered']} delivered · "
            f"{rates['alerts_dead']} dead",
        )
    )
    return "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="figure">{escape(figure)}</div><div class="note">{escape(note)}</div></div>'
        for label, figure, note in items
    )


def render_page(board: dict[str, Any], topics: list[str]) -> str:
    now = board["generated_at"]
    options = "".join(
        f'<option value="{escape(name)}"{" selected" if name == board["topic"] else ""}>'
        f"{escape(name)}</option>"
        for name in topics
    )
    empty = '<tr class="empty"><td colspan="{}">{}</td></tr>'
    return PAGE.substitute(
        refresh_ms=REFRESH_SECONDS * 1000,
        updated=escape(_clock(now, now)),
        redis_warning=escape(board["redis_warning"] or ""),
        warning_hidden="" if board["redis_warning"] else " hidden",
        topic_options=options,
        all_selected="" if board["topic"] else " selected",
        glance=render_glance(board),
        stories="".join(render_story(s, now) for s in board["stories"])
        or empty.format(5, "no stories yet"),
        feeds="".join(render_feed(row, now) for row in board["feeds"])
        or empty.format(7, "no feeds in feeds.toml"),
        subscriptions="".join(render_subscription(row, now) for row in board["subscriptions"])
        or empty.format(8, "no subscriptions, in subscriptions.toml or made over the API"),
    )


PAGE = Template((ASSETS / "board.html").read_text(encoding="utf-8"))


# Who may look.


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


def routes(connection: redis.Redis, config: Config, throttle: FailureThrottle) -> list[BaseRoute]:
    """The board's routes, for serve.py to mount. Tokens are read from the environment here,
    once, when the server starts; wrong ones count in `throttle`, shared with the API."""
    access = Access.from_env(throttle)
    topics = [topic.name for topic in config.topics]

    def board_answer(request: Request, respond: Callable[[dict[str, Any]], Response]) -> Response:
        if refused := access.refusal(request):
            return refused
        topic = request.query_params.get("topic") or None
        if topic is not None and topic not in topics:
            return PlainTextResponse(
                f"no topic {topic!r} in topics.toml\n", status_code=400, headers=HEADERS
            )
        return respond(read_board(connection, config, topic))

    def page(request: Request) -> Response:
        presented = request.query_params.get("token")
        if presented is None or not access.tokens:
            return board_answer(request, html)
        if waited := access.throttled(request):
            return waited
        if not access.token_matches(presented):
            return access.refuse(request, 401, "wrong token", "That token is not valid.\n")
        # The page itself, not a redirect: a strict cookie set on a redirect that a link on
        # another site started is not sent to where it leads. board.js takes the token out
        # of the address.
        answer = html(read_board(connection, config, None))
        answer.set_cookie(
            COOKIE,
            cookie_for(presented),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    def html(board: dict[str, Any]) -> Response:
        return Response(
            render_page(board, topics), media_type="text/html; charset=utf-8", headers=HEADERS
        )

    def data(request: Request) -> Response:
        return board_answer(request, lambda board: JSONResponse(board, headers=HEADERS))

    def asset(name: str, media_type: str) -> Route:
        body = (ASSETS / name).read_bytes()

        def serve_asset(request: Request) -> Response:
            if refused := access.refusal(request):
                return refused
            return Response(body, media_type=media_type, headers=HEADERS)

        return Route(f"/board/{name}", serve_asset, methods=["GET"])

    return [
        Route("/", page, methods=["GET"]),
        Route("/board/data.json", data, methods=["GET"]),
        asset("board.js", "text/javascript"),
        asset("board.css", "text/css"),
    ]
