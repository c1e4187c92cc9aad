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
from collections.abc import Iterable
from email.utils import parsedate_to_datetime

import anyio
import httpcore
import httpx

MAX_RETRY_AFTER_SECONDS = 24 * 3600


class BlockedAddress(httpcore.ConnectError):
    """The host resolves to an address newsmon refuses to connect to."""


def allow_private_targets() -> bool:
    return os.environ.get("NEWSMON_ALLOW_PRIVATE_TARGETS") == "1"


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
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


def async_http_client(**options: object) -> httpx.AsyncClient:
    """The asyncio twin of http_client."""
    transport = httpx.AsyncHTTPTransport()
    if not allow_private_targets():
        transport._pool._network_backend = AsyncGuardedBackend()
    return httpx.AsyncClient(transport=transport, **options)


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
