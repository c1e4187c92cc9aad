"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.documents import alert_document
from monitor.models import Alert, Entry


def documents(alerts: list[Alert]) -> list[dict]:
    """Alerts as a delivery job carries them."""
    return [alert_document(alert) for alert in alerts]


def make_alerts(count: int, subscription_id: str = "hook", offset: int = 0) -> list[Alert]:
    """`count` alerts for one subscription, each about an entry of its own."""
    now = datetime.now(UTC)
    return [
        Alert(
            Alert.make_id(f"e{i}", subscription_id),
            subscription_id,
            ("frontline",),
            Entry(
                f"e{i}",
                "blog",
                "https://e.org/f",
                f"k{i}",
                f"Title {i}",
                f"https://e.org/{i}",
                "Summary",
                story_id=f"st_e{i}",
            ),
            now,
        )
        for i in range(offset, offset + count)
    ]
