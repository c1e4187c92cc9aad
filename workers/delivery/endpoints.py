"""Endpoint health: which webhook endpoints are failing, until when to leave them alone,
and which are disabled. Shared by all workers through one Redis hash per subscription.

`EndpointPolicy` decides, after each round of sends, what becomes of the endpoint: a
failing endpoint's backlog waits in its own schedule (`blocked_until`) instead of holding
workers; one that keeps failing for `disable_after_hours`, or answers 410 Gone, is disabled
until its URL changes (in subscriptions.toml or over the API) or an operator re-enables it.

One worker at a time sends to an endpoint (`take_turn`, a lease in Redis shared by every
worker process): an endpoint that hangs holds at most one worker until its timeout, and
the other workers go on delivering to everyone else.
"""

from __future__ import annotations

import math
import random
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import redis

from monitor.core import keys
from monitor.core.config import Settings
from monitor.core.models import Subscription
from monitor.core.processes import exited_here, process_name
from workers.delivery.rounds import Round


class EndpointStatus(StrEnum):
    OK = "ok"
    FAILING = "failing"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Health:
    """One endpoint's state, as read in one go."""

    disabled_reason: str | None  # None unless disabled; changing the URL re-enables it
    disabled_at: float | None
    failing_since: float | None
    blocked_until: float  # 0 when it may be tried now
    last_error: str | None  # why its last failed round failed, while it is failing

    @property
    def status(self) -> EndpointStatus:
        if self.disabled_reason:
            return EndpointStatus.DISABLED
        if self.failing_since is not None:
            return EndpointStatus.FAILING
        return EndpointStatus.OK

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
            last_error=state.get("last_error") if "failing_since" in state else None,
        )

    def succeeded(self, subscription_id: str) -> None:
        self.connection.hdel(
            keys.endpoint(subscription_id),
            "failing_since",
            "blocked_until",
            "failed_rounds",
            "last_error",
        )

    def failed(self, subscription_id: str, reason: str) -> tuple[int, float]:
        """Record a failed round of deliveries and why it failed; returns how many rounds in a
        row have failed and for how many seconds the endpoint has been failing."""
        now = time.time()
        key = keys.endpoint(subscription_id)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "failing_since", now)
            pipe.hincrby(key, "failed_rounds", 1)
            pipe.hget(key, "failing_since")
            pipe.hset(key, "last_error", reason)
            _, rounds, since, _ = pipe.execute()
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


# A worker killed mid-send leaves its turn at an endpoint taken until this after the worst
# case of its batch (unless a worker on its host sees it exit first).
TURN_MARGIN_SECONDS = 5
GONE_REASON = "the endpoint answered 410 Gone"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What becomes of a round's pending alerts: all dead-lettered when the round disabled
    the endpoint, else sent again after `delay` seconds."""

    disabled_reason: str | None = None
    delay: float = 0.0


class EndpointPolicy:
    """How hard to push an endpoint, when to leave it alone and when to give up on it; what
    it decides after a round is written to the endpoint's state for every worker to see."""

    def __init__(self, endpoints: Endpoints, settings: Settings):
        self.endpoints = endpoints
        self.settings = settings

    def in_flight(self, health: Health) -> int:
        """A failing endpoint is probed one message at a time; a healthy one gets
        max_in_flight."""
        if health.status is EndpointStatus.FAILING:
            return 1
        return self.settings.max_in_flight_per_endpoint

    def turn_seconds(self, messages: int, in_flight: int) -> float:
        """The longest a turn to send `messages`, `in_flight` at a time, can last."""
        per_message = self.settings.delivery_timeout_seconds + 1
        return math.ceil(messages / in_flight) * per_message + TURN_MARGIN_SECONDS

    def after_round(self, subscription: Subscription, round_: Round, attempt: int) -> Verdict:
        """Record how the endpoint did at this attempt, and block or disable it if it failed."""
        if round_.delivered:
            self.endpoints.succeeded(subscription.id)
        if round_.gone:
            return self._disable(subscription, GONE_REASON)
        if not round_.pending:
            return Verdict()
        failed_rounds, failing_for = self.endpoints.failed(subscription.id, round_.failure)
        if failing_for > self.settings.disable_after_seconds:
            return self._disable(subscription, f"failing for {failing_for / 3600:.1f} hours")
        delay = self.backoff(attempt, failed_rounds, round_.retry_after)
        self.endpoints.block(subscription.id, delay)
        return Verdict(delay=delay)

    def backoff(self, attempt: int, failed_rounds: int, retry_after: float) -> float:
        """Seconds to leave the endpoint alone. It backs off along the retry schedule by its
        own failed rounds too, so a dead endpoint is probed ever more rarely. Full jitter: a
        random wait up to the step, unless Retry-After asks for more."""
        schedule = self.settings.retry_schedule_seconds
        step = schedule[min(max(attempt, failed_rounds), len(schedule) - 1)]
        return max(random.uniform(0, step), retry_after)

    def _disable(self, subscription: Subscription, reason: str) -> Verdict:
        self.endpoints.disable(subscription, reason)
        return Verdict(disabled_reason=reason)
