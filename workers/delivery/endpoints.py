"""Endpoint health: which webhook endpoints are failing, until when to leave them alone,
and which are disabled. Shared by all workers through one Redis hash per subscription.

A failing endpoint's backlog waits in its own schedule (`blocked_until`) instead of holding
workers; one that keeps failing for `disable_after_hours`, or answers 410 Gone, is disabled
until its URL changes in subscriptions.toml or an operator re-enables it.

One worker at a time sends to an endpoint (`take_turn`, a lease in Redis shared by every
worker process): an endpoint that hangs holds at most one worker until its timeout, and
the other workers go on delivering to everyone else.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis

from monitor.core import keys
from monitor.core.models import Subscription
from monitor.core.processes import exited_here, process_name


@dataclass(frozen=True, slots=True)
class Health:
    """One endpoint's state, as read in one go."""

    disabled_reason: str | None  # None unless disabled; changing the URL re-enables it
    disabled_at: float | None
    failing_since: float | None
    blocked_until: float  # 0 when it may be tried now

    @property
    def status(self) -> str:
        if self.disabled_reason:
            return "disabled"
        return "failing" if self.failing_since is not None else "ok"

    def blocked_for(self) -> float:
        """Seconds until the failing endpoint may be tried again (0 when it may be now)."""
        return max(self.blocked_until - time.time(), 0.0)


# A turn taken moments ago is likely a healthy endpoint's quick batch: worth a short wait.
# One held longer is a slow or hanging endpoint: the batch waits in the schedule instead,
# the longer the turn has lasted (at least a second), so a hung endpoint is not polled.
BRIEF_WAIT_SECONDS = 0.2
POLL_SECONDS = 0.01

RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Endpoints:
    def __init__(self, connection: redis.Redis):
        self.connection = connection
        self._release = connection.register_script(RELEASE_SCRIPT)

    def take_turn(self, subscription_id: str, hold_seconds: float) -> tuple[str | None, float]:
        """This worker's turn to send to the endpoint, for at most `hold_seconds`: (token, 0)
        when it may send now (give the token back with `end_turn`), else (None, seconds to
        wait before trying again) while another worker has the turn."""
        key = keys.endpoint_turn(subscription_id)
        token = f"{secrets.token_hex(8)} {time.time()} {process_name()}"
        deadline = time.monotonic() + BRIEF_WAIT_SECONDS
        while True:
            if self.connection.set(key, token, nx=True, px=max(int(hold_seconds * 1000), 1)):
                return token, 0.0
            holder = (self.connection.get(key) or b"").decode()
            if holder and exited_here(holder.split()[2]):
                # Its worker was killed mid-send: the turn is free now, not when it expires.
                self._release(keys=[key], args=[holder])
                continue
            held_for = time.time() - float(holder.split()[1]) if holder else 0.0
            if held_for >= BRIEF_WAIT_SECONDS or time.monotonic() >= deadline:
                return None, max(held_for, 1.0)
            time.sleep(POLL_SECONDS)

    def end_turn(self, subscription_id: str, token: str) -> None:
        self._release(keys=[keys.endpoint_turn(subscription_id)], args=[token])

    def health(self, subscription: Subscription) -> Health:
        raw = self.connection.hgetall(keys.endpoint(subscription.id))
        state = {k.decode(): v.decode() for k, v in raw.items()}
        disabled = state.get("disabled_url") == subscription.url
        return Health(
            disabled_reason=state.get("disabled_reason", "disabled") if disabled else None,
            disabled_at=float(state["disabled_at"]) if disabled else None,
            failing_since=float(state["failing_since"]) if "failing_since" in state else None,
            blocked_until=float(state.get("blocked_until", 0)),
        )

    def succeeded(self, subscription_id: str) -> None:
        self.connection.hdel(
            keys.endpoint(subscription_id), "failing_since", "blocked_until", "failed_rounds"
        )

    def failed(self, subscription_id: str) -> tuple[int, float]:
        """Record a failed round of deliveries; returns how many rounds in a row have failed
        and for how many seconds the endpoint has been failing."""
        now = time.time()
        key = keys.endpoint(subscription_id)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "failing_since", now)
            pipe.hincrby(key, "failed_rounds", 1)
            pipe.hget(key, "failing_since")
            _, rounds, since = pipe.execute()
        return rounds, now - float(since)

    def block(self, subscription_id: str, seconds: float) -> None:
        """Leave the endpoint alone for `seconds`: its deliveries wait until then."""
        self.connection.hset(keys.endpoint(subscription_id), "blocked_until", time.time() + seconds)

    def disable(self, subscription: Subscription, reason: str) -> None:
        self.connection.hset(
            keys.endpoint(subscription.id),
            mapping={
                "disabled_url": subscription.url,
                "disabled_reason": reason,
                "disabled_at": time.time(),
            },
        )

    def enable(self, subscription_id: str) -> bool:
        """Re-enable (and forget past failures); False when it was not disabled."""
        return bool(self.connection.delete(keys.endpoint(subscription_id)))
