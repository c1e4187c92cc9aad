"""WebSub round trip: the poller subscribes at the feed's hub, `newsmon serve` answers the
hub's verification, and signed pushes enter the same path as polled entries. The callback
is public: forged verifications and unsigned or oversized pushes are refused, the latter
before their body is read."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from monitor.core import keys, queues
from monitor.core.documents import read_entry
from monitor.core.feedstate import FeedState
from monitor.poller import websub
from monitor.poller.loop import Poller
from tests.helpers import load, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, rss

TEN_YEARS = 315_360_000
FEED_URL = "https://news.example/liveblog.xml"
HUB_URL = "https://hub.example/"


def queued_titles(connection) -> list[str]:
    jobs = queues.queue(keys.ENTRIES_QUEUE, connection).get_jobs()
    return [read_entry(document).title for job in jobs for document in job.args[0]]


def stored(connection, name: str = "liveblog") -> dict[str, str]:
    """The feed's state hash as it is stored."""
    raw = connection.hgetall(keys.feed_state(name))
    return {k.decode(): v.decode() for k, v in raw.items()}


def feed_state(connection, name: str = "liveblog") -> FeedState:
    return FeedState.read(connection.hgetall(keys.feed_state(name)))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def requested(connection, base: str, at: float | None = None) -> dict[str, str]:
    """What the poller stores and sends when it asks the hub for a subscription; the form."""
    state = FeedState()
    form = websub.request_subscription(
        state, f"{base}/websub", "liveblog", HUB_URL, FEED_URL, time.time() if at is None else at
    )
    connection.hset(keys.feed_state("liveblog"), mapping=state.take_changes())
    return form


def hub_get(callback: str, params: dict[str, str]) -> httpx.Response:
    """GET the callback with the hub's parameters added to its own query, as WebSub hubs do
    (httpx's `params=` would replace the query, token and all)."""
    joiner = "&" if "?" in callback else "?"
    return httpx.get(callback + joiner + urlencode(params))


def verification(form: dict[str, str], **overrides: str) -> dict[str, str]:
    """The query a hub adds to our callback to verify the request in `form`."""
    return {
        "hub.mode": "subscribe",
        "hub.topic": form["hub.topic"],
        "hub.challenge": "c-123",
        "hub.lease_seconds": "86400",
        **overrides,
    }


@pytest.fixture
def served(tmp_path, serve_url):
    """A server for one feed, `liveblog`, whose self URL is FEED_URL."""
    return serve_url(load(write_config(tmp_path, feeds=[{"name": "liveblog", "url": FEED_URL}])))


def test_subscribe_verify_and_take_signed_pushes(tmp_path, connection, http_server, serve_url):
    feed_url, hub_url = http_server.url_for("/feed.xml"), http_server.url_for("/hub")
    links = f'<atom:link rel="hub" href="{hub_url}"/><atom:link rel="self" href="{feed_url}"/>'
    http_server.route(
        "/feed.xml",
        (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG, head=links)),
    )
    http_server.route("/hub", (202, {}, b""))
    feeds = [{"name": "liveblog", "url": feed_url}]
    base = serve_url(load(write_config(tmp_path / "serve", feeds=feeds))) + "/websub"
    config = load(
        write_config(
            tmp_path / "poll", feeds=feeds, settings=f'[websub]\ncallback_url = "{base}"\n'
        )
    )
    poller = Poller(config, connection)

    # 1. Polling the feed finds its hub and asks for a subscription, with a secret and a
    #    callback of its own.
    assert poller.poll_feeds(config.feeds)[0].new_entries == 5
    asks = [dict(parse_qsl(r.body.decode())) for r in http_server.requests if r.path == "/hub"]
    assert len(asks) == 1
    ask = asks[0]
    assert ask["hub.mode"] == "subscribe" and ask["hub.topic"] == feed_url
    assert ask["hub.callback"].startswith(f"{base}/liveblog?token=")
    assert len(ask["hub.secret"]) >= 32

    # 2. The hub verifies: the callback echoes the challenge only for what it asked for.
    verify = verification(ask)
    other = hub_get(ask["hub.callback"], {**verify, "hub.topic": "https://elsewhere.example/"})
    assert other.status_code == 404
    answer = hub_get(ask["hub.callback"], verify)
    assert (answer.status_code, answer.text) == (200, "c-123")
    # ... once: the token is spent.
    assert hub_get(ask["hub.callback"], verify).status_code == 404

    # 3. A push signed with the secret is taken; a forged one is not.
    pushed = rss(ROUND_TWO_LIVEBLOG)
    forged = httpx.post(
        ask["hub.callback"], content=pushed, headers={"x-hub-signature": "sha256=" + "0" * 64}
    )
    assert forged.status_code == 202 and len(queued_titles(connection)) == 5
    taken = httpx.post(
        ask["hub.callback"],
        content=pushed,
        headers={
            "x-hub-signature": sign(ask["hub.secret"], pushed),
            "content-type": "application/rss+xml",
        },
    )
    assert taken.status_code == 202
    assert queued_titles(connection)[5:] == [i.title for i in ROUND_TWO_LIVEBLOG[5:]]

    # 4. With push active the feed is polled only as a safety net, and not re-subscribed.
    outcome = poller.poll_feeds(config.feeds)[0]
    assert outcome.next_poll_in == config.settings.max_interval_seconds
    assert sum(r.path == "/hub" for r in http_server.requests) == 1


