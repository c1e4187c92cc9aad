"""The RQ jobs: the one place where the worker steps run end to end.

`process_entries` takes the batch of new (and edited) entries from one fetch through
normalise -> dedupe -> classify -> match, and queues the alerts as `deliver_alerts` jobs, one
per subscription (in chunks), so RQ's per-job cost is shared by many entries and deliveries.
Retries are per message: a delivery job re-schedules only its messages that failed, at the
next step of the retry schedule, under the same webhook-id.

Both jobs are safe to run twice (a worker killed mid-job is re-run by RQ): dedupe recognises
an entry that already claimed its keys, and alert ids are derived from entry and subscription.

Each job binds its ids (and each entry's, as the loop reaches it) to structlog's context, so
every log line of the job carries them; they are unbound when it ends, as RQ runs many jobs
one after another in a process.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import redis
import structlog
from rq import get_current_job
from structlog.contextvars import bound_contextvars

from monitor.core import counters, keys, queues
from monitor.core.config import Settings
from monitor.core.documents import Document, alert_document, read_alert, read_entry
from monitor.core.histograms import ENTRY_PROCESSING
from monitor.core.models import Alert, Entry, Subscription
from workers import runtime
from workers.delivery.endpoints import EndpointStatus
from workers.delivery.rounds import Round, sort_round
from workers.pipeline.dedupe import Duplicate
from workers.pipeline.match import alerts_for
from workers.pipeline.normalise import normalise
from workers.runtime import Runtime

log = structlog.get_logger()

# A fetch's entries are processed in slices, each queueing its alerts when done, so delivery
# starts before the whole batch is through; delivery jobs carry up to a chunk of alerts.
# Both sizes balance latency against RQ's per-job cost (see bench/latency.py, pipeline.py).
SLICE = 50
DELIVERY_CHUNK = 100


@contextmanager
def _job_context(**ids: object) -> Iterator[None]:
    """The RQ job's id and `ids` on every log line inside, and on none after."""
    job = get_current_job()
    with bound_contextvars(job_id=job.id if job else None, **ids):
        yield


def process_entries(documents: list[Document]) -> dict[str, int]:
    """The new entries of one fetch, a slice at a time: each slice's alerts are queued as soon
    as it is done, so other workers deliver them while this one goes on with the rest."""
    rt = runtime.current()
    with _job_context():
        entries = [read_entry(document) for document in documents]
        totals: Counter[str] = Counter()
        for start in range(0, len(entries), SLICE):
            totals.update(_process_slice(rt, entries[start : start + SLICE]))
        return dict(totals)


