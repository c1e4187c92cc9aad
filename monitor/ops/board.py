"""The live board of `newsmon serve`: the latest stories, feeds, subscriptions, queues and
workers, and a page for each story and subscription; read-only.

GET /                              the front page; `?topic=T` filters the stories
GET /board/live                    its changing parts (board_render.live_parts), for the
                                   page's script to swap in every few seconds
GET /board/data.json               the front page's figures as JSON (board_data.read_board)
GET /board/story/{id}              a story: every report, why it joined, who was alerted
GET /board/subscription/{id}       a subscription: its health, recent messages, attempts
GET /board/board.js, board.css, favicon.svg   package data

Every route answers only whom board_access lets look, under its headers: inline script and
every other origin forbidden (Content-Security-Policy). The HTML is rendered on the server
alone (board_render, board_detail), everything from feeds and endpoints escaped. When Redis
does not answer, the pages say so in a page of their own (503).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.ops.auth import FailureThrottle
from monitor.ops.board_access import COOKIE, COOKIE_MAX_AGE, HEADERS, Access, cookie_for
from monitor.ops.board_data import read_board, read_story, read_subscription
from monitor.ops.board_detail import render_missing, render_story_page, render_subscription_page
from monitor.ops.board_render import ASSETS, live_parts, render_board, render_unavailable
from monitor.ops.root import Root

log = structlog.get_logger()
Page = Callable[[Request], Response]


def html(body: str, status_code: int = 200) -> Response:
    return HTMLResponse(body, status_code=status_code, headers=HEADERS)


def readable_when_redis_is_down(answer: Page) -> Page:
    """`answer`, or the page that says Redis does not answer (503) when it does not."""

    def guarded(request: Request) -> Response:
        try:
            return answer(request)
        except redis.RedisError as exc:
            log.warning("board.failed", path=request.url.path, reason=f"redis: {exc}")
            return html(render_unavailable(str(exc)), 503)

    return guarded


def routes(root: Root, throttle: FailureThrottle) -> list[BaseRoute]:
    """The board's routes, for serve.py to mount. Tokens are read from the environment here,
    once, when the server starts; wrong ones count in `throttle`, shared with the API."""
    access = Access.from_env(throttle)
    topics = [topic.name for topic in root.config.topics]

    def only_for_viewers(answer: Page) -> Page:
        def checked(request: Request) -> Response:
            return access.refusal(request) or answer(request)

        return checked

    def board_answer(request: Request, respond: Callable[[dict[str, Any]], Response]) -> Response:
        topic = request.query_params.get("topic") or None
        if topic is not None and topic not in topics:
            return PlainTextResponse(
                f"no topic {topic!r} in topics.toml\n", status_code=400, headers=HEADERS
            )
        return respond(read_board(root, topic))

    def front(board: dict[str, Any]) -> Response:
        return html(render_board(board, topics))

    def front_page(request: Request) -> Response:
        presented = request.query_params.get("token")
        if presented is None or not access.tokens:
            return access.refusal(request) or board_answer(request, front)
        if waited := access.throttled(request):
            return waited
        if not access.token_matches(presented):
            return access.refuse(request, 401, "wrong token", "That token is not valid.\n")
        # The page itself, not a redirect: a strict cookie set on a redirect that a link on
        # another site started is not sent to where it leads. board.js takes the token out
        # of the address.
        answer = front(read_board(root, None))
        answer.set_cookie(
            COOKIE,
            cookie_for(presented),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    def live(request: Request) -> Response:
        try:
            return board_answer(request, lambda board: html("".join(live_parts(board).values())))
        except redis.RedisError as exc:  # the script shows it and asks again
            return PlainTextResponse(f"redis: {exc}", status_code=503, headers=HEADERS)

    def data(request: Request) -> Response:
        return board_answer(request, lambda board: JSONResponse(board, headers=HEADERS))

    def story(request: Request) -> Response:
        found = read_story(root, request.path_params["id"])
        if found is None:
            return html(render_missing("No such story: it may have left the window"), 404)
        return html(render_story_page(found))

    def subscription(request: Request) -> Response:
        found = read_subscription(root, request.path_params["id"])
        if found is None:
            return html(render_missing("No such subscription"), 404)
        return html(render_subscription_page(found))

    def asset(name: str, media_type: str) -> Route:
        body = (ASSETS / name).read_bytes()

        def serve_asset(request: Request) -> Response:
            return Response(body, media_type=media_type, headers=HEADERS)

        return Route(f"/board/{name}", only_for_viewers(serve_asset), methods=["GET"])

    pages: list[tuple[str, Page]] = [
        ("/", front_page),
        ("/board/story/{id:path}", only_for_viewers(story)),
        ("/board/subscription/{id:path}", only_for_viewers(subscription)),
    ]
    return [
        *(Route(path, readable_when_redis_is_down(p), methods=["GET"]) for path, p in pages),
        Route("/board/live", only_for_viewers(live), methods=["GET"]),
        Route("/board/data.json", only_for_viewers(data), methods=["GET"]),
        asset("board.js", "text/javascript"),
        asset("board.css", "text/css"),
        asset("favicon.svg", "image/svg+xml"),
    ]
