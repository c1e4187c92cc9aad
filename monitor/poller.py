"""The poller: when a feed is due, fetch -> parse -> new-entry check -> enqueue.

Any number of pollers can share one Redis: a feed is due when its lease key is absent, and
the poller that sets the lease (SET NX, expiring after the feed's interval) owns that fetch.
A failing feed is logged as `feed.failed` with its reason and never stops the others.
"""

from __future__ import annotations

import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
import structlog

from monitor import keys, stats
from monitor.config import Config
from monitor.enqueue import EntryQueue
from monitor.fetch import Fetcher, FetchError
from monitor.models import Feed
from monitor.parse import ParseError, parse_feed

log = structlog.get_logger()

MAX_START_SPREAD_SECONDS = 10
MAX_BACKOFF_SECONDS = 6 * 3600
MOVE_AFTER_REDIRECTS = 3
UNHEALTHY_AFTER_ERRORS = 5


@dataclass(frozen=True, slots=True)
class PollOutcome:
    feed: str
    status: str  # "fetched", "not_modified", "throttled" or "failed"
    new_entries: int = 0
    reason: str = ""


class Poller:
    def __init__(self, config: Config, connection: redis.Redis):
        settings = config.settings
        self.feeds = config.feeds
        self.connection = connection
        self.fetcher = Fetcher(settings.fetch_timeout_seconds, settings.max_feed_bytes)
        self.entry_queue = EntryQueue(connection, settings.seen_per_feed)
        self.pool = ThreadPoolExecutor(
            max_workers=settings.fetch_concurrency, thread_name_prefix="fetch"
        )
        self.next_check = {feed.name: 0.0 for feed in self.feeds}
        self.per_host = settings.fetch_per_host
        self.host_slots: dict[str, threading.Semaphore] = {}
        self.host_slots_lock = threading.Lock()

    def poll_feed(self, feed: Feed) -> PollOutcome:
        """One fetch of one feed, end to end. Never raises for a bad feed: it logs and reports."""
        bound = log.bind(feed=feed.name, url=feed.url)
        started = time.monotonic()
        state = {
            k.decode(): v.decode()
            for k, v in self.connection.hgetall(keys.feed_state(feed.name)).items()
        }
        # A feed that moved for good is fetched at its new URL, until the config changes.
        url = state["moved_url"] if state.get("moved_from") == feed.url else feed.url
        try:
            with self._host_slot(url):
                fetched = self.fetcher.fetch(
                    url, state.get("etag") or None, state.get("last_modified") or None
                )
            self._track_move(feed, url, fetched.moved_to, state)
            if fetched.max_age and fetched.max_age > feed.interval_seconds:
                # The server says the body stays fresh longer than our interval: no sooner.
                self._delay(feed, min(fetched.max_age, MAX_BACKOFF_SECONDS))
            if fetched.body is None:
                with self.connection.pipeline() as pipe:
                    state = {
                        "last_status": 304,
                        "last_fetched": time.time(),
                        "errors": 0,
                        "last_error": "",
                    }
                    pipe.hset(keys.feed_state(feed.name), mapping=state)
                    stats.count(pipe, {"feeds_not_modified": 1})
                    pipe.execute()
                bound.info("feed.not_modified")
                return PollOutcome(feed.name, "not_modified")
            entries = parse_feed(feed, fetched.body, fetched.content_type)
            new, job_ids = self.entry_queue.submit(feed, entries, fetched)
        except FetchError as exc:
            if exc.retry_after is not None:
                return self._throttled(feed, str(exc), exc.retry_after)
            return self._failed(feed, str(exc))
        except ParseError as exc:
            return self._failed(feed, str(exc))
        except redis.RedisError:
            raise  # not the feed's fault: let the process fail loudly and be restarted
        except Exception as exc:  # a feed must never take the poller down
            return self._failed(feed, f"unexpected {type(exc).__name__}: {exc}")
        for entry in new:
            bound.info("entry.enqueued", entry_id=entry.id, title=entry.title[:120])
        bound.info(
            "feed.fetched",
            status=fetched.status,
            bytes=len(fetched.body),
            entries=len(entries),
            new=len(new),
            jobs=job_ids,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return PollOutcome(feed.name, "fetched", len(new))

    def _failed(self, feed: Feed, reason: str) -> PollOutcome:
        """Count the error and back off: the wait doubles with each error in a row, up to
        MAX_BACKOFF_SECONDS (or the feed's own interval, if longer); never a hard stop."""
        state_key = keys.feed_state(feed.name)
        with self.connection.pipeline() as pipe:
            pipe.hincrby(state_key, "errors", 1)
            pipe.hset(state_key, mapping={"last_error": reason, "last_fetched": time.time()})
            stats.count(pipe, {"feeds_failed": 1})
            errors, *_ = pipe.execute()
        backoff = min(
            feed.interval_seconds * 2 ** (errors - 1),
            max(MAX_BACKOFF_SECONDS, feed.interval_seconds),
        )
        self._delay(feed, backoff)
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
        return PollOutcome(feed.name, "failed", reason=reason)

    def _host_slot(self, url: str) -> threading.Semaphore:
        """At most `per_host` fetches in flight to one host, whatever the concurrency."""
        host = urlsplit(url).hostname or ""
        with self.host_slots_lock:
            if host not in self.host_slots:
                self.host_slots[host] = threading.Semaphore(self.per_host)
            return self.host_slots[host]

    def _track_move(
        self, feed: Feed, url: str, moved_to: str | None, state: dict[str, str]
    ) -> None:
        """Follow a permanent redirect seen MOVE_AFTER_REDIRECTS times in a row; forget one
        that is not seen again. `state` is the feed's state read at the start of this poll
        (the lease makes this poller the only one writing it)."""
        key = keys.feed_state(feed.name)
        if moved_to is None or moved_to == url:
            if "moving_to" in state:
                self.connection.hdel(key, "moving_to", "moving_count")
            return
        same = state.get("moving_to") == moved_to
        count = int(state.get("moving_count", 0)) + 1 if same else 1
        if count < MOVE_AFTER_REDIRECTS:
            self.connection.hset(key, mapping={"moving_to": moved_to, "moving_count": count})
            return
        with self.connection.pipeline() as pipe:
            pipe.hset(key, mapping={"moved_url": moved_to, "moved_from": feed.url})
            pipe.hdel(key, "moving_to", "moving_count")
            pipe.execute()
        log.warning(
            "feed.moved",
            feed=feed.name,
            url=feed.url,
            moved_to=moved_to,
            hint="update feeds.toml to the new URL",
        )

    def _throttled(self, feed: Feed, reason: str, retry_after: float) -> PollOutcome:
        """The server asked for time (429/503 with Retry-After): wait, but count no error."""
        wait = max(feed.interval_seconds, retry_after)
        self._delay(feed, wait)
        self.connection.hset(
            keys.feed_state(feed.name), mapping={"last_error": reason, "last_fetched": time.time()}
        )
        log.info("feed.throttled", feed=feed.name, url=feed.url, reason=reason, retry_in=wait)
        return PollOutcome(feed.name, "throttled", reason=reason)

    def _delay(self, feed: Feed, seconds: float) -> None:
        """Hold the feed's lease for `seconds`, so no poller fetches it before then."""
        self.connection.set(keys.feed_lease(feed.name), "1", px=max(int(seconds * 1000), 1))
        self.next_check[feed.name] = time.time() + seconds

    def claim_due(self, now: float) -> list[Feed]:
        """Feeds due now whose lease this poller won."""
        due = []
        for feed in self.feeds:
            if self.next_check[feed.name] > now:
                continue
            lease = keys.feed_lease(feed.name)
            if self.connection.set(lease, "1", nx=True, ex=feed.interval_seconds):
                self.next_check[feed.name] = now + feed.interval_seconds
                due.append(feed)
            else:  # another poller holds it: look again when its lease runs out
                ttl = self.connection.ttl(lease)
                self.next_check[feed.name] = now + max(ttl, 1)
        return due

    def run_once(self) -> list[PollOutcome]:
        """Poll every due feed, concurrently, and wait for all of them."""
        return list(self.pool.map(self.poll_feed, self.claim_due(time.time())))

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a fetch in flight then finishes (and enqueues) first."""
        log.info("poller.started", feeds=len(self.feeds))
        # Feeds started together would stay in step, every poll landing at once and every
        # batch queueing behind the others; a stable offset per feed spreads them out.
        now = time.time()
        for feed in self.feeds:
            spread = min(feed.interval_seconds, MAX_START_SPREAD_SECONDS)
            self.next_check[feed.name] = now + zlib.crc32(feed.name.encode()) % 1000 / 1000 * spread
        while not stop.is_set():
            stats.heartbeat(self.connection, "poller")
            self.run_once()
            wait = min(self.next_check.values(), default=time.time() + 1) - time.time()
            stop.wait(min(max(wait, 0.2), 1.0))
        self.pool.shutdown(wait=True)
        self.fetcher.close()
        log.info("poller.stopped")
