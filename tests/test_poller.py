"""The poller against a real local feed server and real Redis."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import socketserver
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import structlog

from monitor.core import keys
from monitor.core.feedstate import UNHEALTHY_AFTER_ERRORS
from monitor.core.models import Feed
from monitor.poller.fetch import Fetcher
from monitor.poller.loop import Poller
from monitor.poller.parse import parse_feed
from tests.helpers import (
    BILLION_LAUGHS,
    RSS,
    load,
    make_poller,
    queued_entries,
    serve_locally,
    write_config,
)
from tests.stories import PUBLISHED, ROUND_ONE_LIVEBLOG, ROUND_TWO_LIVEBLOG, atom, json_feed, rss


def captured_logs():
    """structlog's captured events, with the ids a poll binds to its log context."""
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


def due_in(connection, feed: Feed) -> float:
    """Seconds until the feed is next due in the shared schedule."""
    return connection.zscore(keys.SCHEDULE, feed.name) - time.time()


def test_enqueues_only_new_entries_and_uses_conditional_get(tmp_path, connection, http_server):
    def answer(request):
        if request.headers.get("if-none-match") == '"v2"':
            return 304, {}, b""
        body = rss(ROUND_TWO_LIVEBLOG) if answer.round == 2 else rss(ROUND_ONE_LIVEBLOG)
        return 200, {**RSS, "etag": f'"v{answer.round}"'}, body

    answer.round = 1
    http_server.route("/blog.xml", answer)
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    feed = poller.feeds[0]

    assert poller.poll_feeds([feed])[0].new_entries == 5
    answer.round = 2
    outcome = poller.poll_feeds([feed])[0]
    assert outcome.new_entries == len(ROUND_TWO_LIVEBLOG) - 5
    assert poller.poll_feeds([feed])[0].status == "not_modified"

    guids = [e.key for e in queued_entries(connection)]
    assert guids == [i.guid for i in ROUND_TWO_LIVEBLOG]  # each once, in feed order
    sent = [r.headers.get("if-none-match") for r in http_server.requests]
    assert sent == [None, '"v1"', '"v2"']


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((500, {}, b"oops"), "HTTP 500"),
        ((404, {}, b""), "HTTP 404"),
        (
            (200, {"content-type": "text/html"}, b"<!DOCTYPE html><html><body>Hello</body></html>"),
            "HTML page",
        ),
        ((200, RSS, b"\x00\x01garbage that is not xml at all"), "not a feed"),
        ((200, {"content-type": "application/json"}, b'{"hello": "world"}'), "JSON Feed"),
        ((200, RSS, b"x" * 5000), "not a feed"),
        ((200, RSS, rss(ROUND_TWO_LIVEBLOG) * 10), "byte cap"),
    ],
)
def test_broken_feed_fails_with_reason_and_others_go_on(
    tmp_path, connection, http_server, answer, reason
):
    http_server.route("/broken.xml", answer)
    http_server.route("/good.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    poller = make_poller(
        tmp_path,
        connection,
        http_server,
        "/broken.xml",
        "/good.xml",
        settings="[poller]\nmax_body_bytes = 50000\n",
    )
    with captured_logs() as logs:
        outcomes = {o.feed: o for o in poller.run_once()}
    assert outcomes["broken-xml"].status == "failed"
    assert reason in outcomes["broken-xml"].reason
    assert outcomes["good-xml"].new_entries == 5
    failed = [e for e in logs if e["event"] == "feed.failed"]
    assert len(failed) == 1 and failed[0]["feed"] == "broken-xml" and reason in failed[0]["reason"]
    assert connection.hget(keys.feed_state("broken-xml"), "errors") == b"1"
    # What the server answered, though no feed came of it (`newsmon feeds`, the board).
    assert connection.hget(keys.feed_state("broken-xml"), "last_status") == b"%d" % answer[0]


def test_unreachable_feed_is_a_failure_not_a_crash(tmp_path, connection, http_server):
    poller = make_poller(tmp_path, connection, http_server, "/x.xml")
    outcome = poller.poll_feeds([Feed("gone", "http://127.0.0.1:9/feed.xml", 60)])[0]
    assert outcome.status == "failed" and "Connect" in outcome.reason


