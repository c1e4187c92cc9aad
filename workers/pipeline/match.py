"""Match step: one Alert per subscription that wants the entry, naming the topics it wants."""

from __future__ import annotations

from datetime import datetime

from monitor.core.models import Alert, Entry, Subscription


def alerts_for(entry: Entry, subscriptions: tuple[Subscription, ...], now: datetime) -> list[Alert]:
    alerts = []
    for subscription in subscriptions:
        topics = subscription.matching_topics(entry.topics)
        if topics is not None:
            alert_id = Alert.make_id(entry.id, subscription.id, entry.revision)
            alerts.append(Alert(alert_id, subscription.id, topics, entry, now))
    return alerts
