"""New-entry check and enqueue: the poller's hand-over to the workers.

An entry is new when its key is not in its feed's seen-set. New entries go onto the
entries queue in batches (one RQ job per batch, so RQ's per-job cost is shared), and in the
same MULTI/EXEC the keys are marked seen and the feed's validators (ETag, Last-Modified)
are stored. So a crash can never mark an entry seen without its job being queued, nor make
the next fetch answer 304 for entries that were never queued.
"""

from __future__ import annotations

import time

import redis
from rq import Queue, Retry

from monitor import keys, stats
from monitor.fetch import FetchResult
from monitor.models import Entry, Feed

BATCH_SIZE = 200
PROCESS_JOB = "workers.jobs.process_entries"
JOB_TIMEOUT_SECONDS = 600
# A worker killed mid-job leaves the job "abandoned"; RQ re-runs it while retries remain.
JOB_RETRY = Retry(max=5, interval=[1, 5, 30, 60, 300])


class EntryQueue:
    def __init__(self, connection: redis.Redis, seen_per_feed: int):
        self.connection = connection
        self.seen_per_feed = seen_per_feed
        self.queue = Queue(keys.ENTRIES_QUEUE, connection=connection)

    def new_entries(self, feed: Feed, entries: list[Entry]) -> list[Entry]:
        """Entries whose key this feed has not shown before (the first of any repeats)."""
        first_by_key: dict[str, Entry] = {}
        for entry in entries:
            first_by_key.setdefault(entry.key, entry)
        unique = list(first_by_key.values())
        if not unique:
            return []
        scores = self.connection.zmscore(keys.feed_seen(feed.name), [e.key for e in unique])
        return [entry for entry, score in zip(unique, scores, strict=True) if score is None]

    def submit(
        self, feed: Feed, entries: list[Entry], fetched: FetchResult
    ) -> tuple[list[Entry], list[str]]:
        """Enqueue the new entries of one fetch; return them and the ids of their jobs."""
        new = self.new_entries(feed, entries)
        now = time.time()
        job_ids = []
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            for start in range(0, len(new), BATCH_SIZE):
                batch = new[start : start + BATCH_SIZE]
                job = self.queue.enqueue_call(
                    PROCESS_JOB,
                    args=(batch,),
                    timeout=JOB_TIMEOUT_SECONDS,
                    retry=JOB_RETRY,
                    result_ttl=0,
                    description=f"process {len(batch)} entries of {feed.name}",
                    pipeline=pipe,
                )
                job_ids.append(job.id)
            seen_key = keys.feed_seen(feed.name)
            if entries:
                # Everything still in the document is refreshed, so trimming only ever drops
                # keys that have left the feed.
                pipe.zadd(seen_key, {entry.key: now for entry in entries})
                pipe.zremrangebyrank(seen_key, 0, -self.seen_per_feed - 1)
            state = {
                "last_status": fetched.status,
                "last_fetched": now,
                "errors": 0,
                "last_error": "",
                "etag": fetched.etag or "",
                "last_modified": fetched.last_modified or "",
            }
            pipe.hset(keys.feed_state(feed.name), mapping=state)
            stats.count(pipe, {"feeds_fetched": 1, "entries_enqueued": len(new)})
            pipe.execute()
        return new, job_ids