def test_a_due_feed_is_fetched_by_one_poller_only(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    first = make_poller(tmp_path, connection, http_server, "/blog.xml")
    second = make_poller(tmp_path / "b", connection, http_server, "/blog.xml")
    assert len(first.run_once()) == 1
    assert second.run_once() == []  # not due again until the interval has passed
    assert len(http_server.requests) == 1


def test_gzip_body_and_formats(tmp_path, connection, http_server):
    http_server.route(
        "/blog.xml",
        (200, {**RSS, "content-encoding": "gzip"}, gzip.compress(rss(ROUND_ONE_LIVEBLOG))),
    )
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    assert poller.poll_feeds([poller.feeds[0]])[0].new_entries == 5

    feed = Feed("f", "https://example.org/feed", 60)
    for body in (rss(ROUND_ONE_LIVEBLOG), atom(ROUND_ONE_LIVEBLOG), json_feed(ROUND_ONE_LIVEBLOG)):
        entries = parse_feed(feed, body).entries
        assert [e.title for e in entries] == [i.title for i in ROUND_ONE_LIVEBLOG]
        assert all(e.published and e.published.tzinfo for e in entries)
    # JSON Feed: "+01:00" is normalised to UTC.
    assert parse_feed(feed, json_feed(ROUND_ONE_LIVEBLOG)).entries[0].published == PUBLISHED


def _doc(*items: tuple[str, str, str]) -> bytes:
    body = "".join(
        f"<item>{f'<guid>{guid}</guid>' if guid else ''}<title>{title}</title>"
        f"{f'<link>{link}</link>' if link else ''}</item>"
        for guid, link, title in items
    )
    return f"<rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode()


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        # guid on every item, each its own: guid
        ([("g1", "https://e.org/a", "A"), ("g2", "https://e.org/b", "B")], ["g1", "g2"]),
        # guids on too few items: links, and a content hash where there is no link
        (
            [("g1", "https://e.org/a", "A"), ("", "https://e.org/b", "B"), ("", "", "C")],
            ["https://e.org/a", "https://e.org/b", "sha1:"],
        ),
        # one guid repeated on different items: links
        (
            [("same", "https://e.org/a", "A"), ("same", "https://e.org/b", "B")],
            ["https://e.org/a", "https://e.org/b"],
        ),
        # no guids, one link on every item: content hashes
        ([("", "https://e.org/", "A"), ("", "https://e.org/", "B")], ["sha1:", "sha1:"]),
    ],
)
def test_entry_keys_fall_back_from_guid_to_link_to_content(items, expected):
    entries = parse_feed(Feed("f", "https://example.org/feed", 60), _doc(*items)).entries
    assert [
        e.key[:5] if x == "sha1:" else e.key for e, x in zip(entries, expected, strict=True)
    ] == expected
    assert len({e.key for e in entries}) == len(entries)


def test_items_that_leave_the_feed_and_return_are_not_new_again(tmp_path, connection, http_server):
    first, second = ROUND_ONE_LIVEBLOG[:2]
    http_server.route("/blog.xml", (200, RSS, rss([first, second])))
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    assert poller.poll_feeds([poller.feeds[0]])[0].new_entries == 2
    http_server.route("/blog.xml", (200, RSS, rss([second])))
    assert poller.poll_feeds([poller.feeds[0]])[0].new_entries == 0
    http_server.route("/blog.xml", (200, RSS, rss([first, second])))
    assert poller.poll_feeds([poller.feeds[0]])[0].new_entries == 0


def test_a_failing_feed_backs_off_and_is_flagged_unhealthy(tmp_path, connection, http_server):
    http_server.route("/down.xml", (500, {}, b""))
    poller = make_poller(tmp_path, connection, http_server, "/down.xml")
    feed = poller.feeds[0]  # interval 300 s
    waits = []
    with captured_logs() as logs:
        for _ in range(UNHEALTHY_AFTER_ERRORS):
            poller.poll_feeds([feed])[0]
            waits.append(round(due_in(connection, feed), -1))
    assert waits == [300, 600, 1200, 2400, 4800]
    unhealthy = [e for e in logs if e["event"] == "feed.unhealthy"]
    assert len(unhealthy) == 1 and unhealthy[0]["errors"] == UNHEALTHY_AFTER_ERRORS


