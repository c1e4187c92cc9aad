"""New-entry check and enqueue: the poller's hand-over to the workers.

An entry is new when its key is not in its feed's seen-set, and edited when its key is
there but its title or summary changed (it then carries a `revision` and updates its story
rather than starting one). An entry of the feed's past (`is_past`) is marked `backfilled`:
it still goes to the workers, which record it for dedupe but do not alert it. New and
edited entries go onto the entries queue in batches (one RQ job per batch, so RQ's per-job
cost is shared), and in the same MULTI/EXEC the keys are marked seen and the feed's state
(validators such as ETag and Last-Modified) is stored. So a crash can never mark an entry
seen without its job being queued, nor make the next fetch answer 304 for entries that were
never queued.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import redis
import structlog

from monitor.core import keys, queues
from monitor.core.config import Settings
from monitor.core.counters import count
from monitor.core.documents import entry_document
from monitor.core.models import Entry, Feed
from monitor.poller.schedule import KEEP_SECONDS

log = structlog.get_logger()

BATCH_SIZE = 200
PAST = "p:"  # before an item's stored digest: it is of the feed's past (never alerted)
JOB_TIMEOUT_SECONDS = 600

# Marks the feed's current items seen (refreshing their place, so trimming only ever drops
# keys that have left the feed), stores their digests, and trims both to the bound. The
# feed's keys then live at least `keep` seconds more: extended, never shortened, since the
# last poll's Schedule.set_due may have set a later expiry (a long interval). A state hash
# that does not exist yet gets its expiry from the set_due that follows its first poll.
REMEMBER_SCRIPT = """
-- KEYS: seen zset, digests hash, state hash. ARGV: now, bound, keep, then key, digest pairs.
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
while excess > 0 do
  local old = redis.call('ZRANGE', KEYS[1], 0, math.min(excess, 1000) - 1)
  redis.call('ZREM', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  excess = excess - #old
end
for _, key in ipairs(KEYS) do
  if redis.call('TTL', key) < tonumber(ARGV[3]) then
    redis.call('EXPIRE', key, ARGV[3])
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Checked:
    """A document's items (one per key, with their digests as stored: PAST-marked for the
    feed's past), and which of them are new or edited (each edited one with its `revision`
    set)."""

    items: list[Entry]
    digests: list[str]
    new: list[Entry]
    edited: list[Entry]

    @property
    def backfilled(self) -> int:
        """Items recorded as the feed's past for the first time (an edit of one is no more)."""
        return sum(e.backfilled for e in self.new)


@dataclass(frozen=True, slots=True)
class Submitted:
    new: list[Entry]
    edited: list[Entry]
    job_ids: list[str]
    backfilled: int = 0

    @property
    def counters(self) -> dict[str, int]:
        return {
            "entries_enqueued": len(self.new),
            "entries_edited": len(self.edited),
            "entries_backfilled": self.backfilled,
        }

    def log_entries(self) -> None:
        """One line per new entry and per edit, and one for all of the feed's new past (a
        feed's first document can hold hundreds); the feed's ids are in the caller's log
        context."""
        for entry in self.new:
            if not entry.backfilled:
                log.info("entry.enqueued", entry_id=entry.id, title=entry.title)
        for entry in self.edited:
            log.info(
                "entry.edited",
                entry_id=entry.id,
                revision=entry.revision,
                title=entry.title,
                backfilled=entry.backfilled,
            )
        if self.backfilled:
            log.info("feed.backfilled", entries=self.backfilled)


def is_past(entry: Entry, first_document: bool, oldest: datetime) -> bool:
    """An item of the feed's past: any of its first document (which holds the feed's
    archive, not news), or one published before `oldest`. An undated item counts as new."""
    return first_document or (entry.published is not None and entry.published < oldest)


def digest(entry: Entry) -> str:
    """What an edit changes: the title and the summary."""
    content = f"{entry.title}\0{entry.summary}".encode()
    return hashlib.blake2b(content, digest_size=8).hexdigest()


class EntryQueue:
    def __init__(
        self,
        connection: redis.Redis,
        seen_per_feed: int,
        keep_seconds: int = KEEP_SECONDS,
        max_age_hours: float = Settings.max_age_hours,
    ):
        self.connection = connection
        self.seen_per_feed = seen_per_feed
        self.max_age = timedelta(hours=max_age_hours)
        self.keep_seconds = keep_seconds
        self.queue = queues.queue(keys.ENTRIES_QUEUE, connection)
        self.remember = connection.register_script(REMEMBER_SCRIPT)

    def check(self, feed: Feed, entries: list[Entry], first_document: bool = False) -> Checked:
        """Which of a document's entries this feed has not shown before, and which it has
        shown with another title or summary, each marked when it is of the feed's past
        (one read; nothing is written)."""
        items = _first_per_key(entries)
        if not items:
            return Checked([], [], [], [])
        digests = [digest(e) for e in items]
        item_keys = [e.key for e in items]
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zmscore(keys.feed_seen(feed.name), item_keys)
            pipe.hmget(keys.feed_digests(feed.name), item_keys)
            scores, known_digests = pipe.execute()
        new, edited, stored = [], [], []
        oldest = datetime.now(UTC) - self.max_age
        for entry, current, score, known in zip(items, digests, scores, known_digests, strict=True):
            known_digest = known.decode() if known is not None else None
            # An item of the past stays one: an edit of what was never alerted is no update.
            was_past = known_digest is not None and known_digest.startswith(PAST)
            past = was_past or is_past(entry, first_document, oldest)
            if score is None:
                new.append(replace(entry, backfilled=past))
            elif known_digest is not None and known_digest.removeprefix(PAST) != current:
                edited.append(replace(entry, revision=current, backfilled=past))
            stored.append(PAST + current if past else current)
        return Checked(items, stored, new, edited)

    def enqueue(self, pipe: redis.client.Pipeline, feed: Feed, checked: Checked) -> Submitted:
        """Queue the new and edited entries and mark the document's items seen, in the
        caller's MULTI pipeline: the caller adds the feed's state and counters to the same
        transaction."""
        changed = checked.new + checked.edited
        job_ids = []
        for start in range(0, len(changed), BATCH_SIZE):
            batch = changed[start : start + BATCH_SIZE]
            job = self.queue.enqueue_call(
                queues.PROCESS_JOB,
                args=([entry_document(e) for e in batch],),
                timeout=JOB_TIMEOUT_SECONDS,
                retry=queues.JOB_RETRY,
                result_ttl=0,
                description=f"process {len(batch)} entries of {feed.name}",
                pipeline=pipe,
            )
            job_ids.append(job.id)
        if checked.items:
            pairs = [
                v for e, d in zip(checked.items, checked.digests, strict=True) for v in (e.key, d)
            ]
            self.remember(
                keys=[
                    keys.feed_seen(feed.name),
                    keys.feed_digests(feed.name),
                    keys.feed_state(feed.name),
                ],
                args=[time.time(), self.seen_per_feed, self.keep_seconds, *pairs],
                client=pipe,
            )
        if checked.backfilled:  # for `newsmon feeds`; FeedState reads it, never writes it
            pipe.hincrby(keys.feed_state(feed.name), "backfilled", checked.backfilled)
        return Submitted(checked.new, checked.edited, job_ids, checked.backfilled)

    def submit(
        self,
        feed: Feed,
        entries: list[Entry],
        state: Mapping[str, str | float | int],
        counters: Mapping[str, int],
    ) -> Submitted:
        """Enqueue the new and edited entries of one document; store `state` (fields of the
        feed's hash) and add `counters` to the stats in the same transaction."""
        checked = self.check(feed, entries)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            submitted = self.enqueue(pipe, feed, checked)
            if state:
                pipe.hset(keys.feed_state(feed.name), mapping=dict(state))
            count(pipe, {**counters, **submitted.counters})
            pipe.execute()
        return submitted


def _first_per_key(entries: list[Entry]) -> list[Entry]:
    """A document that repeats an item counts its first appearance only."""
    first: dict[str, Entry] = {}
    for entry in entries:
        first.setdefault(entry.key, entry)
    return list(first.values())