def test_a_forged_verification_confirms_nothing(connection, served):
    form = requested(connection, served)
    forged = verification(form, **{"hub.lease_seconds": str(TEN_YEARS), "hub.challenge": "x"})
    path = f"{served}/websub/liveblog"

    assert httpx.get(path, params=forged).status_code == 404  # no token
    assert httpx.get(path, params={**forged, "token": "guessed"}).status_code == 404
    assert "websub_expires" not in stored(connection) and "websub_secret" not in stored(connection)
    assert not websub.is_active(feed_state(connection), time.time())
    # The request it tried to pass for is still pending, for the hub's own verification.
    assert hub_get(form["hub.callback"], verification(form)).text == "c-123"


def test_a_request_no_longer_pending_is_not_confirmed(connection, served):
    form = requested(connection, served, at=time.time() - websub.RETRY_SECONDS - 60)
    late = hub_get(form["hub.callback"], verification(form))
    assert late.status_code == 404
    assert not websub.is_active(feed_state(connection), time.time())


def test_a_newer_request_replaces_the_token_of_the_older(connection, served):
    older = requested(connection, served)
    newer = requested(connection, served)
    assert hub_get(older["hub.callback"], verification(older)).status_code == 404
    assert hub_get(newer["hub.callback"], verification(newer)).status_code == 200


def test_a_granted_lease_is_capped_at_ours(connection, served):
    form = requested(connection, served)
    answer = hub_get(
        form["hub.callback"], verification(form, **{"hub.lease_seconds": str(TEN_YEARS)})
    )
    assert answer.status_code == 200
    state = feed_state(connection)
    now = time.time()
    assert state.websub_expires <= now + websub.LEASE_SECONDS
    assert state.websub_secret == form["hub.secret"]
    assert "websub_token" not in stored(connection)
    assert "websub_pending_secret" not in stored(connection)
    # Renewed a day before the capped lease ends, not ten years later.
    renew_at = now + websub.LEASE_SECONDS - websub.RENEW_BEFORE_SECONDS + 60
    assert websub.wants_subscription(state, HUB_URL, FEED_URL, renew_at)


def test_a_denial_needs_the_token_too_and_ends_the_pending_request(connection, served):
    form = requested(connection, served)
    denied = verification(form, **{"hub.mode": "denied", "hub.reason": "nope"})
    assert httpx.get(f"{served}/websub/liveblog", params=denied).status_code == 404
    assert feed_state(connection).websub_token
    assert hub_get(form["hub.callback"], denied).status_code == 200
    assert "websub_token" not in stored(connection)


def test_a_lease_beyond_our_cap_stored_earlier_counts_as_none():
    """What a forged verification left behind before the cap: push off, subscribe again."""
    now = time.time()
    state = FeedState(
        websub_hub=HUB_URL,
        websub_topic=FEED_URL,
        websub_secret="s",
        websub_requested=now - 86400,
        websub_expires=now + TEN_YEARS,
    )
    assert not websub.is_active(state, now)
    assert websub.wants_subscription(state, HUB_URL, FEED_URL, now)


def raw_post_head(base: str, path: str, headers: dict[str, str]) -> tuple[int, socket.socket]:
    """POST only a request head (no body follows) and read the status line of the answer.
    A server that waited for the body would never answer: the socket times out instead."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"host": "x", **headers}.items())
    sock.sendall(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode())
    status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1]), sock


@pytest.mark.parametrize(
    ("feed", "active", "headers", "status"),
    [
        ("nosuchfeed", True, {"x-hub-signature": "sha256=00"}, 404),
        ("liveblog", False, {"x-hub-signature": "sha256=00"}, 410),
        ("liveblog", True, {}, 202),
        ("liveblog", True, {"x-hub-signature": "md5=00"}, 202),
    ],
)
def test_pushes_refused_from_their_head_alone_are_not_read(
    connection, served, feed, active, headers, status
):
    if active:
        form = requested(connection, served)
        assert hub_get(form["hub.callback"], verification(form)).status_code == 200
    size = 1024 * 1024  # within any cap: only the head decides
    code, sock = raw_post_head(served, f"/websub/{feed}", {"content-length": str(size), **headers})
    sock.close()
    assert code == status
    assert queued_titles(connection) == []


def test_push_bodies_are_capped_while_they_stream(connection, served):
    form = requested(connection, served)
    assert hub_get(form["hub.callback"], verification(form)).status_code == 200
    big = rss(ROUND_ONE_LIVEBLOG) + b"<!--" + b"x" * websub.PUSH_MAX_BYTES + b"-->"
    signed = {"x-hub-signature": sign(form["hub.secret"], big)}

    # Declared too big: refused before a byte of it is read.
    code, sock = raw_post_head(
        served, "/websub/liveblog", {"content-length": str(len(big)), **signed}
    )
    sock.close()
    assert code == 413

    # Chunked, so no length is declared: cut off as it passes the cap.
    def chunks():
        for offset in range(0, len(big), 64 * 1024):
            yield big[offset : offset + 64 * 1024]

    streamed = httpx.post(form["hub.callback"], content=chunks(), headers=signed)
    assert streamed.status_code == 413
    assert queued_titles(connection) == []

    # A chunked push within the cap is taken.
    small = rss(ROUND_ONE_LIVEBLOG)
    taken = httpx.post(
        form["hub.callback"],
        content=iter([small[:100], small[100:]]),
        headers={"x-hub-signature": sign(form["hub.secret"], small)},
    )
    assert taken.status_code == 202
    assert queued_titles(connection) == [i.title for i in ROUND_ONE_LIVEBLOG]
