"""The SSRF guard refuses non-public targets, before any connection is made."""

from __future__ import annotations

import asyncio

import pytest

from monitor.core import http
from monitor.core.models import Subscription
from monitor.poller.fetch import Fetcher, FetchError
from tests.helpers import SECRET, make_alerts
from workers.delivery.send import Deliverer


def fetch(url: str):
    """One fetch through a fresh Fetcher on its own event loop."""

    async def run():
        fetcher = Fetcher(timeout_seconds=2, max_bytes=1000)
        try:
            return await fetcher.fetch(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(run())


@pytest.fixture
def guard_on(private_targets, monkeypatch):
    """The guard back on in a test whose local servers turned it off."""
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_TARGETS")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "192.0.2.1",
    ],
)
def test_non_public_addresses(address):
    assert not http.is_public(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses(address):
    assert http.is_public(address)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "10.1.2.3", "169.254.169.254", "localhost"])
def test_webhooks_to_private_targets_are_refused_for_good(guard_on, http_server, host):
    port = http_server.url.rsplit(":", 1)[1]
    deliverer = Deliverer(timeout_seconds=1, max_in_flight=1)
    subscription = Subscription("s", f"http://{host}:{port}/hook", frozenset({"*"}), (SECRET,))
    outcome = deliverer.send(subscription, make_alerts(1, "s")[0])
    assert outcome.status == "failed"
    assert "non-public address" in outcome.reason
    assert http_server.requests == []


def test_feeds_on_private_targets_are_refused(guard_on, http_server):
    http_server.route("/feed.xml", (200, {}, b"<rss/>"))
    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1"):
        fetch(http_server.url_for("/feed.xml"))
    assert http_server.requests == []


def test_a_redirect_to_a_private_address_is_refused(guard_on, http_server, monkeypatch):
    # Let this test's own server count as public, so that only the redirect's target is not.
    monkeypatch.setattr(http, "is_public", lambda address: address == "127.0.0.1")
    http_server.route("/feed.xml", (302, {"location": "http://10.20.30.40/internal"}, b""))
    with pytest.raises(FetchError, match=r"non-public address 10\.20\.30\.40"):
        fetch(http_server.url_for("/feed.xml"))
    assert [r.path for r in http_server.requests] == ["/feed.xml"]


def test_the_guard_can_be_turned_off(http_server):
    http_server.route("/feed.xml", (200, {}, b"<rss/>"))
    assert fetch(http_server.url_for("/feed.xml")).body
