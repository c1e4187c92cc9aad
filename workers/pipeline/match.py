"""Match step: one Alert per subscription that wants the entry, naming the topics it wants.

Beyond topics, a subscription may narrow what it gets to some feeds and to entries that
mention any of its keywords and none of its excluded ones. Keywords are matched as topic
terms are (classify.py: whole words, inflections, phrases, hyphenation), by the classifier
itself. An entry of its feed's past (Entry.backfilled) goes only to subscriptions that ask
for it.
"""

from __future__ import annotations

import functools
from datetime import datetime

from monitor.core.models import Alert, Entry, Subscription, Topic
from workers.pipeline.classify import Classifier


def alerts_for(entry: Entry, subscriptions: tuple[Subscription, ...], now: datetime) -> list[Alert]:
    alerts = []
    for subscription in subscriptions:
        if entry.backfilled and not subscription.wants_past(entry, now):
            continue
        topics = subscription.matching_topics(entry.topics)
        if topics is not None and passes_filters(entry, subscription):
            alert_id = Alert.make_id(entry.id, subscription.id, entry.revision)
            alerts.append(
                Alert(
                    id=alert_id,
                    subscription_id=subscription.id,
                    topics=topics,
                    entry=entry,
                    created=now,
                )
            )
    return alerts


def passes_filters(entry: Entry, subscription: Subscription) -> bool:
    """Whether the entry is of the subscription's feeds and mentions what it asks for."""
    if subscription.feeds and entry.feed_name not in subscription.feeds:
        return False
    text = entry.text or f"{entry.title}\n{entry.summary}"
    if subscription.keywords and not mentions(text, subscription.keywords):
        return False
    return not (subscription.exclude_keywords and mentions(text, subscription.exclude_keywords))


def mentions(text: str, keywords: tuple[str, ...]) -> bool:
    """Whether `text` holds any of `keywords`, matched as a topic's terms are."""
    return bool(_keyword_rules(keywords).explain(text)[0].matched)


@functools.lru_cache(maxsize=1024)
def _keyword_rules(keywords: tuple[str, ...]) -> Classifier:
    """The keywords as the terms of one topic, in a classifier of their own (built once)."""
    return Classifier((Topic("keywords", 1.0, dict.fromkeys(keywords, 1.0)),))