def test_retry_after_delays_a_feed_without_an_error_strike(tmp_path, connection, http_server):
    http_server.route("/busy.xml", (429, {"retry-after": "900"}, b""))
    poller = make_poller(tmp_path, connection, http_server, "/busy.xml")
    with captured_logs() as logs:
        outcome = poller.poll_feeds([poller.feeds[0]])[0]
    assert outcome.status == "throttled"
    assert 890 <= due_in(connection, poller.feeds[0]) <= 900
    assert connection.hget(keys.feed_state(poller.feeds[0].name), "errors") is None
    assert [e["event"] for e in logs] == ["feed.throttled"]


def test_a_gzip_bomb_is_cut_at_the_cap(tmp_path, connection, http_server):
    bomb = gzip.compress(b"<rss>" + b" " * 20_000_000)  # ~20 KB on the wire, 20 MB inflated
    http_server.route("/bomb.xml", (200, {**RSS, "content-encoding": "gzip"}, bomb))
    poller = make_poller(
        tmp_path,
        connection,
        http_server,
        "/bomb.xml",
        settings="[poller]\nmax_body_bytes = 1000000\n",
    )
    outcome = poller.poll_feeds([poller.feeds[0]])[0]
    assert outcome.status == "failed" and "1000000-byte cap" in outcome.reason


@pytest.mark.parametrize(
    ("doctype", "title"),
    [
        (BILLION_LAUGHS, "&e9; tail"),  # a billion "lol"s if expanded
        ('<!ENTITY secret SYSTEM "file:///etc/hostname">', "&secret; tail"),  # a local file
    ],
)
def test_entity_expansion_and_external_entities_are_harmless(
    tmp_path, connection, http_server, doctype, title
):
    body = (
        f'<?xml version="1.0"?><!DOCTYPE r [{doctype}]><rss version="2.0"><channel>'
        f"<title>t</title><item><guid>1</guid><title>{title}</title></item></channel></rss>"
    ).encode()
    http_server.route("/evil.xml", (200, RSS, body))
    poller = make_poller(tmp_path, connection, http_server, "/evil.xml")
    # CPU time, not wall time: an expansion would burn it, a busy machine only delays it.
    started = time.process_time()
    outcome = poller.poll_feeds([poller.feeds[0]])[0]
    assert time.process_time() - started < 5
    assert outcome.status in ("fetched", "failed")  # refused as not a feed, or read inertly
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    for entry in queued_entries(connection):
        assert len(entry.title) < 1000 and "lollol" not in entry.title
        assert not hostname or hostname not in entry.title


def test_feeds_command_shows_each_feeds_health(
    tmp_path, connection, http_server, redis_url, start_process
):
    http_server.route("/good.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/down.xml", (500, {}, b""))
    poller = make_poller(tmp_path, connection, http_server, "/good.xml", "/down.xml")
    poller.run_once()
    listing = start_process(
        "feeds", "--config", str(tmp_path / "config"), "--json", env={"REDIS_URL": redis_url}
    )
    assert listing.finish() == 0
    rows = {r["feed"]: r for r in map(json.loads, listing.log_path.read_text().splitlines())}
    assert rows["good-xml"]["health"] == "ok" and rows["good-xml"]["entries_seen"] == 5
    assert rows["down-xml"]["health"] == "failing" and rows["down-xml"]["errors"] == 1
    assert rows["down-xml"]["last_error"] == "HTTP 500 Internal Server Error"
    assert 290 <= rows["good-xml"]["next_due_in_seconds"] <= 300


def test_a_feed_redirected_permanently_moves_and_a_temporary_one_never(
    tmp_path, connection, http_server
):
    http_server.route("/old.xml", (301, {"location": "/new.xml"}, b""))
    http_server.route("/new.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/temp.xml", (302, {"location": "/new.xml"}, b""))
    http_server.route("/loop.xml", (308, {"location": "/loop.xml"}, b""))
    poller = make_poller(tmp_path, connection, http_server, "/old.xml", "/temp.xml", "/loop.xml")
    moved, temporary, loop = poller.feeds
    with captured_logs() as logs:
        for _ in range(4):
            poller.poll_feeds([moved])[0]
            poller.poll_feeds([temporary])[0]
    assert [e["moved_to"] for e in logs if e["event"] == "feed.moved"] == [
        http_server.url_for("/new.xml")
    ]
    paths = [r.path for r in http_server.requests]
    assert paths.count("/old.xml") == 3  # the fourth poll went straight to the new URL
    assert paths.count("/temp.xml") == 4
    outcome = poller.poll_feeds([loop])[0]
    assert outcome.status == "failed" and outcome.reason == "more than 5 redirects"


