"""Match step: one Alert per subscription that wants the entry, naming the topics it wants.

An entry of its feed's past (Entry.backfilled) goes only to subscriptions that ask for it.
"""

from __future__ import annotations

from datetime import datetime

from monitor.core.models import Alert, Entry, Subscription


def alerts_for(entry: Entry, subscriptions: tuple[Subscription, ...], now: datetime) -> list[Alert]:
    alerts = []
    for subscription in subscriptions:
        if entry.backfilled and not subscription.wants_past(entry, now):
            continue
        topics = subscription.matching_topics(entry.topics)
        if topics is not None:
            alert_id = Alert.make_id(entry.id, subscription.id, entry.revision)
            alerts.append(Alert(alert_id, subscription.id, topics, entry, now))
    return alerts
