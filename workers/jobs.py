"""The RQ jobs: the one place where the worker steps run end to end.

`process_entries` takes the batch of new (and edited) entries from one fetch through
normalise -> dedupe -> classify -> match, and queues the alerts as `deliver_alerts` jobs, one
per subscription (in chunks), so RQ's per-job cost is shared by many entries and deliveries.
Retries are per message: a delivery job re-schedules only its messages that failed, at the
next step of the retry schedule, under the same webhook-id.

Both jobs are safe to run twice (a worker killed mid-job is re-run by RQ): dedupe recognises
an entry that already claimed its keys, and alert ids are derived from entry and subscription.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import redis
import structlog

from monitor.core import counters, keys, queues
from monitor.core.config import Settings
from monitor.core.documents import Document, alert_document, read_alert, read_entry
from monitor.core.models import Alert, Entry, Subscription
from workers import runtime
from workers.pipeline.match import alerts_for
from workers.pipeline.normalise import normalise
from workers.runtime import Runtime

log = structlog.get_logger()

# A fetch's entries are processed in slices, each queueing its alerts when done, so delivery
# starts before the whole batch is through; delivery jobs carry up to a chunk of alerts.
# Both sizes balance latency against RQ's per-job cost (see bench/latency.py, pipeline.py).
SLICE = 50
DELIVERY_CHUNK = 100
# A worker killed mid-send leaves its turn at an endpoint taken until this after the worst
# case of its batch.
TURN_MARGIN_SECONDS = 5


def process_entries(documents: list[Document]) -> dict[str, int]:
    """The new entries of one fetch, a slice at a time: each slice's alerts are queued as soon
    as it is done, so other workers deliver them while this one goes on with the rest."""
    rt = runtime.current()
    entries = [read_entry(document) for document in documents]
    totals: Counter[str] = Counter()
    for start in range(0, len(entries), SLICE):
        totals.update(_process_slice(rt, entries[start : start + SLICE]))
    return dict(totals)


def _process_slice(rt: Runtime, entries: list[Entry]) -> Counter[str]:
    now = datetime.now(UTC)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    counts: Counter[str] = Counter(entries_processed=len(entries))
    for entry, duplicate in rt.deduper.check([normalise(entry) for entry in entries]):
        bound = log.bind(entry_id=entry.id, feed=entry.feed_name, story_id=entry.story_id)
        if entry.revision:
            # An item edited in place updates its story. Only the entry that was alerted for
            # the story (its first) sends the update, so one story still means one thread.
            alerted = duplicate is None and entry.starts_story
            bound.info("story.updated", revision=entry.revision, alerted=alerted, title=entry.title)
            if not alerted:
                continue
        elif duplicate:
            counts["entries_duplicate"] += 1
            bound.info(
                "entry.duplicate",
                duplicate_of=duplicate.of,
                reason=duplicate.reason,
                similarity=round(duplicate.similarity, 3),
                title=entry.title,
            )
            continue
        entry = rt.classifier.classify(entry)
        bound.info("entry.classified", topics=list(entry.topics), title=entry.title)
        for alert in alerts_for(entry, rt.config.subscriptions, now):
            alerts[alert.subscription_id].append(alert)
    counts["alerts_enqueued"] = schedule_deliveries(
        rt.connection, rt.config.settings, alerts, attempt=1, delay_seconds=0
    )
    counters.record(rt.connection, counts)
    for subscription_alerts in alerts.values():
        for alert in subscription_alerts:
            log.info(
                "alert.enqueued",
                alert_id=alert.id,
                subscription=alert.subscription_id,
                entry_id=alert.entry.id,
                story_id=alert.entry.story_id,
                topics=list(alert.topics),
            )
    return counts


def schedule_deliveries(
    connection: redis.Redis,
    settings: Settings,
    alerts: dict[str, list[Alert]],
    attempt: int,
    delay_seconds: float,
) -> int:
    """Queue delivery jobs, per subscription and in chunks, now or after `delay_seconds`."""
    queue = queues.queue(keys.DELIVERIES_QUEUE, connection)
    per_message_seconds = settings.delivery_timeout_seconds + 1
    when = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    count = 0
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        for subscription_id, subscription_alerts in alerts.items():
            for start in range(0, len(subscription_alerts), DELIVERY_CHUNK):
                chunk = subscription_alerts[start : start + DELIVERY_CHUNK]
                job = queue.create_job(
                    queues.DELIVER_JOB,
                    args=(subscription_id, [alert_document(a) for a in chunk], attempt),
                    # Longer than the worst case, so RQ never runs one delivery twice at once.
                    timeout=int(len(chunk) * per_message_seconds) + 60,
                    retry=queues.JOB_RETRY,
                    result_ttl=0,
                    description=f"deliver {len(chunk)} to {subscription_id}, attempt {attempt}",
                )
                if delay_seconds > 0:
                    queue.schedule_job(job, when, pipeline=pipe)
                else:
                    queue.enqueue_job(job, pipeline=pipe)
                count += len(chunk)
        pipe.execute()
    return count


def deliver_alerts(subscription_id: str, documents: list[Document], attempt: int) -> dict[str, int]:
    """Send one subscription's alerts; each message is retried, deferred or dead-lettered alone."""
    rt = runtime.current()
    alerts = [read_alert(document) for document in documents]
    settings = rt.config.settings
    subscription = rt.subscription(subscription_id)
    if subscription is None:
        return _dead_letter(rt, alerts, attempt - 1, "subscription no longer in subscriptions.toml")
    health = rt.endpoints.health(subscription)
    if health.disabled_reason:
        return _dead_letter(
            rt, alerts, attempt - 1, f"subscription disabled: {health.disabled_reason}"
        )
    if (wait := health.blocked_for()) > 0:
        return _defer(rt, subscription_id, alerts, attempt, wait, "endpoint failing")
    # A failing endpoint is probed one message at a time; a healthy one gets max_in_flight.
    limit = 1 if health.failing_since is not None else settings.max_in_flight_per_endpoint
    longest = math.ceil(len(alerts) / limit) * (settings.delivery_timeout_seconds + 1)
    token, wait = rt.endpoints.take_turn(subscription_id, longest + TURN_MARGIN_SECONDS)
    if token is None:
        return _defer(rt, subscription_id, alerts, attempt, wait, "endpoint busy")
    try:
        return _send(rt, subscription, alerts, attempt, limit)
    finally:
        # Held until the endpoint's state is written, so the next turn sees a failure.
        rt.endpoints.end_turn(subscription_id, token)