def _process_slice(rt: Runtime, entries: list[Entry]) -> Counter[str]:
    now = datetime.now(UTC)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    counts: Counter[str] = Counter(entries_processed=len(entries))
    normalised = [normalise(entry) for entry in entries]
    # The feed's past is recorded for dedupe only, unless a subscription asks for it: no
    # sentence vector, no topics, no alert. A cold start of many feeds is mostly past.
    subscriptions = rt.subscriptions.all()  # the file's and the API's
    unasked_past = [
        e.backfilled and not any(s.wants_past(e, now) for s in subscriptions) for e in normalised
    ]
    vectors = None
    if rt.encoder:  # the encoder is the costly step: not for an exact repeat, which never alerts
        repeats = rt.deduper.repeats(normalised)
        vectors = [
            None if repeat or past else rt.encoder.vector(e.text)
            for e, repeat, past in zip(normalised, repeats, unasked_past, strict=True)
        ]
    checked = rt.deduper.check(normalised, vectors)
    reports: list[Entry] = []
    joined: dict[str, Duplicate] = {}  # entry id -> the report it joined, and why
    rows = zip(checked, vectors or [None] * len(checked), unasked_past, strict=True)
    for (entry, duplicate), vector, past in rows:
        if past:  # not a story of now either: a later report of it starts the record
            continue
        with bound_contextvars(entry_id=entry.id, feed=entry.feed_name, story_id=entry.story_id):
            if entry.revision:
                # An item edited in place updates its story. Only the entry that was alerted
                # for the story (its first) sends the update, so one story is one thread.
                alerted = duplicate is None and entry.starts_story
                log.info(
                    "story.updated", revision=entry.revision, alerted=alerted, title=entry.title
                )
                if not alerted:
                    reports.append(entry)
                    continue
            elif duplicate:
                counts["entries_duplicate"] += 1
                log.info(
                    "entry.duplicate",
                    duplicate_of=duplicate.of,
                    reason=duplicate.reason,
                    similarity=round(duplicate.similarity, 3),
                    title=entry.title,
                    **({"why": duplicate.why} if duplicate.why else {}),
                )
                reports.append(entry)
                joined[entry.id] = duplicate
                continue
            entry = rt.classifier.classify(entry, vector)
            log.info("entry.classified", topics=list(entry.topics), title=entry.title)
            reports.append(entry)
        for alert in alerts_for(entry, subscriptions, now):
            alerts[alert.subscription_id].append(alert)
    with rt.connection.pipeline(transaction=False) as pipe:
        for entry in reports:
            duplicate = joined.get(entry.id)
            why = duplicate and {
                "reason": str(duplicate.reason),
                "of": duplicate.of,
                "similarity": round(duplicate.similarity, 3),
                **duplicate.why,
            }
            rt.stories.add(pipe, entry, why)
        pipe.execute()
    # A digest subscription's alerts wait for its digest; the others are sent now.
    held = {s.id: s for s in subscriptions if s.digest_minutes and s.id in alerts}
    if held:
        with rt.connection.pipeline(transaction=True) as pipe:
            for subscription in held.values():
                rt.digests.hold(pipe, subscription, alerts[subscription.id])
            pipe.execute()
    counts["alerts_enqueued"] = schedule_deliveries(
        rt.connection,
        rt.config.settings,
        {sid: a for sid, a in alerts.items() if sid not in held},
        attempt=1,
        delay_seconds=0,
    )
    share = (datetime.now(UTC) - now).total_seconds() / len(entries)
    counters.record(rt.connection, counts, observations={ENTRY_PROCESSING: [share] * len(entries)})
    for subscription_id, subscription_alerts in alerts.items():
        for alert in subscription_alerts:
            log.info(
                "alert.enqueued",
                alert_id=alert.id,
                subscription=subscription_id,
                entry_id=alert.entry.id,
                story_id=alert.entry.story_id,
                topics=list(alert.topics),
                digest=subscription_id in held,
            )
    return counts


