"""Deliver step: build, sign and POST one webhook message, and say what happened.

The body is built from the Alert alone, so every attempt sends the same bytes under the same
`webhook-id`; only `webhook-timestamp` and the signature are new on each try. 2xx is
success; network errors, timeouts, 408, 429 and 5xx are worth retrying (honouring
Retry-After); any other answer fails at once.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from monitor.models import Alert, Subscription
from workers.signing import signed_headers

RETRYABLE_STATUS = {408, 429}
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def alert_body(alert: Alert) -> bytes:
    entry = alert.entry
    body = {
        "type": "alert.created",
        "timestamp": _iso(alert.created),
        "data": {
            "alert_id": alert.id,
            "subscription_id": alert.subscription_id,
            "topics": list(alert.topics),
            "story_id": entry.story_id,
            "entry": {
                "id": entry.id,
                "title": entry.title,
                "link": entry.link,
                "summary": entry.summary,
                "published": _iso(entry.published),
                "feed": {"name": entry.feed_name, "url": entry.feed_url},
            },
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # "delivered", "retry" or "failed"
    reason: str = ""
    http_status: int | None = None
    retry_after: float | None = None
    duration_ms: float = 0.0


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


class Deliverer:
    """A pooled HTTP client for webhook endpoints; keeps connections alive between messages."""

    def __init__(self, timeout_seconds: float):
        self.client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def send(self, subscription: Subscription, alert: Alert) -> Outcome:
        body = alert_body(alert)
        now = time.time()
        headers = signed_headers(subscription.secrets, alert.id, int(now), body)
        started = time.monotonic()
        try:
            response = self.client.post(subscription.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return Outcome("retry", f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        code = response.status_code
        if 200 <= code < 300:
            return Outcome("delivered", http_status=code, duration_ms=duration_ms)
        reason = f"HTTP {code}"
        if code in RETRYABLE_STATUS or code >= 500:
            return Outcome(
                "retry",
                reason,
                code,
                retry_after_seconds(response.headers.get("retry-after"), now),
                duration_ms,
            )
        return Outcome("failed", reason, code, duration_ms=duration_ms)