def test_at_most_two_fetches_per_host_at_once(tmp_path, connection, http_server):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(request):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return 200, RSS, rss(ROUND_ONE_LIVEBLOG[:1])

    paths = [f"/feed-{i}.xml" for i in range(6)]
    for path in paths:
        http_server.route(path, slow)
    poller = make_poller(tmp_path, connection, http_server, *paths)
    assert len(poller.run_once()) == 6
    assert peak[0] == 2


@pytest.mark.parametrize(
    ("cache_control", "wait"),
    [
        ("public, max-age=3600", 3600),
        ('s-maxage="1800", max-age=60', 1800),
        ("max-age=10", 300),
        ("no-cache", 300),
        ("max-age=soon", 300),
    ],
)
def test_never_polled_sooner_than_cache_control_allows(
    tmp_path, connection, http_server, cache_control, wait
):
    http_server.route(
        "/blog.xml", (200, {**RSS, "cache-control": cache_control}, rss(ROUND_ONE_LIVEBLOG))
    )
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    assert len(poller.run_once()) == 1
    assert wait - 5 <= due_in(connection, poller.feeds[0]) <= wait


@pytest.fixture
def raw_server():
    """A bare TCP server for answers the HTTP fixture cannot give: a body dripped one byte at
    a time, or an endless body without a length."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(kind):
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\n")
                try:
                    if kind == "drip":
                        conn.sendall(b"content-length: 100000\r\n\r\n<rss>")
                        while not stop.is_set():
                            conn.sendall(b" ")
                            time.sleep(0.1)
                    else:
                        conn.sendall(b"connection: close\r\n\r\n<rss>")
                        chunk = b" " * 1_000_000
                        for _ in range(50):  # 50 MB, no length: only the running count stops it
                            conn.sendall(chunk)
                except OSError:
                    pass  # the client hung up: what the test wants

    threads = []

    def start(kind: str) -> str:
        threads.append(threading.Thread(target=serve, args=(kind,), daemon=True))
        threads[-1].start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"

    yield start
    stop.set()
    for thread in threads:
        thread.join()
    listener.close()


@pytest.mark.parametrize(
    ("kind", "reason"), [("drip", "took longer than 2s"), ("endless", "byte cap")]
)
def test_slow_drip_and_endless_bodies_are_cut_off(
    tmp_path, connection, http_server, raw_server, kind, reason
):
    http_server.route("/good.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    poller = make_poller(
        tmp_path,
        connection,
        http_server,
        "/good.xml",
        settings="[poller]\ntimeout_seconds = 2\nmax_body_bytes = 1000000\n",
    )
    hostile = Feed("hostile", raw_server(kind), 300)
    started = time.monotonic()
    outcome, good = poller.poll_feeds([hostile, poller.feeds[0]])
    assert outcome.status == "failed" and reason in outcome.reason
    assert good.new_entries == 5  # fetched alongside, not stalled
    assert time.monotonic() - started < 5


def test_invalid_encoding_is_tolerated(tmp_path, connection, http_server):
    body = rss(ROUND_ONE_LIVEBLOG).replace(b"Paris", b"Par\xffis")  # not UTF-8, said to be
    http_server.route("/blog.xml", (200, RSS, body))
    poller = make_poller(tmp_path, connection, http_server, "/blog.xml")
    assert poller.poll_feeds([poller.feeds[0]])[0].new_entries == 5
    titles = [e.title for e in queued_entries(connection)]
    assert titles[1:] == [i.title for i in ROUND_ONE_LIVEBLOG[1:]] and "Par" in titles[0]


@pytest.fixture
def keep_alive_servers(private_targets):
    """HTTP/1.1 servers that answer every request 304 and keep the connection open; each
    starts on its own port of 127.0.0.1 and returns its URL and its connections' log."""
    servers = []

    def start() -> tuple[str, list[str]]:
        events: list[str] = []

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                events.append("opened")
                try:
                    while self.rfile.readline():  # a request line, then headers to a blank one
                        while self.rfile.readline() not in (b"\r\n", b""):
                            pass
                        self.wfile.write(b"HTTP/1.1 304 Not Modified\r\n\r\n")
                finally:
                    events.append("closed")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", events

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_fetches_from_one_host_share_a_kept_alive_connection(
    tmp_path, connection, keep_alive_servers
):
    url, events = keep_alive_servers()
    feeds = [{"name": f"feed-{i}", "url": f"{url}/feed-{i}.xml"} for i in range(6)]
    config = load(write_config(tmp_path, feeds=feeds, settings="[poller]\nper_host = 1\n"))
    outcomes = Poller(config, connection).run_once()
    assert [o.status for o in outcomes] == ["not_modified"] * 6
    assert events.count("opened") == 1