def _defer(
    rt: Runtime, subscription_id: str, alerts: list[Alert], attempt: int, wait: float, why: str
) -> dict[str, int]:
    """This batch waits `wait` seconds in the schedule, and spends no attempt doing so."""
    schedule_deliveries(rt.connection, rt.config.settings, {subscription_id: alerts}, attempt, wait)
    log.info(
        "delivery.deferred",
        subscription=subscription_id,
        alerts=len(alerts),
        seconds=round(wait, 1),
        reason=why,
    )
    return {"deferred": len(alerts)}


def _send(
    rt: Runtime, subscription: Subscription, alerts: list[Alert], attempt: int, limit: int
) -> dict[str, int]:
    subscription_id = subscription.id
    settings = rt.config.settings
    schedule = settings.retry_schedule_seconds
    outcomes = rt.deliverer.send_all(subscription, alerts, limit, stop_after_failures=limit)
    retry: list[Alert] = []
    untried: list[Alert] = []
    retry_after = 0.0
    gone = False
    counts: Counter[str] = Counter()
    for alert, outcome in zip(alerts, outcomes, strict=True):
        bound = log.bind(
            alert_id=alert.id,
            subscription=subscription_id,
            entry_id=alert.entry.id,
            attempt=attempt,
        )
        if outcome is None:
            untried.append(alert)
        elif outcome.status == "delivered":
            counts["alerts_delivered"] += 1
            bound.info(
                "alert.delivered", http_status=outcome.http_status, duration_ms=outcome.duration_ms
            )
        elif outcome.status == "retry" and attempt < len(schedule):
            retry.append(alert)
            counts["alerts_retried"] += 1
            retry_after = max(retry_after, outcome.retry_after or 0.0)
            bound.warning(
                "alert.retry",
                reason=outcome.reason,
                http_status=outcome.http_status,
                next_attempt=attempt + 1,
            )
        else:
            out_of_attempts = outcome.status == "retry"
            event = "alert.dead" if out_of_attempts else "alert.failed"
            counts["alerts_dead" if out_of_attempts else "alerts_failed"] += 1
            bound.error(event, reason=outcome.reason, http_status=outcome.http_status)
            rt.dead_letters.add(alert, attempt, outcome.reason)
            gone = gone or outcome.http_status == 410
    counters.record(rt.connection, counts, subscription_id)
    if counts["alerts_delivered"]:
        rt.endpoints.succeeded(subscription_id)
    if gone:
        return _disable(
            rt, subscription, "the endpoint answered 410 Gone", retry + untried, attempt
        )
    if retry or untried:
        failed_rounds, failing_for = rt.endpoints.failed(subscription_id)
        if failing_for > settings.disable_after_hours * 3600:
            reason = f"failing for {failing_for / 3600:.1f} hours"
            return _disable(rt, subscription, reason, retry + untried, attempt)
        # The endpoint backs off along the schedule by its own failed rounds too, so a dead
        # endpoint is probed ever more rarely. Full jitter: a random wait up to the step,
        # unless Retry-After asks for more.
        step = schedule[min(max(attempt, failed_rounds), len(schedule) - 1)]
        delay = max(random.uniform(0, step), retry_after)
        rt.endpoints.block(subscription_id, delay)
        if retry:
            schedule_deliveries(
                rt.connection, rt.config.settings, {subscription_id: retry}, attempt + 1, delay
            )
        if untried:
            schedule_deliveries(
                rt.connection, rt.config.settings, {subscription_id: untried}, attempt, delay
            )
    return {
        "delivered": counts["alerts_delivered"],
        "retrying": len(retry),
        "untried": len(untried),
    }


def _disable(
    rt: Runtime, subscription: Subscription, reason: str, pending: list[Alert], attempt: int
) -> dict[str, int]:
    rt.endpoints.disable(subscription, reason)
    log.error(
        "subscription.disabled",
        subscription=subscription.id,
        url=subscription.url,
        reason=reason,
        dead_lettered=len(pending),
    )
    return _dead_letter(rt, pending, attempt, f"subscription disabled: {reason}")


def _dead_letter(rt: Runtime, alerts: list[Alert], attempts: int, reason: str) -> dict[str, int]:
    """Keep undeliverable alerts for `newsmon deliveries replay`."""
    counters.record(
        rt.connection, {"alerts_dead": len(alerts)}, alerts[0].subscription_id if alerts else ""
    )
    dead_letters = rt.dead_letters
    for alert in alerts:
        log.error(
            "alert.dead",
            alert_id=alert.id,
            subscription=alert.subscription_id,
            entry_id=alert.entry.id,
            attempt=attempts,
            reason=reason,
        )
        dead_letters.add(alert, attempts, reason)
    return {"dead": len(alerts)}
