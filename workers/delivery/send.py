"""Deliver step: build, sign and POST one webhook message, and say what happened.

The body is built from the Alert alone, in the subscription's format (formats.py; the
Standard Webhooks headers go with every format), so every attempt sends the same bytes
under the same `webhook-id`; only `webhook-timestamp` and the signature are new on each
try. 2xx is success; network errors, timeouts, 408, 429 and 5xx are worth retrying
(honouring Retry-After); any other answer, and a target the SSRF guard refuses, fails at
once.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

import httpx

from monitor.core.http import blocked_reason, http_client, retry_after_seconds
from monitor.core.models import Alert, Subscription
from monitor.core.redact import redact_text
from workers.delivery import formats
from workers.delivery.signing import signed_headers

RETRYABLE_STATUS = {408, 429}
GONE = 410  # the endpoint wants no more deliveries
# A receiver that does not accept a connection within this is down: no need to wait out the
# whole timeout, which is for a receiver that is slow to answer.
CONNECT_TIMEOUT_SECONDS = 3.0


def _since(started: float) -> float:
    """Milliseconds since `started` (a monotonic time), to a tenth."""
    return round((time.monotonic() - started) * 1000, 1)


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # worth sending again
    FAILED = "failed"  # refused for good


@dataclass(frozen=True, slots=True)
class Outcome:
    status: DeliveryStatus
    reason: str = ""
    http_status: int | None = None
    retry_after: float | None = None
    duration_ms: float = 0.0

    @property
    def gone(self) -> bool:
        return self.http_status == GONE


class Deliverer:
    """A pooled HTTP client for webhook endpoints; keeps connections alive between messages."""

    def __init__(self, timeout_seconds: float, max_in_flight: int):
        connect = min(timeout_seconds, CONNECT_TIMEOUT_SECONDS)
        timeout = httpx.Timeout(timeout_seconds, connect=connect)
        self.client = http_client(timeout=timeout, follow_redirects=False)
        self.pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="deliver")

    def send_all(
        self,
        subscription: Subscription,
        alerts: list[Alert],
        max_in_flight: int,
        stop_after_failures: int,
    ) -> list[Outcome | None]:
        """Send with at most `max_in_flight` requests open, and stop early when the endpoint
        is down: after a retryable failure no new request starts until those in flight are
        back; at `stop_after_failures` failures in a row, or at a 410 Gone, none starts again.
        Messages not tried have the outcome None: they wait in the endpoint's schedule
        instead of holding this worker."""
        outcomes: list[Outcome | None] = [None] * len(alerts)
        waiting = iter(enumerate(alerts))
        in_flight: dict[Future[Outcome], int] = {}
        failures_in_a_row = 0
        gone = False
        while True:
            while (
                not gone
                and failures_in_a_row < stop_after_failures
                and len(in_flight) < max_in_flight
                and (failures_in_a_row == 0 or not in_flight)
            ):
                index, alert = next(waiting, (-1, None))
                if alert is None:
                    break
                in_flight[self.pool.submit(self.send, subscription, alert)] = index
            if not in_flight:
                return outcomes
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = outcomes[in_flight.pop(future)] = future.result()
                retryable = outcome.status is DeliveryStatus.RETRY
                failures_in_a_row = failures_in_a_row + 1 if retryable else 0
                gone = gone or outcome.gone

    def send(self, subscription: Subscription, alert: Alert) -> Outcome:
        body = formats.body(alert, subscription.format)
        now = time.time()
        headers = signed_headers(subscription.signing_secrets(now), alert.id, int(now), body)
        started = time.monotonic()
        try:
            response = self.client.post(subscription.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            reason = f"timed out ({type(exc).__name__})"
            return Outcome(DeliveryStatus.RETRY, reason, duration_ms=_since(started))
        except httpx.HTTPError as exc:
            if refused := blocked_reason(exc):
                return Outcome(DeliveryStatus.FAILED, refused, duration_ms=_since(started))
            # Kept in the message log and shown by the API and the board: an error quoting
            # the webhook URL must not show its token.
            reason = redact_text(f"{type(exc).__name__}: {exc}")
            return Outcome(DeliveryStatus.RETRY, reason, duration_ms=_since(started))
        duration_ms = _since(started)
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(DeliveryStatus.DELIVERED, http_status=code, duration_ms=duration_ms)
        reason = f"HTTP {code}"
        if code in RETRYABLE_STATUS or code >= 500:
            return Outcome(
                DeliveryStatus.RETRY,
                reason,
                code,
                retry_after_seconds(response.headers.get("retry-after"), now),
                duration_ms,
            )
        return Outcome(DeliveryStatus.FAILED, reason, code, duration_ms=duration_ms)
