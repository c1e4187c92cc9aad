"""The poller: when a feed is due, fetch -> parse -> new-entry check -> enqueue.

Any number of pollers share one Redis: they claim due feeds from the schedule (see
schedule.py), so each due feed is fetched once. Fetches run on one asyncio event loop,
up to `concurrency` at once and `per_host` per host; Redis work and parsing run in threads
so the loop never waits on them. A failing feed is logged as `feed.failed` with its reason,
backs off, and never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
import structlog

from monitor.core import keys
from monitor.core.config import Config, Settings
from monitor.core.counters import count, heartbeat
from monitor.core.models import Feed
from monitor.core.outage import UNAVAILABLE, wait_for_redis
from monitor.poller import websub
from monitor.poller.fetch import Fetcher, FetchError, FetchResult
from monitor.poller.parse import ParsedFeed, ParseError, parse_feed
from monitor.poller.schedule import Schedule, decayed_count, next_interval
from monitor.poller.seen import EntryQueue

log = structlog.get_logger()

MAX_BACKOFF_SECONDS = 6 * 3600
MAX_START_SPREAD_SECONDS = 10
SYNC_SECONDS = 60
MOVE_AFTER_REDIRECTS = 3
UNHEALTHY_AFTER_ERRORS = 5
IDLE_WAIT_SECONDS = 1.0

State = dict[str, str]


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: str
    status: str  # "fetched", "not_modified", "throttled" or "failed"
    new_entries: int = 0
    edited_entries: int = 0
    reason: str = ""
    next_poll_in: float = 0.0  # seconds


class Poller:
    def __init__(self, config: Config, connection: redis.Redis):
        self.settings = config.settings
        self.feeds = config.feeds
        self.feeds_by_name = {feed.name: feed for feed in config.feeds}
        self.connection = connection
        self.entry_queue = EntryQueue(connection, self.settings.seen_per_feed)
        # A lease outlives any fetch (bounded by the timeout) and the work after it.
        self.schedule = Schedule(
            connection, lease_seconds=2 * self.settings.fetch_timeout_seconds + 60
        )

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; fetches in flight then finish (and enqueue) first."""
        asyncio.run(self._run(stop))

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

    async def _poll_all(self, claimed: list[tuple[Feed, State]]) -> list[PollOutcome]:
        async with _Fetching(self.settings) as fetching:
            return await asyncio.gather(*(self._poll(fetching, f, s) for f, s in claimed))

    async def _run(self, stop: threading.Event) -> None:
        log.info("poller.started", feeds=len(self.feeds))
        tasks: set[asyncio.Task[PollOutcome]] = set()
        min_claim = max(self.settings.fetch_concurrency // 10, 1)
        last_beat = last_sync = 0.0
        async with _Fetching(self.settings) as fetching:
            try:
                while not stop.is_set():
                    try:
                        now = time.time()
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
                        if room >= min_claim or not tasks:
                            claimed = await asyncio.to_thread(self._claim, now, room)
                            for feed, state in claimed:
                                tasks.add(asyncio.create_task(self._poll(fetching, feed, state)))
                            if len(claimed) < room:  # nothing else is due: sleep until then
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
                        # A poll whose enqueue failed marked nothing seen and kept its lease:
                        # its feed is fetched again once the lease runs out.
                        await asyncio.to_thread(wait_for_redis, self.connection, stop)
            finally:
                await asyncio.gather(*tasks, return_exceptions=True)
        log.info("poller.stopped")

    def _idle_wait(self) -> float:
        """Until the next feed falls due, within [0.05 s, 1 s]."""
        due = self.schedule.next_due()
        if due is None:
            return IDLE_WAIT_SECONDS
        return min(max(due - time.time(), 0.05), IDLE_WAIT_SECONDS)

    def _claim(self, now: float, limit: int) -> list[tuple[Feed, State]]:
        names = [n for n in self.schedule.claim(now, limit) if n in self.feeds_by_name]
        feeds = [self.feeds_by_name[n] for n in names]
        return list(zip(feeds, self._states(names), strict=True))

    def _states(self, names: list[str]) -> list[State]:
        with self.connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(keys.feed_state(name))
            return [{k.decode(): v.decode() for k, v in raw.items()} for raw in pipe.execute()]

    async def _poll(self, fetching: _Fetching, feed: Feed, state: State) -> PollOutcome:
        """One fetch of one feed, end to end. Never raises for a bad feed: it logs and reports."""
        started = time.monotonic()
        # A feed that moved for good is fetched at its new URL, until the config changes.
        url = state["moved_url"] if state.get("moved_from") == feed.url else feed.url
        try:
            async with fetching.slot(url):
                if time.monotonic() - started > self.schedule.lease_seconds / 2:
                    await asyncio.to_thread(self.schedule.extend_lease, feed.name, time.time())
                fetched = await fetching.fetcher.fetch(
                    url, state.get("etag") or None, state.get("last_modified") or None
                )
        except FetchError as exc:
            if exc.retry_after is not None:
                return await asyncio.to_thread(
                    self._throttled, feed, state, str(exc), exc.retry_after
                )
            return await asyncio.to_thread(self._failed, feed, state, str(exc))
        outcome, parsed = await asyncio.to_thread(self._take, feed, state, url, fetched, started)
        if parsed and parsed.hub and parsed.topic and self.settings.websub_callback_url:
            await self._subscribe(fetching.fetcher, feed, state, parsed.hub, parsed.topic)
        return outcome

    def _take(
        self, feed: Feed, state: State, url: str, fetched: FetchResult, started: float
    ) -> tuple[PollOutcome, ParsedFeed | None]:
        """What a fetch brought: parse, enqueue what is new, and schedule the next poll."""
        bound = log.bind(feed=feed.name, url=feed.url)
        now = time.time()
        try:
            parsed = (
                parse_feed(feed, fetched.body, fetched.content_type)
                if fetched.body is not None
                else None
            )
        except ParseError as exc:
            return self._failed(feed, state, str(exc)), None
        except Exception as exc:  # a feed must never take the poller down
            return self._failed(feed, state, f"unexpected {type(exc).__name__}: {exc}"), None

        first = "first_fetched" not in state
        new_count = decayed_count(
            float(state.get("new_count") or 0), now - float(state.get("last_fetched") or now)
        )
        updates: dict[str, str | float | int] = {
            "last_status": fetched.status,
            "last_fetched": now,
            "errors": 0,
            "last_error": "",
            "first_fetched": state.get("first_fetched") or now,
            **self._track_move(feed, url, fetched.moved_to, state),
        }
        submitted = None
        if parsed is not None:
            updates["etag"] = fetched.etag or ""
            updates["last_modified"] = fetched.last_modified or ""
            updates["ttl"] = parsed.ttl_seconds or 0
            submitted = self.entry_queue.submit(feed, parsed.entries, updates, {"feeds_fetched": 1})
            # The first document's entries are the feed's past, not its rate.
            new_count += 0 if first else len(submitted.new)
        floor = max(fetched.max_age or 0, float(updates.get("ttl") or state.get("ttl") or 0))
        if websub.is_active(state, now):
            floor = max(floor, self.settings.max_interval_seconds)
        interval = next_interval(
            feed,
            new_count,
            now - float(updates["first_fetched"]),
            (self.settings.min_interval_seconds, self.settings.max_interval_seconds),
            min(floor, MAX_BACKOFF_SECONDS),
        )
        if submitted is None:
            self._save(
                feed, {**updates, "new_count": new_count}, {"feeds_not_modified": 1}, now + interval
            )
        else:  # the rest of the state went with the entries
            self._save(feed, {"new_count": new_count}, {}, now + interval)
        if submitted is None:
            bound.info("feed.not_modified", next_poll_in=round(interval))
            return PollOutcome(feed.name, "not_modified", next_poll_in=interval), None
        submitted.log_entries(bound)
        bound.info(
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
        outcome = PollOutcome(
            feed.name, "fetched", len(submitted.new), len(submitted.edited), next_poll_in=interval
        )
        return outcome, parsed

    def _save(
        self,
        feed: Feed,
        updates: dict[str, str | float | int],
        counters: dict[str, int],
        due: float,
    ) -> None:
        """Store the feed's new state and its next due time, in one round trip."""
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hset(keys.feed_state(feed.name), mapping=updates)
            count(pipe, counters)
            self.schedule.set_due(pipe, feed.name, due)
            pipe.execute()

    def _failed(self, feed: Feed, state: State, reason: str) -> PollOutcome:
        """Count the error and back off: the wait doubles with each error in a row, up to
        MAX_BACKOFF_SECONDS (or the feed's own interval, if longer); never a hard stop."""
        errors = int(state.get("errors") or 0) + 1
        backoff = min(
            feed.interval_seconds * 2 ** (errors - 1),
            max(MAX_BACKOFF_SECONDS, feed.interval_seconds),
        )
        now = time.time()
        updates = {"errors": errors, "last_error": reason, "last_fetched": now}
        self._save(feed, updates, {"feeds_failed": 1}, now + backoff)
        log.warning(
            "feed.failed",
            feed=feed.name,
            url=feed.url,
            reason=reason,
            errors=errors,
            retry_in=backoff,
        )
        if errors == UNHEALTHY_AFTER_ERRORS:
            log.error(
                "feed.unhealthy", feed=feed.name, url=feed.url, errors=errors, last_error=reason
            )
        return PollOutcome(feed.name, "failed", reason=reason, next_poll_in=backoff)

    def _throttled(self, feed: Feed, state: State, reason: str, retry_after: float) -> PollOutcome:
        """The server asked for time (429/503 with Retry-After): wait, but count no error."""
        wait = max(feed.interval_seconds, retry_after)
        now = time.time()
        self._save(feed, {"last_error": reason, "last_fetched": now}, {}, now + wait)
        log.info("feed.throttled", feed=feed.name, url=feed.url, reason=reason, retry_in=wait)
        return PollOutcome(feed.name, "throttled", reason=reason, next_poll_in=wait)

    def _track_move(
        self, feed: Feed, url: str, moved_to: str | None, state: State
    ) -> dict[str, str | int]:
        """Follow a permanent redirect seen MOVE_AFTER_REDIRECTS times in a row; forget one
        that is not seen again. Returns the state fields to store with this poll's."""
        if moved_to is None or moved_to == url:
            return {"moving_to": "", "moving_count": 0} if state.get("moving_to") else {}
        count = int(state.get("moving_count") or 0) + 1 if state.get("moving_to") == moved_to else 1
        if count < MOVE_AFTER_REDIRECTS:
            return {"moving_to": moved_to, "moving_count": count}
        log.warning(
            "feed.moved",
            feed=feed.name,
            url=feed.url,
            moved_to=moved_to,
            hint="update feeds.toml to the new URL",
        )
        return {"moved_url": moved_to, "moved_from": feed.url, "moving_to": "", "moving_count": 0}

    async def _subscribe(
        self, fetcher: Fetcher, feed: Feed, state: State, hub: str, topic: str
    ) -> None:
        """Ask the feed's hub to push it to us, unless a subscription is in place or pending."""
        now = time.time()
        if not websub.wants_subscription(state, hub, topic, now):
            return
        fields, form = websub.subscription_request(
            self.settings.websub_callback_url, feed.name, hub, topic, now
        )
        # Stored first: the hub may verify (and push) before its answer to us arrives.
        await asyncio.to_thread(self.connection.hset, keys.feed_state(feed.name), mapping=fields)
        bound = log.bind(feed=feed.name, hub=hub, topic=topic)
        try:
            response = await fetcher.post_form(hub, form)
        except FetchError as exc:
            bound.warning("websub.failed", reason=str(exc))
            return
        if response.is_success:
            bound.info("websub.requested", callback=form["hub.callback"])
        else:
            bound.warning("websub.failed", reason=f"hub answered HTTP {response.status_code}")


class _Fetching:
    """The fetcher and its limits, for the life of one event loop: `concurrency` fetches in
    flight overall and `per_host` to any one host."""

    def __init__(self, settings: Settings):
        self.fetcher = Fetcher(settings.fetch_timeout_seconds, settings.max_feed_bytes)
        self.overall = asyncio.Semaphore(settings.fetch_concurrency)
        self.per_host = settings.fetch_per_host
        self.hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> _Fetching:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.fetcher.aclose()

    @contextlib.asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = urlsplit(url).hostname or ""
        per_host = self.hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        async with per_host, self.overall:
            yield
