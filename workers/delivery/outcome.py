"""What became of one send, whatever carried it (an HTTP POST, Telegram's Bot API, SMTP):
delivered, worth retrying (after at least `retry_after` seconds, when the receiver asked),
or refused for good."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

GONE = 410  # the endpoint wants no more deliveries


def since(started: float) -> float:
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
