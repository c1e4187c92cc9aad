"""One delivery job's work: the endpoint's turn taken, its alerts sent, each outcome recorded,
and what failed retried, deferred or dead-lettered message by message, under the same
webhook-id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis
import structlog

from monitor.core import counters
from monitor.core.config import Settings
from monitor.core.models import Alert, Subscription
from monitor.core.subscriptions import Subscriptions
from workers.delivery.deadletters import DeadLetters
from workers.delivery.endpoints import EndpointPolicy, Endpoints, EndpointStatus
from workers.delivery.messages import MessageLog
from workers.delivery.rounds import Round, sort_round
from workers.delivery.schedule import schedule_deliveries
from workers.delivery.send import Deliverer

log = structlog.get_logger()


@dataclass
class Dispatcher:
    """Sends one subscription's alerts, one endpoint turn at a time."""

    connection: redis.Redis
    settings: Settings
    subscriptions: Subscriptions
    endpoints: Endpoints
    policy: EndpointPolicy
    deliverer: Deliverer
    messages: MessageLog
    dead_letters: DeadLetters

    def deliver(self, subscription_id: str, alerts: list[Alert], attempt: int) -> dict[str, int]:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            reason = "subscription deleted (from subscriptions.toml or the API)"
            return self._dead_letter(subscription_id, alerts, attempt - 1, reason)
        health = self.endpoints.health(subscription)
        if health.status is EndpointStatus.DISABLED:
            reason = f"subscription disabled: {health.disabled_reason}"
            return self._dead_letter(subscription_id, alerts, attempt - 1, reason)
        if (wait := health.blocked_for()) > 0:
            return self._defer(subscription_id, alerts, attempt, wait, "endpoint failing")
        in_flight = self.policy.in_flight(health)
        turn_seconds = self.policy.turn_seconds(len(alerts), in_flight)
        token, wait = self.endpoints.take_turn(subscription_id, turn_seconds)
        if token is None:
            return self._defer(subscription_id, alerts, attempt, wait, "endpoint busy")
        try:
            return self._send_round(subscription, alerts, attempt, in_flight)
        finally:
            # Held until the endpoint's state is written, so the next turn sees a failure.
            self.endpoints.end_turn(subscription_id, token)

    def _schedule(
        self, subscription_id: str, alerts: list[Alert], attempt: int, delay: float
    ) -> None:
        schedule_deliveries(
            self.connection,
            self.settings,
            {subscription_id: alerts},
            attempt=attempt,
            delay_seconds=delay,
        )

    def _defer(
        self, subscription_id: str, alerts: list[Alert], attempt: int, wait: float, why: str
    ) -> dict[str, int]:
        """This batch waits `wait` seconds in the schedule, and spends no attempt doing so."""
        self._schedule(subscription_id, alerts, attempt, wait)
        log.info("delivery.deferred", alerts=len(alerts), seconds=round(wait, 1), reason=why)
        return {"deferred": len(alerts)}

    def _send_round(
        self, subscription: Subscription, alerts: list[Alert], attempt: int, in_flight: int
    ) -> dict[str, int]:
        outcomes = self.deliverer.send_all(
            subscription, alerts, in_flight, stop_after_failures=in_flight
        )
        round_ = sort_round(alerts, outcomes, attempt, len(self.settings.retry_schedule_seconds))
        _log_round(round_, attempt)
        self.messages.record(round_, attempt)
        observed = round_.observations(datetime.now(UTC))
        counters.record(self.connection, round_.counts(), subscription.id, observations=observed)
        for alert, outcome in round_.failed + round_.dead:
            self.dead_letters.add(alert, attempt, outcome.reason)
        verdict = self.policy.after_round(subscription, round_, attempt)
        if verdict.disabled_reason:
            return self._disabled(subscription, verdict.disabled_reason, round_.pending, attempt)
        self._reschedule(subscription.id, round_, attempt, verdict.delay)
        return {
            "delivered": len(round_.delivered),
            "retrying": len(round_.retry),
            "untried": len(round_.untried),
        }

    def _reschedule(self, subscription_id: str, round_: Round, attempt: int, delay: float) -> None:
        """Retries at the next attempt, untried alerts at this one again, both after `delay`."""
        if retry := [alert for alert, _ in round_.retry]:
            self._schedule(subscription_id, retry, attempt + 1, delay)
        if round_.untried:
            self._schedule(subscription_id, round_.untried, attempt, delay)

    def _disabled(
        self, subscription: Subscription, reason: str, pending: list[Alert], attempt: int
    ) -> dict[str, int]:
        log.error(
            "subscription.disabled", url=subscription.url, reason=reason, dead_lettered=len(pending)
        )
        why = f"subscription disabled: {reason}"
        return self._dead_letter(subscription.id, pending, attempt, why)

    def _dead_letter(
        self, subscription_id: str, alerts: list[Alert], attempts: int, reason: str
    ) -> dict[str, int]:
        """Keep undeliverable alerts for `newsmon deliveries replay`."""
        counters.record(self.connection, {"alerts_dead": len(alerts)}, subscription_id)
        for alert in alerts:
            _alert_log(alert).error("alert.dead", attempt=attempts, reason=reason)
            self.dead_letters.add(alert, attempts, reason)
        return {"dead": len(alerts)}


def _log_round(round_: Round, attempt: int) -> None:
    for alert, outcome in round_.delivered:
        _alert_log(alert).info(
            "alert.delivered", http_status=outcome.http_status, duration_ms=outcome.duration_ms
        )
    for alert, outcome in round_.retry:
        _alert_log(alert).warning(
            "alert.retry",
            reason=outcome.reason,
            http_status=outcome.http_status,
            next_attempt=attempt + 1,
        )
    for event, sent in (("alert.failed", round_.failed), ("alert.dead", round_.dead)):
        for alert, outcome in sent:
            _alert_log(alert).error(event, reason=outcome.reason, http_status=outcome.http_status)


def _alert_log(alert: Alert) -> structlog.typing.FilteringBoundLogger:
    return log.bind(alert_id=alert.id, entry_id=alert.entry.id)
