"""The RQ jobs: the one place where the worker steps run end to end (queued by these dotted
names, monitor/core/queues.py, so they stay here).

`process_entries` takes the batch of new (and edited) entries from one fetch through
normalise -> dedupe -> classify -> match, and queues the alerts as `deliver_alerts` jobs, one
per subscription (in chunks), so RQ's per-job cost is shared by many entries and deliveries.
`deliver_alerts` hands its alerts to workers/delivery/dispatch.py, which retries message by
message.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import structlog
from rq import get_current_job
from structlog.contextvars import bound_contextvars

from monitor.core import counters
from monitor.core.documents import Document, read_alert, read_entry
from monitor.core.histograms import ENTRY_PROCESSING
from monitor.core.models import Alert, Entry, Subscription
from workers import runtime
from workers.delivery.schedule import schedule_deliveries
from workers.pipeline.dedupe import Duplicate
from workers.pipeline.fingerprint import Fingerprint, fingerprint
from workers.pipeline.match import alerts_for
from workers.pipeline.normalise import normalise
from workers.runtime import Runtime

log = structlog.get_logger()

# A fetch's entries are processed in slices, each queueing its alerts when done, so delivery
# starts before the whole batch is through. The size balances latency against RQ's per-job
# cost (see bench/latency.py, pipeline.py).
SLICE = 50


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


def deliver_alerts(subscription_id: str, documents: list[Document], attempt: int) -> dict[str, int]:
    """Send one subscription's alerts; each message is retried, deferred or dead-lettered alone."""
    rt = runtime.current()
    with _job_context(subscription=subscription_id, attempt=attempt):
        alerts = [read_alert(d) for d in documents]
        return rt.dispatcher.deliver(subscription_id, alerts, attempt)


@dataclass
class _Sorted:
    """What a slice's entries came to: the reports its stories record (with the report each
    duplicate joined, and why), the alerts per subscription, and the counts."""

    counts: Counter[str]
    reports: list[Entry] = field(default_factory=list)
    joined: dict[str, Duplicate] = field(default_factory=dict)
    alerts: dict[str, list[Alert]] = field(default_factory=lambda: defaultdict(list))


def _process_slice(rt: Runtime, entries: list[Entry]) -> Counter[str]:
    now = datetime.now(UTC)
    subscriptions = rt.subscriptions.all()  # the file's and the API's
    normalised = [normalise(entry) for entry in entries]
    prints = [fingerprint(entry) for entry in normalised]
    past = _unasked_past(normalised, subscriptions, now)
    vectors = _vectors(rt, normalised, prints, past)
    checked = rt.deduper.check(normalised, vectors, prints)
    sorted_ = _Sorted(Counter(entries_processed=len(entries)))
    rows = zip(checked, vectors or [None] * len(checked), past, strict=True)
    for (entry, duplicate), vector, unasked in rows:
        if unasked:  # not a story of now either: a later report of it starts the record
            continue
        with bound_contextvars(entry_id=entry.id, feed=entry.feed_name, story_id=entry.story_id):
            alerted = _judge(rt, entry, duplicate, vector, sorted_)
        if alerted:
            for alert in alerts_for(alerted, subscriptions, now):
                sorted_.alerts[alert.subscription_id].append(alert)
    _record_stories(rt, sorted_)
    held = _hold_for_digests(rt, subscriptions, sorted_.alerts)
    sorted_.counts["alerts_enqueued"] = schedule_deliveries(
        rt.connection,
        rt.config.settings,
        {sid: a for sid, a in sorted_.alerts.items() if sid not in held},
        attempt=1,
        delay_seconds=0,
    )
    share = (datetime.now(UTC) - now).total_seconds() / len(entries)
    observations = {ENTRY_PROCESSING: [share] * len(entries)}
    counters.record(rt.connection, sorted_.counts, observations=observations)
    _log_alerts(sorted_.alerts, held)
    return sorted_.counts


def _unasked_past(
    entries: list[Entry], subscriptions: tuple[Subscription, ...], now: datetime
) -> list[bool]:
    """Which entries are the feed's past that no subscription asks for: recorded for dedupe
    only, with no sentence vector, no topics, no alert. A cold start of many feeds is mostly
    past."""
    return [e.backfilled and not any(s.wants_past(e, now) for s in subscriptions) for e in entries]


def _vectors(
    rt: Runtime, entries: list[Entry], prints: list[Fingerprint], past: list[bool]
) -> list[np.ndarray | None] | None:
    """Each entry's sentence vector, None for an exact repeat (which never alerts) and for
    the unasked past: the encoder is the costly step. None when there is no encoder."""
    if not rt.encoder:
        return None
    repeats = rt.deduper.repeats(entries, prints)
    wanted = [
        i for i, (repeat, unasked) in enumerate(zip(repeats, past, strict=True))
        if not (repeat or unasked)
    ]  # fmt: skip
    vectors: list[np.ndarray | None] = [None] * len(entries)
    if wanted:  # one pass for the batch: the encoder reads its weights once per pass
        for i, vector in zip(
            wanted, rt.encoder.encode([entries[i].text for i in wanted]), strict=True
        ):
            vectors[i] = vector
    return vectors


def _judge(
    rt: Runtime,
    entry: Entry,
    duplicate: Duplicate | None,
    vector: np.ndarray | None,
    sorted_: _Sorted,
) -> Entry | None:
    """The entry classified, when it is to be matched against the subscriptions; None when it
    only joins its story (a duplicate, or an edit of a report that was not alerted)."""
    if entry.revision:
        # An item edited in place updates its story. Only the entry that was alerted for the
        # story (its first) sends the update, so one story is one thread.
        alerted = duplicate is None and entry.starts_story
        log.info("story.updated", revision=entry.revision, alerted=alerted, title=entry.title)
        if not alerted:
            sorted_.reports.append(entry)
            return None
    elif duplicate:
        sorted_.counts["entries_duplicate"] += 1
        log.info(
            "entry.duplicate",
            duplicate_of=duplicate.of,
            reason=duplicate.reason,
            similarity=round(duplicate.similarity, 3),
            title=entry.title,
            **({"why": duplicate.why} if duplicate.why else {}),
        )
        sorted_.reports.append(entry)
        sorted_.joined[entry.id] = duplicate
        return None
    entry = rt.classifier.classify(entry, vector)
    log.info("entry.classified", topics=list(entry.topics), title=entry.title)
    sorted_.reports.append(entry)
    return entry


def _record_stories(rt: Runtime, sorted_: _Sorted) -> None:
    """Each report onto its story, a duplicate with the report it joined and why."""
    with rt.connection.pipeline(transaction=False) as pipe:
        for entry in sorted_.reports:
            duplicate = sorted_.joined.get(entry.id)
            why = duplicate and {
                "reason": str(duplicate.reason),
                "of": duplicate.of,
                "similarity": round(duplicate.similarity, 3),
                **duplicate.why,
            }
            rt.stories.add(pipe, entry, why)
        pipe.execute()


def _hold_for_digests(
    rt: Runtime, subscriptions: tuple[Subscription, ...], alerts: dict[str, list[Alert]]
) -> set[str]:
    """A digest subscription's alerts wait for its digest (the others are sent now): the ids
    of the subscriptions whose alerts wait."""
    held = [s for s in subscriptions if s.digest_minutes and s.id in alerts]
    if held:
        with rt.connection.pipeline(transaction=True) as pipe:
            for subscription in held:
                rt.digests.hold(pipe, subscription, alerts[subscription.id])
            pipe.execute()
    return {s.id for s in held}


def _log_alerts(alerts: dict[str, list[Alert]], held: set[str]) -> None:
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
