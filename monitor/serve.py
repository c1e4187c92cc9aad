"""`newsmon serve`: the small HTTP server for everything newsmon exposes over HTTP.

GET /healthz   200 when Redis answers, a poller beat within a minute and a worker is
               registered, else 503; the body says which check failed.
GET /metrics   Prometheus text: the counters and gauges of `newsmon stats`, read from Redis
               at scrape time, so one endpoint covers every process of the deployment.
GET  /websub/FEED  a WebSub hub verifying our subscription to FEED (see websub.py)
POST /websub/FEED  a WebSub hub pushing FEED's new document
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import redis
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor import stats
from monitor.config import Config
from monitor.websub import Callback

WEBSUB_PATH = "/websub/"

log = structlog.get_logger()


class SnapshotCollector:
    """Turns a stats snapshot into Prometheus metrics on each scrape."""

    def __init__(self, connection: redis.Redis, config: Config):
        self.connection, self.config = connection, config

    def collect(self) -> Iterator[Metric]:
        snap = stats.snapshot(self.connection, self.config)
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


def make_server(
    host: str, port: int, connection: redis.Redis, config: Config
) -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(connection, config))
    callback = Callback(connection, config)
    max_body = config.settings.max_feed_bytes

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            if path.startswith(WEBSUB_PATH):
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                self._send(*callback.verify(unquote(path[len(WEBSUB_PATH) :]), params))
            elif path == "/healthz":
                healthy, checks = stats.health(connection)
                self._send(
                    200 if healthy else 503,
                    json.dumps({"healthy": healthy, **checks}).encode(),
                    "application/json",
                )
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /healthz or /metrics\n")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = self.headers.get("content-length", "")
            if not path.startswith(WEBSUB_PATH):
                self._send(404, b"not found\n")
            elif not length.isdigit() or int(length) > max_body:
                self._send(413, b"a pushed document needs a content-length within the cap\n")
            else:
                status = callback.push(
                    unquote(path[len(WEBSUB_PATH) :]),
                    self.rfile.read(int(length)),
                    self.headers.get("content-type", ""),
                    self.headers.get("x-hub-signature", ""),
                )
                self._send(status, b"")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # scrapes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve(
    host: str, port: int, connection: redis.Redis, config: Config, stop: threading.Event
) -> None:
    server = make_server(host, port, connection, config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log.info("serve.started", host=host, port=server.server_address[1])
    stop.wait()
    server.shutdown()
    log.info("serve.stopped")
