"""One round of sends to an endpoint, each alert sorted by what becomes of it next.

Pure: the job logs, counts, dead-letters and reschedules from the sorted round, and the
endpoint policy (endpoints.py) reads it to decide what becomes of the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.core.histograms import DELIVERY, FETCH_TO_DELIVERY, Observations
from monitor.core.models import Alert
from workers.delivery.outcome import DeliveryStatus, Outcome

Sent = tuple[Alert, Outcome]


@dataclass(frozen=True, slots=True)
class Round:
    delivered: list[Sent] = field(default_factory=list)
    retry: list[Sent] = field(default_factory=list)  # sent again at the next attempt
    failed: list[Sent] = field(default_factory=list)  # refused for good: dead-lettered
    dead: list[Sent] = field(default_factory=list)  # worth retrying, out of attempts: dead-lettered
    untried: list[Alert] = field(default_factory=list)  # not sent: this attempt again, later

    @property
    def pending(self) -> list[Alert]:
        """The alerts still to be sent: retries and untried."""
        return [alert for alert, _ in self.retry] + self.untried

    @property
    def gone(self) -> bool:
        """The endpoint answered 410 Gone to one of them."""
        return any(outcome.gone for _, outcome in self.failed)

    @property
    def failure(self) -> str:
        """Why the round failed, as its last retried send says (a connection refused, an HTTP
        status, a timeout); "not tried" when none was sent."""
        return next((o.reason for _, o in reversed(self.retry) if o.reason), "not tried")

    @property
    def retry_after(self) -> float:
        """The longest wait a receiver asked for in a Retry-After (0 when none did)."""
        return max((outcome.retry_after or 0.0 for _, outcome in self.retry), default=0.0)

    def observations(self, now: datetime) -> Observations:
        """The round's histograms: how long each answered attempt took, and how long each
        delivered alert took since the fetch that brought its entry."""
        sent = [outcome for _, outcome in self.delivered + self.retry + self.failed + self.dead]
        return {
            DELIVERY: [o.duration_ms / 1000 for o in sent if o.http_status is not None],
            FETCH_TO_DELIVERY: [
                (now - alert.entry.fetched).total_seconds()
                for alert, _ in self.delivered
                if alert.entry.fetched
            ],
        }

    def counts(self) -> dict[str, int]:
        """The round's counters (see monitor.core.counters)."""
        return {
            "alerts_delivered": len(self.delivered),
            "alerts_retried": len(self.retry),
            "alerts_failed": len(self.failed),
            "alerts_dead": len(self.dead),
        }


def sort_round(
    alerts: list[Alert], outcomes: list[Outcome | None], attempt: int, attempts: int
) -> Round:
    """Sort the outcomes (None: not tried) of sending `alerts` at `attempt` of `attempts`."""
    round_ = Round()
    for alert, outcome in zip(alerts, outcomes, strict=True):
        if outcome is None:
            round_.untried.append(alert)
        elif outcome.status is DeliveryStatus.DELIVERED:
            round_.delivered.append((alert, outcome))
        elif outcome.status is DeliveryStatus.FAILED:
            round_.failed.append((alert, outcome))
        elif attempt < attempts:
            round_.retry.append((alert, outcome))
        else:
            round_.dead.append((alert, outcome))
    return round_
