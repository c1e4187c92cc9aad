"""The API's routes as `newsmon serve` mounts them: each handler of api.py behind the
throttle and the token check, and the public `/openapi.json` and `/schemas/NAME.json`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.ops.api import PREFIX, Api, ApiError, AsciiJSON, json_body
from monitor.ops.auth import (
    API_TOKEN_ENV,
    FailureThrottle,
    bearer_matches,
    client_address,
    token_from_env,
)
from monitor.ops.errors import OperationError
from monitor.ops.openapi import openapi_document
from monitor.ops.root import Root

SCHEMAS = "schemas"  # workers/delivery/schemas/*.json, shipped as package data

Handler = Callable[[Request, Any], tuple[int, Any]]


class Throttled(ApiError):
    """A 429: the client sent too many wrong tokens of late."""

    def __init__(self, client: str | None, wait: int):
        super().__init__(429, f"too many wrong tokens from {client}; try again in {wait} s")
        self.wait = wait

    @property
    def headers(self) -> dict[str, str] | None:
        return {"retry-after": str(self.wait)}


def routes(root: Root, throttle: FailureThrottle) -> list[BaseRoute]:
    """The routes `newsmon serve` mounts: the schemas always, the API when a token is set.
    Wrong tokens count in `throttle`, shared with the board."""
    public = [Route("/schemas/{name}", _schema, methods=["GET"])]
    token = token_from_env(API_TOKEN_ENV)
    if token is None:
        return public
    api = Api(root)

    def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(PREFIX + path, _endpoint(handler, token, throttle), methods=[method])

    return [
        *public,
        Route("/openapi.json", openapi, methods=["GET"]),
        route("/subscriptions", api.list, "GET"),
        route("/subscriptions", api.create, "POST"),
        route("/subscriptions/{id}", api.get, "GET"),
        route("/subscriptions/{id}", api.update, "PATCH"),
        route("/subscriptions/{id}", api.delete, "DELETE"),
        route("/subscriptions/{id}/secret/rotate", api.rotate, "POST"),
        route("/subscriptions/{id}/test", api.test, "POST"),
        route("/subscriptions/{id}/messages", api.messages, "GET"),
        route("/subscriptions/{id}/replay", api.replay, "POST"),
    ]


def _endpoint(
    handler: Handler, token: str, throttle: FailureThrottle
) -> Callable[[Request], Awaitable[Response]]:
    """The throttle and the token check, the body read (capped) and parsed, then `handler` in
    the thread pool (it calls Redis); an ApiError anywhere, or a refusal of the root, becomes
    its JSON answer."""

    async def endpoint(request: Request) -> Response:
        client = client_address(request)
        try:
            if (wait := throttle.retry_after(client)) is not None:
                raise Throttled(client, wait)
            if not bearer_matches(request.headers.get("authorization"), (token,)):
                throttle.failed(client)
                raise ApiError(401, "missing or wrong token: send Authorization: Bearer <token>")
            body = await json_body(request) if request.method in ("POST", "PATCH") else None
            status, payload = await run_in_threadpool(handler, request, body)
        except ApiError as exc:
            return exc.response()
        except OperationError as exc:
            return ApiError.refused(exc).response()
        if status == 204:
            return Response(status_code=204)
        return AsciiJSON(payload, status_code=status)

    return endpoint


def _schemas() -> dict[str, Any]:
    """The shipped schemas by file name (alert.created.json, ...)."""
    folder = resources.files("workers.delivery") / SCHEMAS
    return {item.name: item for item in folder.iterdir() if item.name.endswith(".json")}


def _schema(request: Request) -> Response:
    name, schemas = request.path_params["name"], _schemas()
    if name not in schemas:
        known = ", ".join(sorted(schemas))
        return JSONResponse({"error": f"no schema {name!r}; known: {known}"}, status_code=404)
    return Response(schemas[name].read_bytes(), media_type="application/schema+json")
