"""What one poll of a feed came to: the poller's answer to whoever asked it to poll."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PollStatus(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    THROTTLED = "throttled"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: str
    status: PollStatus
    new_entries: int = 0
    edited_entries: int = 0
    reason: str = ""
    next_poll_in: float = 0.0  # seconds
