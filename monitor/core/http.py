"""HTTP as newsmon speaks it, for feeds and webhooks alike: guarded clients and Retry-After.

The SSRF guard: newsmon connects only to public addresses unless told otherwise.

Feed and webhook URLs come from config and from feeds' redirects; a hostile one could point
newsmon at a cloud metadata service or a database on the private network. The check runs
in the HTTP client's connect step, on the address actually connected to, so a redirect or a
DNS answer that changes between check and use (rebinding) cannot slip past it.
NEWSMON_ALLOW_PRIVATE_TARGETS=1 turns it off (for tests and for feeds on your own network).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

MAX_RETRY_AFTER_SECONDS = 24 * 3600


class BlockedAddress(httpcore.ConnectError):
    """The host resolves to an address newsmon refuses to connect to."""


def allow_private_targets() -> bool:
    return os.environ.get("NEWSMON_ALLOW_PRIVATE_TARGETS") == "1"


# IPv6 forms whose last 32 bits are an IPv4 address that a packet to them reaches (through
# a translator or a tunnel): NAT64's well-known prefix (RFC 6052), IPv4-translated (SIIT,
# RFC 2765) and the deprecated IPv4-compatible ::a.b.c.d (RFC 4291).
LAST_32_BITS_IPV4 = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96")
)
# NAT64's local-use prefix (RFC 8215) is a translator on the operator's own network, where
# the IPv4 may sit at any of RFC 6052's offsets; Teredo (2001::/32) tunnels through a relay
# to a client address no webhook or feed has: never public targets.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def is_public(address: str) -> bool:
    """Whether newsmon may connect to `address`: the one decision, for URLs checked ahead
    (refused_target) and for every connect (the guarded backends). An IPv6 address that
    embeds an IPv4 one (mapped, NAT64, 6to4, ...) is judged by the IPv4 it reaches."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL_USE or ip.teredo:
            return False
        if embedded := embedded_ipv4(ip):
            return all(_is_public_ip(v4) for v4 in embedded)
    return _is_public_ip(ip)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 address a packet to `ip` reaches; () when it embeds none."""
    if ip.ipv4_mapped:  # ::ffff:a.b.c.d
        return (ip.ipv4_mapped,)
    if ip.sixtofour:  # 2002:AABB:CCDD::/48
        return (ip.sixtofour,)
    if any(ip in network for network in LAST_32_BITS_IPV4):
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return ()


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global is False for loopback, private, link-local (169.254/16, metadata services),
    # CGNAT (100.64/10), unique-local (fc00::/7), documentation and reserved ranges.
    return ip.is_global and not ip.is_multicast


def public_address(host: str, infos: list[tuple]) -> str:
    """The address to connect to for `host`, if every address it resolves to is public."""
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise BlockedAddress(
            f"{host} resolves to non-public address {refused[0]}; refused "
            f"(set NEWSMON_ALLOW_PRIVATE_TARGETS=1 to allow private targets)"
        )
    return addresses[0]


def refused_target(host: str, port: int) -> str | None:
    """Why the guard would refuse to connect to `host`, checked ahead (the API refuses such a
    webhook URL at once); None when it would connect, or when the name does not resolve now
    (deliveries retry, and the guard checks again on every connect)."""
    if allow_private_targets():
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    try:
        public_address(host, infos)
    except BlockedAddress as exc:
        return str(exc)
    return None


def refused_url(url: str) -> str | None:
    """refused_target for the host and port of a checked http(s) URL (the port its scheme
    implies when it names none)."""
    parts = urlsplit(url)
    return refused_target(
        parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    )


class GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself, refuses it if any address is not public, connects by IP."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        # Connect to the address that was checked: no second lookup to race.
        address = public_address(host, infos)
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


class AsyncGuardedBackend(httpcore.AnyIOBackend):
    """GuardedBackend for the asyncio client the poller uses."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        address = public_address(host, infos)
        return await super().connect_tcp(address, port, timeout, local_address, socket_options)


# httpx has no public hook for its network backend; the guard tests pin this down.
def http_client(**options: object) -> httpx.Client:
    """An httpx client whose connections pass the guard (unless private targets are allowed)."""
    transport = httpx.HTTPTransport()
    if not allow_private_targets():
        transport._pool._network_backend = GuardedBackend()
    return httpx.Client(transport=transport, **options)


class HostPools(httpx.AsyncBaseTransport):
    """The poller's asyncio transport: a small pool of guarded connections per host (scheme,
    host and port) rather than one big pool.

    httpcore's pool looks over all its connections several times on every request and every
    release (quadratic in their number), so one pool keeping connections alive to hundreds of
    hosts costs more than connecting anew. Each pool here keeps up to `per_host` connections
    alive (for 5 s after their last use); the pools of the `hosts` hosts used last are kept,
    and an older one is closed once none of its requests is in flight. A response's body
    must be closed (`aclose`), as httpx's client does, for its request to count as done."""

    def __init__(self, per_host: int, hosts: int):
        self.limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host)
        self.hosts = hosts
        self.ssl_context = httpx.create_ssl_context()  # one for all: each costs a CA bundle
        self.pools: OrderedDict[tuple[str, str, int | None], _HostPool] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.scheme, request.url.host, request.url.port)
        pool = self.pools.get(origin)
        if pool is None:
            pool = self.pools[origin] = _HostPool(self._transport())
        self.pools.move_to_end(origin)
        pool.in_flight += 1
        try:
            if len(self.pools) > self.hosts:
                await self._close_unused()
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            pool.in_flight -= 1
            raise
        response.stream = _Released(response.stream, pool)
        return response

    async def aclose(self) -> None:
        pools, self.pools = list(self.pools.values()), OrderedDict()
        for pool in pools:
            await pool.transport.aclose()

    def _transport(self) -> httpx.AsyncHTTPTransport:
        transport = httpx.AsyncHTTPTransport(verify=self.ssl_context, limits=self.limits)
        if not allow_private_targets():
            transport._pool._network_backend = AsyncGuardedBackend()
        return transport

    async def _close_unused(self) -> None:
        """Close the least recently used pools without a request in flight, down to `hosts`.
        They leave `pools` before the first await, so no request starts on one meanwhile."""
        unused = [origin for origin, pool in self.pools.items() if not pool.in_flight]
        closing = [self.pools.pop(origin) for origin in unused[: len(self.pools) - self.hosts]]
        for pool in closing:
            await pool.transport.aclose()


@dataclass(slots=True)
class _HostPool:
    transport: httpx.AsyncHTTPTransport
    in_flight: int = 0


class _Released(httpx.AsyncByteStream):
    """A response body that, once closed, counts its request out of its pool."""

    def __init__(self, stream: httpx.AsyncByteStream, pool: _HostPool):
        self.stream = stream
        self.pool: _HostPool | None = pool

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.stream.__aiter__()  # the body's own iterator: no layer per chunk

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        finally:
            if self.pool is not None:
                self.pool.in_flight -= 1
                self.pool = None


def blocked_reason(exc: BaseException) -> str | None:
    """The guard's refusal behind an httpx error, if that is what it was."""
    cause = exc.__cause__ or exc.__context__
    return str(cause) if isinstance(cause, BlockedAddress) else None


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After (seconds or an HTTP date) clamped to [0, 24 h]; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