def schedule_deliveries(
    connection: redis.Redis,
    settings: Settings,
    alerts: dict[str, list[Alert]],
    *,
    attempt: int,
    delay_seconds: float,
) -> int:
    """Queue delivery jobs, per subscription and in chunks, now or after `delay_seconds`."""
    queue = queues.queue(keys.DELIVERIES_QUEUE, connection)
    when = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    count = 0
    with connection.pipeline(transaction=True) as pipe:
        pipe.multi()
        for subscription_id, subscription_alerts in alerts.items():
            for start in range(0, len(subscription_alerts), DELIVERY_CHUNK):
                chunk = subscription_alerts[start : start + DELIVERY_CHUNK]
                documents = [alert_document(a) for a in chunk]
                job = queues.delivery_job(
                    queue,
                    subscription_id,
                    documents,
                    attempt=attempt,
                    delivery_timeout_seconds=settings.delivery_timeout_seconds,
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
    with _job_context(subscription=subscription_id, attempt=attempt):
        return _deliver(rt, subscription_id, [read_alert(d) for d in documents], attempt)


def _deliver(
    rt: Runtime, subscription_id: str, alerts: list[Alert], attempt: int
) -> dict[str, int]:
    subscription = rt.subscription(subscription_id)
    if subscription is None:
        reason = "subscription deleted (from subscriptions.toml or the API)"
        return _dead_letter(rt, subscription_id, alerts, attempt - 1, reason)
    health = rt.endpoints.health(subscription)
    if health.status is EndpointStatus.DISABLED:
        reason = f"subscription disabled: {health.disabled_reason}"
        return _dead_letter(rt, subscription_id, alerts, attempt - 1, reason)
    if (wait := health.blocked_for()) > 0:
        return _defer(rt, subscription_id, alerts, attempt, wait, "endpoint failing")
    in_flight = rt.policy.in_flight(health)
    turn_seconds = rt.policy.turn_seconds(len(alerts), in_flight)
    token, wait = rt.endpoints.take_turn(subscription_id, turn_seconds)
    if token is None:
        return _defer(rt, subscription_id, alerts, attempt, wait, "endpoint busy")
    try:
        return _send_round(rt, subscription, alerts, attempt, in_flight)
    finally:
        # Held until the endpoint's state is written, so the next turn sees a failure.
        rt.endpoints.end_turn(subscription_id, token)


def _defer(
    rt: Runtime, subscription_id: str, alerts: list[Alert], attempt: int, wait: float, why: str
) -> dict[str, int]:
    """This batch waits `wait` seconds in the schedule, and spends no attempt doing so."""
    schedule_deliveries(
        rt.connection,
        rt.config.settings,
        {subscription_id: alerts},
        attempt=attempt,
        delay_seconds=wait,
    )
    log.info("delivery.deferred", alerts=len(alerts), seconds=round(wait, 1), reason=why)
    return {"deferred": len(alerts)}


def _send_round(
    rt: Runtime, subscription: Subscription, alerts: list[Alert], attempt: int, in_flight: int
) -> dict[str, int]:
    outcomes = rt.deliverer.send_all(subscription, alerts, in_flight, stop_after_failures=in_flight)
    round_ = sort_round(alerts, outcomes, attempt, len(rt.config.settings.retry_schedule_seconds))
    _log_round(round_, attempt)
    rt.messages.record(round_, attempt)
    observed = round_.observations(datetime.now(UTC))
    counters.record(rt.connection, round_.counts(), subscription.id, observations=observed)
    for alert, outcome in round_.failed + round_.dead:
        rt.dead_letters.add(alert, attempt, outcome.reason)
    verdict = rt.policy.after_round(subscription, round_, attempt)
    if verdict.disabled_reason:
        return _disabled(rt, subscription, verdict.disabled_reason, round_.pending, attempt)
    _reschedule(rt, subscription.id, round_, attempt, verdict.delay)
    return {
        "delivered": len(round_.delivered),
        "retrying": len(round_.retry),
        "untried": len(round_.untried),
    }


def _log_round(round_: Round, attempt: int) -> None:
    for alert, outcome in round_.delivered:
        _alert_log(alert).info(
            "alert.delivered", http_status=outcome.http_status, duration_ms=outcome.duration_ms
        )
    for alert, outcome in round_.retry:
        _alert_log(alert).warning(
            "alert.retry",
            reason=outcome.reason,
            http_status=outcome.http_status,
            next_attempt=attempt + 1,
        )
    for event, sent in (("alert.failed", round_.failed), ("alert.dead", round_.dead)):
        for alert, outcome in sent:
            _alert_log(alert).error(event, reason=outcome.reason, http_status=outcome.http_status)


def _alert_log(alert: Alert) -> structlog.typing.FilteringBoundLogger:
    return log.bind(alert_id=alert.id, entry_id=alert.entry.id)


def _reschedule(
    rt: Runtime, subscription_id: str, round_: Round, attempt: int, delay: float
) -> None:
    """Retries at the next attempt, untried alerts at this one again, both after `delay`."""
    settings = rt.config.settings
    if retry := [alert for alert, _ in round_.retry]:
        schedule_deliveries(
            rt.connection,
            settings,
            {subscription_id: retry},
            attempt=attempt + 1,
            delay_seconds=delay,
        )
    if round_.untried:
        schedule_deliveries(
            rt.connection,
            settings,
            {subscription_id: round_.untried},
            attempt=attempt,
            delay_seconds=delay,
        )


def _disabled(
    rt: Runtime, subscription: Subscription, reason: str, pending: list[Alert], attempt: int
) -> dict[str, int]:
    log.error(
        "subscription.disabled", url=subscription.url, reason=reason, dead_lettered=len(pending)
    )
    return _dead_letter(rt, subscription.id, pending, attempt, f"subscription disabled: {reason}")


def _dead_letter(
    rt: Runtime, subscription_id: str, alerts: list[Alert], attempts: int, reason: str
) -> dict[str, int]:
    """Keep undeliverable alerts for `newsmon deliveries replay`."""
    counters.record(rt.connection, {"alerts_dead": len(alerts)}, subscription_id)
    for alert in alerts:
        _alert_log(alert).error("alert.dead", attempt=attempts, reason=reason)
        rt.dead_letters.add(alert, attempts, reason)
    return {"dead": len(alerts)}
