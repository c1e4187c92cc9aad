"""The SSRF guard refuses non-public targets, before any connection is made."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# IPv4 ranges newsmon refuses, and the IPv6 forms that carry an IPv4 address to a translator
# or tunnel which then reaches it.
PRIVATE_V4 = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]
PRIVATE_V4 += ["100.64.0.0/10", "0.0.0.0/8", "192.0.2.0/24", "224.0.0.0/4", "240.0.0.0/4"]
EMBEDDINGS = {
    "nat64": lambda v4, low: (0x64FF9B << 96) | v4,
    "nat64-local-use": lambda v4, low: (0x64FF9B0001 << 80) | (low & 0xFFFF) << 32 | v4,
    "6to4": lambda v4, low: (0x2002 << 112) | (v4 << 80) | (low & (1 << 80) - 1),
    "ipv4-compatible": lambda v4, low: v4,
    "ipv4-mapped": lambda v4, low: (0xFFFF << 32) | v4,
    "ipv4-translated": lambda v4, low: (0xFFFF << 48) | v4,
    # Teredo: the server's IPv4 (any), flags and port, then the client's IPv4 inverted.
    "teredo": lambda v4, low: (0x20010000 << 96) | (low & (1 << 64) - 1) << 32 | (~v4 & 0xFFFFFFFF),
}


@st.composite
def private_ipv4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = ipaddress.IPv4Network(draw(st.sampled_from(PRIVATE_V4)))
    return network[draw(st.integers(0, network.num_addresses - 1))]


def embedded(form: str, v4: ipaddress.IPv4Address, low: int) -> str:
    return str(ipaddress.IPv6Address(EMBEDDINGS[form](int(v4), low)))


@given(
    form=st.sampled_from(sorted(EMBEDDINGS)),
    v4=private_ipv4(),
    low=st.integers(0, (1 << 80) - 1),
)
def test_a_private_ipv4_embedded_in_ipv6_is_refused_in_every_form(form, v4, low):
    address = embedded(form, v4, low)
    assert not http.is_public(address), address
    # Checked ahead (the API's check of a webhook URL) by the same decision.
    assert "non-public address" in (http.refused_target(address, 443) or ""), address


@pytest.mark.parametrize("form", sorted(set(EMBEDDINGS) - {"nat64-local-use", "teredo"}))
def test_a_public_ipv4_embedded_in_ipv6_stays_public(form):
    assert http.is_public(embedded(form, ipaddress.IPv4Address("93.184.216.34"), 1))


def test_teredo_is_never_a_public_target():
    """Teredo reaches its client through a relay: refused even when both IPv4s are public."""
    public = ipaddress.IPv4Address("93.184.216.34")
    assert not http.is_public(embedded("teredo", public, int(public) << 32))


@pytest.mark.parametrize("form", sorted(EMBEDDINGS))
def test_an_embedded_metadata_address_is_refused_on_connect(guard_on, http_server, form):
    """The connect step (after DNS) refuses it too: no request leaves, for a webhook or a
    feed."""
    address = embedded(form, ipaddress.IPv4Address("169.254.169.254"), 0x4136E378)
    port = http_server.url.rsplit(":", 1)[1]
    deliverer = Deliverer(timeout_seconds=1, max_in_flight=1)
    subscription = Subscription("s", f"http://[{address}]:{port}/hook", frozenset({"*"}), (SECRET,))
    outcome = deliverer.send(subscription, make_alerts(1, "s")[0])
    assert outcome.status == "failed"
    assert f"{address} resolves to non-public address" in outcome.reason
    with pytest.raises(FetchError, match="non-public address"):
        fetch(f"http://[{address}]:{port}/feed.xml")
    assert http_server.requests == []
