"""`newsmon serve`: the small HTTP server for everything newsmon exposes over HTTP.

GET /          the live board, and its /board/... data and assets (see board.py)
GET /livez     200 while this process serves HTTP; calls nothing (a container's liveness).
GET /readyz    200 when this process can do its work: Redis answers a PING within
               PROBE_SECONDS, from the thread pool that runs every Redis-calling handler
               (the event loop answering and the pool not exhausted); else 503. The body
               says whether Redis is durable (`redis_durable`, and `redis_warning` when
               not); that turns it 503 only under storage.require_durable_redis: a Redis
               without AOF still serves, and failing every replica's probe at once for a
               risk would be an outage.
GET /healthz   the whole deployment: 200 when Redis answers, a poller beat within a minute
               and a worker is registered, else 503; the body says which check failed.
GET /metrics   Prometheus text: the counters and gauges of `newsmon stats`, read from Redis
               at scrape time, so one endpoint covers every process of the deployment.
GET  /websub/FEED  a WebSub hub verifying our subscription to FEED (see websub.py)
POST /websub/FEED  a WebSub hub pushing FEED's new document
/api/v1/..., /openapi.json, /schemas/NAME.json   see api.py, api_routes.py

The WebSub route is public, so the server is Starlette on uvicorn with limits on what a
client can hold: connections, time to send a request's head and its body, head size and
body size (request_body.py, for a push as for an API call). Handlers that call Redis are
plain `def`s, which Starlette runs in its thread pool, so a slow Redis never stalls the
event loop.

uvicorn's proxy-headers step (X-Forwarded-For from the addresses of FORWARDED_ALLOW_IPS)
still names the client for logs, throttling and the cookie's Secure flag, but it runs
inside `KeepPeer`, which keeps the socket's own peer for the board's this-machine check.

SIGHUP (or `newsmon reload`) has the server read its config folder again: every route is
built anew from it and swapped in whole (`Reloadable`), and a request in flight finishes on
the routes it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import redis
import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.core import __version__
from monitor.core.config import Config
from monitor.core.counters import heartbeat
from monitor.core.histograms import HISTOGRAMS
from monitor.core.reload import ReloadRequest, reloaded
from monitor.ops import CommandError, api_routes, board, stats
from monitor.ops.auth import FailureThrottle
from monitor.ops.board_access import PEER_SCOPE_KEY
from monitor.ops.redis_server import durability
from monitor.ops.request_body import BodyRefused, read_capped
from monitor.ops.root import Root
from monitor.poller.websub import Callback

MAX_CONNECTIONS = 100  # beyond this uvicorn answers 503 at once
MAX_HEAD_BYTES = 16 * 1024  # request line and headers; a hub's verification needs < 2 KiB
HEAD_SECONDS = 10  # to send a request's line and headers once connected (or after a reply)
BODY_SECONDS = 30  # to send a push's body, at most WebSub's 2 MiB
KEEP_ALIVE_SECONDS = 5
SHUTDOWN_SECONDS = 5  # a stop waits this long for requests in flight
PROBE_SECONDS = 2  # /readyz: a Redis that takes longer than this is not ready

log = structlog.get_logger()


class SnapshotCollector:
    """Turns a stats snapshot into Prometheus metrics on each scrape."""

    def __init__(self, root: Root):
        self.root = root

    def collect(self) -> Iterator[Metric]:
        snap = self.root.snapshot()
        for name, value in snap["totals"].items():
            yield CounterMetricFamily(
                f"newsmon_{name}", f"{name.replace('_', ' ')} since start", value=value
            )
        jobs = GaugeMetricFamily(
            "newsmon_queue_jobs", "jobs per queue and state", labels=["queue", "state"]
        )
        for queue, depths in snap["queues"].items():
            for state, value in depths.items():
                jobs.add_metric([queue, state], value)
        yield jobs
        alerts = CounterMetricFamily(
            "newsmon_subscription_alerts",
            "delivery outcomes per subscription",
            labels=["subscription", "outcome"],
        )
        status = GaugeMetricFamily(
            "newsmon_subscription_status",
            "1 for the subscription's current status",
            labels=["subscription", "status"],
        )
        dead = GaugeMetricFamily(
            "newsmon_dead_letters", "dead letters kept", labels=["subscription"]
        )
        for subscription, view in snap["subscriptions"].items():
            for outcome in stats.SUBSCRIPTION_COUNTERS:
                alerts.add_metric([subscription, outcome], view[outcome])
            status.add_metric([subscription, view["status"]], 1)
            dead.add_metric([subscription], view["dead_letters"])
        yield from (alerts, status, dead)
        feeds = GaugeMetricFamily("newsmon_feeds", "feeds by health", labels=["state"])
        feeds.add_metric(["healthy"], snap["feeds"]["healthy"])
        feeds.add_metric(["failing"], snap["feeds"]["failing"])
        yield feeds
        yield GaugeMetricFamily("newsmon_workers", "RQ workers registered", value=snap["workers"])
        yield GaugeMetricFamily(
            "newsmon_pollers", "pollers that beat within a minute", value=snap["pollers"]
        )
        for histogram in HISTOGRAMS:
            seen = snap["histograms"][histogram.name]
            yield HistogramMetricFamily(
                f"newsmon_{histogram.name}",
                histogram.help,
                buckets=seen["buckets"],
                sum_value=seen["sum"],
            )
        build = GaugeMetricFamily(
            "newsmon_build_info", "the newsmon version serving /metrics", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build


def probe_client(connection: redis.Redis) -> redis.Redis:
    """A client of the same Redis that gives up after PROBE_SECONDS, without retrying: a
    probe must answer in time whatever the timeouts of the connection the handlers use."""
    pool = connection.connection_pool
    settings = {
        **pool.connection_kwargs,
        "socket_timeout": PROBE_SECONDS,
        "socket_connect_timeout": PROBE_SECONDS,
        "retry": Retry(NoBackoff(), 0),
    }
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **settings)
    )


def make_app(connection: redis.Redis, config: Config, throttle: FailureThrottle) -> Starlette:
    """Every route, built from one reading of the config folder. `throttle` outlives a
    reload: one per process, for the API's wrong tokens and the board's."""
    root = Root.build(config, connection)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(root))
    callback = Callback(connection, config)
    cap = callback.max_push_bytes
    probe = probe_client(connection)

    async def livez(request: Request) -> Response:
        return JSONResponse({"live": True})

    def readyz(request: Request) -> Response:
        try:
            probe.ping()
            found = durability(probe)
        except (redis.RedisError, OSError) as exc:
            return JSONResponse({"ready": False, "redis": f"unreachable: {exc}"}, status_code=503)
        ready = found.durable or not config.settings.require_durable_redis
        body = {"ready": ready, "redis": "ok", "redis_durable": found.durable}
        if warning := found.warning():
            body["redis_warning"] = warning
        return JSONResponse(body, status_code=200 if ready else 503)

    def healthz(request: Request) -> Response:
        healthy, checks = root.health()
        return JSONResponse({"healthy": healthy, **checks}, status_code=200 if healthy else 503)

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def websub_verify(request: Request) -> Response:
        status, body = callback.verify(request.path_params["feed"], request.query_params)
        return PlainTextResponse(body, status_code=status)

    async def websub_push(request: Request) -> Response:
        feed, signature = request.path_params["feed"], request.headers.get("x-hub-signature", "")
        early = await run_in_threadpool(callback.early_answer, feed, signature)
        if early is not None:
            return Response(status_code=early)
        try:
            body = await read_capped(request, cap=cap, seconds=BODY_SECONDS)
        except BodyRefused as exc:
            if exc.status == 400:  # the client went away: no one to answer, nothing to note
                return Response(status_code=400)
            log.warning("websub.rejected", feed=feed, reason=f"body {exc.reason}")
            if exc.status == 413:
                return PlainTextResponse(
                    f"a pushed document may have {cap} bytes\n", status_code=413
                )
            return Response(status_code=exc.status)
        content_type = request.headers.get("content-type", "")
        status = await run_in_threadpool(callback.push, feed, body, content_type, signature)
        return Response(status_code=status)

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found: try /healthz or /metrics\n", status_code=404)

    async def redis_down(request: Request, exc: Exception) -> Response:
        log.warning("serve.failed", path=request.url.path, reason=f"redis: {exc}")
        return PlainTextResponse("redis unavailable\n", status_code=503)

    return Starlette(
        routes=[
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            # `path`, so a feed name with an (encoded) slash still reaches its feed.
            Route("/websub/{feed:path}", websub_verify, methods=["GET"]),
            Route("/websub/{feed:path}", websub_push, methods=["POST"]),
            *board.routes(root, throttle),
            *api_routes.routes(root, throttle),
        ],
        exception_handlers={404: not_found, redis.RedisError: redis_down},
    )


class Reloadable:
    """ASGI: the app built from the config read last. A reload swaps in a whole new app; a
    request already in flight finishes on the one it started with."""

    def __init__(self, connection: redis.Redis, config: Config):
        self.connection = connection
        self.config = config
        self.throttle = FailureThrottle()
        self.app = make_app(connection, config, self.throttle)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def reload(self) -> None:
        """The config folder read again; an invalid one is logged and the routes stay."""
        if config := reloaded(self.config):
            self.app = make_app(self.connection, config, self.throttle)
            self.config = config


class KeepPeer:
    """ASGI: the connection's peer, as the socket has it, kept in the scope under
    board_access.PEER_SCOPE_KEY before the app inside (uvicorn's proxy-headers step) rewrites
    scope["client"] from headers a client chooses."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[PEER_SCOPE_KEY] = scope.get("client")
        await self.app(scope, receive, send)


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's line and headers. uvicorn
    closes a keep-alive connection that goes quiet, but not one that never finishes its
    request head (any byte restarts its clock): MAX_CONNECTIONS of those would shut everyone
    else out."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_deadline()

    def _head_deadline(self) -> None:
        waiting_after = self.cycle  # replaced as soon as a complete request head is parsed

        def expire() -> None:
            if self.cycle is waiting_after and not self.transport.is_closing():
                self.transport.close()

        self.loop.call_later(HEAD_SECONDS, expire)


def make_server(host: str, port: int, app: Reloadable) -> uvicorn.Server:
    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeadDeadlineProtocol,  # h11: the one with a head size limit
        loop="asyncio",
        lifespan="off",
        ws="none",
        log_config=None,  # uvicorn's lines go to the root handler: newsmon's JSON
        # Its start-up narration is not newsmon's events (serve.started says it).
        log_level=max(logging.getLogger().getEffectiveLevel(), logging.WARNING),
        access_log=False,  # scrapes every few seconds would drown the log
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        proxy_headers=False,  # applied below, inside KeepPeer
    )
    # uvicorn's own step, with the addresses it reads from FORWARDED_ALLOW_IPS.
    settings.app = KeepPeer(
        ProxyHeadersMiddleware(settings.app, trusted_hosts=settings.forwarded_allow_ips)
    )
    return uvicorn.Server(settings)


