"""The poller: when a feed is due, fetch -> parse -> new-entry check -> enqueue.

Any number of pollers share one Redis: they claim due feeds from the schedule (see
schedule.py), so each due feed is fetched once. Fetches run on one asyncio event loop,
up to `concurrency` at once and `per_host` per host; Redis work and parsing run in threads
so the loop never waits on them. A failing feed is logged as `feed.failed` with its reason,
backs off, and never stops the others.

Each poll writes its feed's state (FeedState) once. A document's state goes in the
transaction that queues its entries and marks them seen, with its counters and next due
time. A poll that brought no document (304, failure, Retry-After) leaves a save that goes
to Redis with the others of its turn of the loop, in one pipeline: lost in a crash, its
feed keeps its lease and is fetched again when the lease runs out, and nothing else is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable

import redis
import structlog

from monitor.core import keys
from monitor.core.config import Config
from monitor.core.counters import count, heartbeat
from monitor.core.feedstate import FeedHealth, FeedState
from monitor.core.histograms import FETCH
from monitor.core.models import Feed
from monitor.core.outage import UNAVAILABLE, wait_for_redis
from monitor.core.redact import redact_text
from monitor.core.reload import ReloadRequest, reloaded
from monitor.poller import websub
from monitor.poller.fetch import FetchError, FetchResult
from monitor.poller.outcome import PollOutcome, PollStatus
from monitor.poller.parse import ParsedFeed, ParseError, parse_feed
from monitor.poller.schedule import MAX_BACKOFF_SECONDS, Schedule, backoff, next_interval
from monitor.poller.seen import EntryQueue
from monitor.poller.session import Save, Session

log = structlog.get_logger()

MAX_START_SPREAD_SECONDS = 10
SYNC_SECONDS = 60
IDLE_WAIT_SECONDS = 1.0


class Poller:
    def __init__(self, config: Config, connection: redis.Redis):
        self.connection = connection
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Poll these feeds with these settings (at the start, and on a reload: the fetch
        limits of [poller] hold until a restart)."""
        self.config, self.settings, self.feeds = config, config.settings, config.feeds
        self.feeds_by_name = {feed.name: feed for feed in config.feeds}
        self.entry_queue = EntryQueue(
            self.connection, self.settings.seen_per_feed, max_age_hours=self.settings.max_age_hours
        )
        # A lease outlives any fetch (bounded by the timeout) and the work after it.
        self.schedule = Schedule(
            self.connection, lease_seconds=2 * self.settings.fetch_timeout_seconds + 60
        )

    def run(self, stop: threading.Event, reload: ReloadRequest | None = None) -> None:
        """Poll until `stop` is set; fetches in flight then finish (and enqueue) first. On a
        `reload`, the config folder is read again between two turns."""
        asyncio.run(self._run(stop, reload))

    def run_once(self) -> list[PollOutcome]:
        """Claim every feed due now (new feeds are), poll them all, return their outcomes."""

        async def once() -> list[PollOutcome]:
            now = time.time()
            await asyncio.to_thread(self.schedule.sync, self.feeds, now, 0)
            claimed = await asyncio.to_thread(self._claim, now, len(self.feeds))
            return await self._poll_all(claimed)

        return asyncio.run(once())

    def poll_feeds(self, feeds: Iterable[Feed]) -> list[PollOutcome]:
        """Poll these feeds now, due or not."""

        async def now() -> list[PollOutcome]:
            feeds_ = list(feeds)
            states = await asyncio.to_thread(self._states, [f.name for f in feeds_])
            return await self._poll_all(list(zip(feeds_, states, strict=True)))

        return asyncio.run(now())

    async def _poll_all(self, claimed: list[tuple[Feed, FeedState]]) -> list[PollOutcome]:
        async with Session(self.settings) as session:
            # gather runs each poll in a task of its own, with a log context of its own.
            outcomes = await asyncio.gather(*(self._poll(session, f, s) for f, s in claimed))
            await asyncio.to_thread(self._write, session.take_saves())
        return outcomes

    async def _run(self, stop: threading.Event, reload: ReloadRequest | None) -> None:
        log.info("poller.started", feeds=len(self.feeds))
        tasks: set[asyncio.Task[PollOutcome]] = set()
        min_claim = max(self.settings.fetch_concurrency // 10, 1)
        last_beat = last_sync = 0.0
        async with Session(self.settings) as session:
            try:
                while not stop.is_set():
                    try:
                        now = time.time()
                        if reload and reload.take() and (config := reloaded(self.config)):
                            self.configure(config)
                            last_sync = 0.0  # the new feeds into the schedule now
                        if now - last_beat >= 1:
                            await asyncio.to_thread(heartbeat, self.connection, "poller")
                            last_beat = now
                        # Again now and then: while a new config rolls out, pollers on the old
                        # one drop the new feeds from the schedule, and this puts them back.
                        if now - last_sync >= SYNC_SECONDS:
                            await asyncio.to_thread(
                                self.schedule.sync, self.feeds, now, MAX_START_SPREAD_SECONDS
                            )
                            last_sync = now
                        room = self.settings.fetch_concurrency - len(tasks)
                        wait = IDLE_WAIT_SECONDS
                        # Claims go in batches (one Lua call serves many feeds) unless idle.
                        limit = room if room >= min_claim or not tasks else 0
                        if limit or session.saves:
                            claimed = await asyncio.to_thread(
                                self._store_and_claim, session.take_saves(), now, limit
                            )
                            for feed, state in claimed:
                                # Its own task: the ids it binds to its log context stay its own.
                                tasks.add(asyncio.create_task(self._poll(session, feed, state)))
                            if len(claimed) < limit:  # nothing else is due: sleep until then
                                wait = await asyncio.to_thread(self._idle_wait)
                        if not tasks:
                            await asyncio.sleep(wait)
                            continue
                        done, tasks = await asyncio.wait(
                            tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                        )
                        # Each read, so none is reported "never retrieved"; the first raised.
                        if errors := [e for t in done if (e := t.exception()) is not None]:
                            raise errors[0]
                    except UNAVAILABLE:
                        # A poll whose enqueue failed marked nothing seen and kept its lease,
                        # as did the polls whose saves were lost: their feeds are fetched
                        # again once their leases run out.
                        await asyncio.to_thread(wait_for_redis, self.connection, stop)
            finally:
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(*UNAVAILABLE):
                    await asyncio.to_thread(self._write, session.take_saves())
        log.info("poller.stopped")

    def _idle_wait(self) -> float:
        """Until the next feed falls due, within [0.05 s, 1 s]."""
        due = self.schedule.next_due()
        if due is None:
            return IDLE_WAIT_SECONDS
        return min(max(due - time.time(), 0.05), IDLE_WAIT_SECONDS)

    def _store_and_claim(
        self, saves: list[Save], now: float, limit: int
    ) -> list[tuple[Feed, FeedState]]:
        """A turn of the loop's Redis work, in one trip to a thread: write the saves of the
        polls finished since the last turn, then claim up to `limit` feeds due at `now`."""
        self._write(saves)
        return self._claim(now, limit) if limit else []

    def _write(self, saves: list[Save]) -> None:
        """The saves of many polls, in one pipeline."""
        if not saves:
            return
        totals: Counter[str] = Counter()
        with self.connection.pipeline(transaction=False) as pipe:
            for save in saves:
                self._store(pipe, save.feed, save.fields, save.due)
                totals.update(save.counters)
            count(pipe, totals, observations={FETCH: [save.fetch_seconds for save in saves]})
            pipe.execute()

    def _claim(self, now: float, limit: int) -> list[tuple[Feed, FeedState]]:
        names = [n for n in self.schedule.claim(now, limit) if n in self.feeds_by_name]
        feeds = [self.feeds_by_name[n] for n in names]
        return list(zip(feeds, self._states(names), strict=True))

    def _store(
        self, pipe: redis.client.Pipeline, name: str, fields: dict[str, str], due: float
    ) -> None:
        if fields:
            pipe.hset(keys.feed_state(name), mapping=fields)
        self.schedule.set_due(pipe, name, due)

    def _states(self, names: list[str]) -> list[FeedState]:
        with self.connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(keys.feed_state(name))
            return [FeedState.read(raw) for raw in pipe.execute()]

    async def _poll(self, session: Session, feed: Feed, state: FeedState) -> PollOutcome:
        """One fetch of one feed, end to end, in a task of its own. Never raises for a bad
        feed: it logs and reports."""
        structlog.contextvars.bind_contextvars(feed=feed.name, url=feed.url)
        started = fetch_started = time.monotonic()
        url = state.url_for(feed.url)
        try:
            async with session.slot(url):
                if time.monotonic() - started > self.schedule.lease_seconds / 2:
                    await asyncio.to_thread(self.schedule.extend_lease, feed.name, time.time())
                fetch_started = time.monotonic()
                fetched = await session.fetcher.fetch(
                    url, state.etag or None, state.last_modified or None
                )
        except FetchError as exc:
            seconds = time.monotonic() - fetch_started
            if exc.retry_after is not None:
                return self._throttled(session, feed, state, exc, fetch_seconds=seconds)
            return self._failed(
                session, feed, state, str(exc), status=exc.status, fetch_seconds=seconds
            )
        seconds = time.monotonic() - fetch_started
        if fetched.body is None:
            return self._not_modified(session, feed, state, url, fetched, fetch_seconds=seconds)
        try:
            parsed = await asyncio.to_thread(parse_feed, feed, fetched.body, fetched.content_type)
        except ParseError as exc:  # the server answered (its status is kept), with no feed
            return self._failed(
                session, feed, state, str(exc), status=fetched.status, fetch_seconds=seconds
            )
        except Exception as exc:  # a feed must never take the poller down
            reason = redact_text(f"unexpected {type(exc).__name__}: {exc}")
            return self._failed(
                session, feed, state, reason, status=fetched.status, fetch_seconds=seconds
            )
        outcome = await asyncio.to_thread(
            self._take, feed, state, url, fetched, parsed, started, fetch_seconds=seconds
        )
        if parsed.hub and parsed.topic and self.settings.websub_callback_url:
            await websub.subscribe(
                session.fetcher,
                self.connection,
                self.settings.websub_callback_url,
                feed,
                state,
                parsed.hub,
                parsed.topic,
            )
        return outcome

    def _take(
        self,
        feed: Feed,
        state: FeedState,
        url: str,
        fetched: FetchResult,
        parsed: ParsedFeed,
        started: float,
        *,
        fetch_seconds: float,
    ) -> PollOutcome:
        """A document: enqueue what is new, and store it with the feed's state, counters and
        next due time, in one transaction."""
        now = time.time()
        # A feed's first document is its past. A feed polled before this rule existed has
        # its state already, so its first poll after an upgrade alerts what is new as ever.
        first_document = state.first_fetched is None
        checked = self.entry_queue.check(feed, parsed.entries, first_document)
        state.fetched(
            fetched.status,
            now,
            fetched.etag,
            fetched.last_modified,
            parsed.ttl_seconds,
            len(checked.new),
        )
        self._follow_redirect(feed, state, url, fetched)
        interval = self._interval(feed, state, fetched, now)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.multi()
            submitted = self.entry_queue.enqueue(pipe, feed, checked)
            self._store(pipe, feed.name, state.take_changes(), now + interval)
            count(
                pipe,
                {"feeds_fetched": 1, **submitted.counters},
                observations={FETCH: [fetch_seconds]},
            )
            pipe.execute()
        submitted.log_entries()
        log.info(
            "feed.fetched",
            status=fetched.status,
            bytes=len(fetched.body or b""),
            entries=len(parsed.entries),
            new=len(submitted.new),
            edited=len(submitted.edited),
            jobs=submitted.job_ids,
            next_poll_in=round(interval),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return PollOutcome(
            feed.name,
            PollStatus.FETCHED,
            len(submitted.new),
            len(submitted.edited),
            next_poll_in=interval,
        )

    def _not_modified(
        self,
        session: Session,
        feed: Feed,
        state: FeedState,
        url: str,
        fetched: FetchResult,
        *,
        fetch_seconds: float,
    ) -> PollOutcome:
        now = time.time()
        state.not_modified(fetched.status, now)
        self._follow_redirect(feed, state, url, fetched)
        interval = self._interval(feed, state, fetched, now)
        session.save(
            feed.name, state, {"feeds_not_modified": 1}, now + interval, fetch_seconds=fetch_seconds
        )
        log.info("feed.not_modified", next_poll_in=round(interval))
        return PollOutcome(feed.name, PollStatus.NOT_MODIFIED, next_poll_in=interval)

    def _interval(self, feed: Feed, state: FeedState, fetched: FetchResult, now: float) -> float:
        """Seconds until the next poll after an answered fetch (schedule.next_interval)."""
        floor = max(fetched.max_age or 0, state.ttl)
        if websub.is_active(state, now):  # pushes bring the news: polls are the safety net
            floor = max(floor, self.settings.max_interval_seconds)
        return next_interval(
            feed,
            state.new_count,
            now - (state.first_fetched or now),
            (self.settings.min_interval_seconds, self.settings.max_interval_seconds),
            min(floor, MAX_BACKOFF_SECONDS),
        )

    def _follow_redirect(
        self, feed: Feed, state: FeedState, url: str, fetched: FetchResult
    ) -> None:
        if state.redirected(feed.url, url, fetched.moved_to):
            log.warning(
                "feed.moved", moved_to=fetched.moved_to, hint="update feeds.toml to the new URL"
            )

    def _failed(
        self,
        session: Session,
        feed: Feed,
        state: FeedState,
        reason: str,
        *,
        status: int = 0,
        fetch_seconds: float,
    ) -> PollOutcome:
        """Count the error and back off (schedule.backoff); never a hard stop. `status` is the
        HTTP status the server answered with (a 200 with no feed in it too), 0 when none did."""
        was_unhealthy = state.health is FeedHealth.UNHEALTHY
        now = time.time()
        state.failed(reason, now, status)
        wait = backoff(feed, state.errors)
        session.save(feed.name, state, {"feeds_failed": 1}, now + wait, fetch_seconds=fetch_seconds)
        log.warning("feed.failed", reason=reason, errors=state.errors, retry_in=wait)
        if state.health is FeedHealth.UNHEALTHY and not was_unhealthy:
            log.error("feed.unhealthy", errors=state.errors, last_error=reason)
        return PollOutcome(feed.name, PollStatus.FAILED, reason=reason, next_poll_in=wait)

    def _throttled(
        self,
        session: Session,
        feed: Feed,
        state: FeedState,
        asked: FetchError,
        *,
        fetch_seconds: float,
    ) -> PollOutcome:
        """The server asked for time (429/503 with Retry-After): wait, but count no error."""
        wait = max(feed.interval_seconds, asked.retry_after or 0)
        reason = str(asked)
        now = time.time()
        state.throttled(reason, now, asked.status)
        session.save(feed.name, state, {}, now + wait, fetch_seconds=fetch_seconds)
        log.info("feed.throttled", reason=reason, retry_in=wait)
        return PollOutcome(feed.name, PollStatus.THROTTLED, reason=reason, next_poll_in=wait)
