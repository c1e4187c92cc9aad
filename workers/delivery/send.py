"""Deliver step: build, sign and POST one webhook message (or send it by Telegram's Bot API,
telegram.py, or by email, mail.py), and say what happened.

The body is built from the Alert alone, in the subscription's format (formats.py; the
Standard Webhooks headers go with every webhook format), so every attempt sends the same bytes
under the same `webhook-id`; only `webhook-timestamp` and the signature are new on each
try. 2xx is success; network errors, timeouts, 408, 429 and 5xx are worth retrying
(honouring Retry-After); any other answer, and a target the SSRF guard refuses, fails at
once.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx

from monitor.core.config import Settings
from monitor.core.http import blocked_reason, http_client, retry_after_seconds
from monitor.core.models import Alert, Format, Subscription
from monitor.core.redact import redact_text
from workers.delivery import formats, telegram
from workers.delivery.mail import Mailer
from workers.delivery.outcome import DeliveryStatus, Outcome, since
from workers.delivery.signing import signed_headers

RETRYABLE_STATUS = {408, 429}
DEFAULTS = Settings()
# A receiver that does not accept a connection within this is down: no need to wait out the
# whole timeout, which is for a receiver that is slow to answer.
CONNECT_TIMEOUT_SECONDS = 3.0


class Deliverer:
    """A pooled HTTP client for webhook endpoints and Telegram, which keeps connections alive
    between messages, and the mail server's sender."""

    def __init__(self, timeout_seconds: float, max_in_flight: int, settings: Settings = DEFAULTS):
        connect = min(timeout_seconds, CONNECT_TIMEOUT_SECONDS)
        timeout = httpx.Timeout(timeout_seconds, connect=connect)
        self.client = http_client(timeout=timeout, follow_redirects=False)
        self.telegram_api_url = settings.telegram_api_url
        self.mailer = Mailer(settings, timeout_seconds)
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
        if subscription.format is Format.EMAIL:
            return self.mailer.send(subscription, alert)
        now = time.time()
        if subscription.format is Format.TELEGRAM:
            url, body = telegram.request(self.telegram_api_url, subscription, alert)
            headers = {"content-type": "application/json"}
        else:
            url, body = subscription.url, formats.body(alert, subscription.format)
            headers = signed_headers(subscription.signing_secrets(now), alert.id, int(now), body)
        started = time.monotonic()
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            reason = f"timed out ({type(exc).__name__})"
            return Outcome(DeliveryStatus.RETRY, reason, duration_ms=since(started))
        except httpx.HTTPError as exc:
            if refused := blocked_reason(exc):
                return Outcome(DeliveryStatus.FAILED, refused, duration_ms=since(started))
            # Kept in the message log and shown by the API and the board: an error quoting
            # the webhook URL (or Telegram's, with the bot's) must not show its token.
            reason = redact_text(f"{type(exc).__name__}: {exc}")
            return Outcome(DeliveryStatus.RETRY, reason, duration_ms=since(started))
        if subscription.format is Format.TELEGRAM:
            return telegram.outcome(response, since(started))
        return _webhook_outcome(response, since(started), now)


def _webhook_outcome(response: httpx.Response, duration_ms: float, now: float) -> Outcome:
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
