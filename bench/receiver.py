"""Webhook receivers for the benchmarks, in a process of their own as real ones are.

Each arrival is logged as '<path> <webhook-id> <unix time> <entry link>'; /hang holds the
request for 30 s before answering.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _serve(port: multiprocessing.Queue, log_path: Path) -> None:
    log = log_path.open("a", buffering=1)

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            arrived = time.time()
            link = json.loads(body)["data"]["entry"]["link"]
            log.write(f"{self.path} {self.headers['webhook-id']} {arrived} {link}\n")
            if self.path == "/hang":
                time.sleep(30)
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    http.daemon_threads = True
    port.put(http.server_port)
    http.serve_forever()


def start(log_path: Path) -> tuple[multiprocessing.Process, int]:
    """Start the receivers; returns the process and its port."""
    port: multiprocessing.Queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(port, log_path), daemon=True)
    process.start()
    return process, port.get(timeout=10)


def arrivals(log_path: Path, path: str) -> dict[str, tuple[float, str]]:
    """webhook-id -> (arrival unix time, entry link) of the requests to `path`."""
    found = {}
    for line in log_path.read_text().splitlines():
        request_path, webhook_id, at, link = line.split(" ", 3)
        if request_path == path:
            found[webhook_id] = (float(at), link)
    return found
