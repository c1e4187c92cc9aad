"""Feeds for the benchmarks: a local HTTP server that answers GET /NAME with the RSS document
a function gives for feed NAME, and the feeds.toml that points the poller at them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


def rss(items: Iterable[tuple[str, str, str, str]]) -> bytes:
    """An RSS document of (guid, title, link, summary) items."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>{escape(title)}</title><link>{link}</link>"
        f"<description>{escape(summary)}</description></item>"
        for guid, title, link, summary in items
    )
    return f'<rss version="2.0"><channel><title>bench</title>{body}</channel></rss>'.encode()


def serve(document: Callable[[str], bytes]) -> ThreadingHTTPServer:
    """Start answering GET /NAME with `document(NAME)`, in threads of this process."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = document(self.path.strip("/"))
            self.send_response(200)
            self.send_header("content-type", "application/rss+xml")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def feeds_toml(names: Iterable[str], server: ThreadingHTTPServer) -> str:
    """The feeds served by `server`, each polled every second."""
    return "".join(
        f'[[feeds]]\nname = "{name}"\nurl = "http://127.0.0.1:{server.server_port}/{name}"\n'
        "interval_seconds = 1\n"
        for name in names
    )
