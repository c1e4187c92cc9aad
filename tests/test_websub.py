"""WebSub round trip: the poller subscribes at the feed's hub, `newsmon serve` answers the
hub's verification, and signed pushes enter the same path as polled entries."""

from __future__ import annotations

import hashlib
import hmac
import threading
from urllib.parse import parse_qsl

import httpx
import pytest

from monitor import keys, queues
from monitor.documents import read_entry
from monitor.poller import Poller
from monitor.serve import make_server
from tests.conftest import load, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, rss


@pytest.fixture
def serve_url(connection, tmp_path):
    """`newsmon serve` on a free port; the config it reads is written by the test."""
    holder = {}

    def start(config):
        server = make_server("127.0.0.1", 0, connection, config)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        holder["server"] = server
        return server

    yield start
    if "server" in holder:
        holder["server"].shutdown()
        holder["server"].server_close()


def queued_titles(connection) -> list[str]:
    jobs = queues.queue(keys.ENTRIES_QUEUE, connection).get_jobs()
    return [read_entry(document).title for job in jobs for document in job.args[0]]


def test_subscribe_verify_and_take_signed_pushes(tmp_path, connection, http_server, serve_url):
    feed_url, hub_url = http_server.url_for("/feed.xml"), http_server.url_for("/hub")
    links = f'<atom:link rel="hub" href="{hub_url}"/><atom:link rel="self" href="{feed_url}"/>'
    http_server.route(
        "/feed.xml",
        (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG, head=links)),
    )
    http_server.route("/hub", (202, {}, b""))
    feeds = [{"name": "liveblog", "url": feed_url}]
    server = serve_url(load(write_config(tmp_path / "serve", feeds=feeds)))
    base = f"http://127.0.0.1:{server.server_address[1]}/websub"
    config = load(
        write_config(
            tmp_path / "poll", feeds=feeds, settings=f'[websub]\ncallback_url = "{base}"\n'
        )
    )
    poller = Poller(config, connection)

    # 1. Polling the feed finds its hub and asks for a subscription, with a secret.
    assert poller.poll_feeds(config.feeds)[0].new_entries == 5
    asks = [dict(parse_qsl(r.body.decode())) for r in http_server.requests if r.path == "/hub"]
    assert len(asks) == 1
    ask = asks[0]
    assert ask["hub.mode"] == "subscribe" and ask["hub.topic"] == feed_url
    assert ask["hub.callback"] == f"{base}/liveblog" and len(ask["hub.secret"]) >= 32

    # 2. The hub verifies: the callback echoes the challenge only for what it asked for.
    verify = {
        "hub.mode": "subscribe",
        "hub.topic": feed_url,
        "hub.challenge": "c-123",
        "hub.lease_seconds": "86400",
    }
    other = httpx.get(
        ask["hub.callback"], params={**verify, "hub.topic": "https://elsewhere.example/"}
    )
    assert other.status_code == 404
    answer = httpx.get(ask["hub.callback"], params=verify)
    assert (answer.status_code, answer.text) == (200, "c-123")

    # 3. A push signed with the secret is taken; a forged one is not.
    pushed = rss(ROUND_TWO_LIVEBLOG)
    forged = httpx.post(
        ask["hub.callback"], content=pushed, headers={"x-hub-signature": "sha256=" + "0" * 64}
    )
    assert forged.status_code == 202 and len(queued_titles(connection)) == 5
    signature = "sha256=" + hmac.new(ask["hub.secret"].encode(), pushed, hashlib.sha256).hexdigest()
    taken = httpx.post(
        ask["hub.callback"],
        content=pushed,
        headers={"x-hub-signature": signature, "content-type": "application/rss+xml"},
    )
    assert taken.status_code == 202
    assert queued_titles(connection)[5:] == [i.title for i in ROUND_TWO_LIVEBLOG[5:]]

    # 4. With push active the feed is polled only as a safety net, and not re-subscribed.
    outcome = poller.poll_feeds(config.feeds)[0]
    assert outcome.next_poll_in == config.settings.max_interval_seconds
    assert sum(r.path == "/hub" for r in http_server.requests) == 1