def test_the_pools_of_hosts_not_used_lately_are_closed(keep_alive_servers):
    (first, first_events), (second, second_events) = keep_alive_servers(), keep_alive_servers()

    async def fetch_both():
        fetcher = Fetcher(timeout_seconds=5, max_bytes=1000, per_host=1, hosts=1)
        try:
            await fetcher.fetch(f"{first}/feed.xml", '"v1"')
            await fetcher.fetch(f"{second}/feed.xml", '"v1"')
            assert [port for _, _, port in fetcher.transport.pools] == [urlsplit(second).port]
        finally:
            await fetcher.aclose()

    asyncio.run(fetch_both())
    deadline = time.monotonic() + 5
    while first_events != ["opened", "closed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first_events == ["opened", "closed"] and second_events[0] == "opened"


def test_credentials_in_a_feed_url_go_to_its_origin_only(tmp_path, connection, http_server):
    elsewhere = serve_locally()
    other = next(elsewhere)
    try:
        other.route("/feed.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
        http_server.route("/feed.xml", (302, {"location": other.url_for("/feed.xml")}, b""))
        url = http_server.url_for("/feed.xml").replace("://", "://reader:pw%40x@")
        poller = make_poller(tmp_path, connection, http_server, "/unused.xml")
        assert poller.poll_feeds([Feed("private", url, 300)])[0].new_entries == 5
        sent = http_server.requests[0].headers["authorization"]
        assert sent == "Basic " + base64.b64encode(b"reader:pw@x").decode()
        assert "authorization" not in other.requests[0].headers
    finally:
        elsewhere.close()


def test_a_fetch_error_quoting_a_url_is_kept_and_shown_without_its_credentials(
    tmp_path, connection, http_server, redis_url, start_process
):
    """httpx quotes a malformed header line whole, here a redirect's Location with a NUL in
    it: the reason is redacted before it is logged, stored, or listed by `newsmon feeds`."""
    target = http_server.url_for("/next\x00").replace("://", "://mover:pw-REDIR-1@")
    http_server.route("/feed.xml", (302, {"location": target + "?apikey=key-REDIR-2"}, b""))
    feed_url = http_server.url_for("/feed.xml").replace("://", "://reader:pw-FEED-3@")
    directory = write_config(
        tmp_path / "config", feeds=[{"name": "blog", "url": feed_url + "?apikey=key-FEED-4"}]
    )
    env = {"REDIS_URL": redis_url}
    secrets = ("pw-REDIR-1", "key-REDIR-2", "pw-FEED-3", "key-FEED-4")

    poll = start_process("poll", "--config", str(directory), env=env)
    poll.wait_for(lambda: "feed.failed" in [e["event"] for e in poll.events()])
    assert poll.stop() == 0
    (failed,) = [e for e in poll.events() if e["event"] == "feed.failed"]
    shown = http_server.url_for("/next").replace("://", "://***@") + "\\x00?apikey=***"
    assert "illegal header line" in failed["reason"] and shown in failed["reason"]
    assert not any(s in poll.log_path.read_text() for s in secrets)

    stored = connection.hget(keys.feed_state("blog"), "last_error").decode()
    assert stored == failed["reason"]
    listed = start_process("feeds", "--config", str(directory), "--json", env=env)
    table = start_process("feeds", "--config", str(directory), env=env)
    assert listed.finish() == 0 and table.finish() == 0
    assert json.loads(listed.log_path.read_text())["last_error"] == stored
    assert stored in table.log_path.read_text()
    for output in (listed.log_path.read_text(), table.log_path.read_text()):
        assert not any(s in output for s in secrets), output