def start(server: uvicorn.Server) -> threading.Thread:
    """Run the server in a thread of its own (uvicorn installs no signal handlers there; the
    caller owns those) and return once it listens. Raises OSError if it cannot listen."""

    def run() -> None:
        with contextlib.suppress(SystemExit):  # uvicorn exits if it cannot bind, saying why
            server.run()

    thread = threading.Thread(target=run, name="serve", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError("newsmon serve could not listen; the line above says why")
        time.sleep(0.01)
    return thread


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on (the one the OS chose, when asked for 0)."""
    return server.servers[0].sockets[0].getsockname()[1]


def stop_server(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join()


def _beat(connection: redis.Redis) -> None:
    """This process's heartbeat, so that `newsmon reload` finds it."""
    with contextlib.suppress(redis.RedisError):  # Redis down: the board says so; serve on
        heartbeat(connection, "serve")


def serve(
    host: str,
    port: int,
    connection: redis.Redis,
    config: Config,
    stop: threading.Event,
    reload: ReloadRequest | None = None,
) -> None:
    app = Reloadable(connection, config)
    server = make_server(host, port, app)
    try:
        thread = start(server)
    except OSError as exc:
        raise CommandError(f"serve: {exc}") from None
    _beat(connection)  # before serve.started: a reload right after it finds this process
    log.info("serve.started", host=host, port=bound_port(server))
    while not stop.wait(1) and thread.is_alive():
        if reload and reload.take():
            app.reload()
        _beat(connection)
    stop_server(server, thread)
    log.info("serve.stopped")
