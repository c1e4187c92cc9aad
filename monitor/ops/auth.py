"""Bearer tokens for what `newsmon serve` exposes beyond health and metrics.

The tokens come from the environment (NEWSMON_API_TOKEN, NEWSMON_VIEW_TOKEN), never from
the config folder, which is often kept in git. A token must be long enough that guessing
it is hopeless (MIN_TOKEN_CHARS), and each client gets few wrong guesses a minute anyway
(FailureThrottle): a short token set by mistake stops `newsmon serve` from starting."""

from __future__ import annotations

import hmac
import math
import os
import threading
import time
from collections import OrderedDict, deque

from starlette.requests import Request

from monitor.ops import CommandError

API_TOKEN_ENV = "NEWSMON_API_TOKEN"
VIEW_TOKEN_ENV = "NEWSMON_VIEW_TOKEN"
MIN_TOKEN_CHARS = 32  # token_urlsafe(32) makes 43
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def token_from_env(name: str) -> str | None:
    """The token set in `name`, or None when it is unset or blank. Raises CommandError (exit
    2) when it is shorter than MIN_TOKEN_CHARS, saying how to make one."""
    token = os.environ.get(name, "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise CommandError(
            f"{name} has {len(token)} characters; a token needs at least {MIN_TOKEN_CHARS}: "
            f"set {name} to a random one, e.g. the output of {MAKE_TOKEN}"
        )
    return token


def bearer_matches(authorization: str | None, tokens: tuple[str, ...]) -> bool:
    """Whether an Authorization header carries one of `tokens`. Every token is compared, in
    constant time, so the answer's timing tells nothing about how much of a guess was right."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.strip().encode(), token.encode())
    return matched


def client_address(request: Request) -> str | None:
    """The client a request is counted and logged under: the peer, or the address a trusted
    proxy named for it (uvicorn's FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else None


class FailureThrottle:
    """Wrong tokens per client address, in this process's memory: after `failures` 401s
    within `window_seconds`, the client is answered 429 (even with the right token, or a
    guess would still be tested) until the oldest of them is older than the window. At most
    `clients` addresses are remembered, the least recently failing forgotten first, so a
    flood of addresses costs bounded memory. Shared by the API and the board, which run
    handlers both on the event loop and in the thread pool: hence the lock."""

    def __init__(self, failures: int = 10, window_seconds: float = 60.0, clients: int = 10_000):
        self.failures, self.window, self.clients = failures, window_seconds, clients
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str | None) -> int | None:
        """Whole seconds `client` must wait before it is heard again; None if it may ask."""
        now = time.monotonic()
        with self._lock:
            times = self._seen.get(client or "")
            if times is None or len(times) < self.failures:
                return None
            wait = times[0] + self.window - now
        return math.ceil(wait) if wait > 0 else None

    def failed(self, client: str | None) -> None:
        """Note a wrong or missing token from `client`."""
        key, now = client or "", time.monotonic()
        with self._lock:
            times = self._seen.pop(key, None) or deque(maxlen=self.failures)
            times.append(now)
            self._seen[key] = times  # last: the most recent failure
            while len(self._seen) > self.clients:
                self._seen.popitem(last=False)
