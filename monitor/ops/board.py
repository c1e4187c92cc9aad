"""The live board at `/` of `newsmon serve`: the latest stories, feeds, subscriptions, queues
and workers, on one read-only page.

GET /                 the page, rendered here with everything escaped; `?topic=T` filters
                      the stories. The page's script then polls:
GET /board/data.json  the same figures as JSON (`read_board`), every few seconds
GET /board/board.js, /board/board.css   the page's script and style (package data)

Who may look: board_access.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.ops import stats
from monitor.ops.auth import FailureThrottle
from monitor.ops.board_access import COOKIE, COOKIE_MAX_AGE, HEADERS, Access, cookie_for
from monitor.ops.redis_server import durability
from monitor.ops.root import Root

STORIES_SHOWN = 50
REFRESH_SECONDS = 3
ASSETS = files("monitor.ops") / "board_assets"


def read_board(root: Root, topic: str | None) -> dict[str, Any]:
    """Everything the board shows, as JSON-ready data."""
    stories = root.latest_stories(STORIES_SHOWN, topic)
    snap = root.snapshot()
    last_hour = root.last_hour(snap["subscriptions"])
    return {
        "generated_at": time.time(),
        "topic": topic,
        "stories": [asdict(story) for story in stories],
        "feeds": [row for row, _ in root.feed_rows()],
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
        "redis_warning": durability(root.connection).warning(),
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


def routes(root: Root, throttle: FailureThrottle) -> list[BaseRoute]:
    """The board's routes, for serve.py to mount. Tokens are read from the environment here,
    once, when the server starts; wrong ones count in `throttle`, shared with the API."""
    access = Access.from_env(throttle)
    topics = [topic.name for topic in root.config.topics]

    def board_answer(request: Request, respond: Callable[[dict[str, Any]], Response]) -> Response:
        if refused := access.refusal(request):
            return refused
        topic = request.query_params.get("topic") or None
        if topic is not None and topic not in topics:
            return PlainTextResponse(
                f"no topic {topic!r} in topics.toml\n", status_code=400, headers=HEADERS
            )
        return respond(read_board(root, topic))

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
        answer = html(read_board(root, None))
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
