"""Times as the operator writes them (`--since 2h`, `"since": "2025-01-28T10:00Z"`) and as
the CLI and the API show them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from monitor.ops.errors import UnreadableTime

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str) -> float:
    """'30m', '2h', '7d' ago, or an ISO 8601 time (UTC unless it says otherwise) -> unix time."""
    if match := DURATION.match(value.strip()):
        return time.time() - float(match[1]) * UNIT_SECONDS[match[2]]
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UnreadableTime(
            f"{value!r}: use an ISO time (2025-01-28T10:00Z) or a duration (30m, 2h, 7d)"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso_time(unix_time: float) -> str:
    """A unix time as the CLI and the API show it: UTC, to the second."""
    return datetime.fromtimestamp(unix_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
