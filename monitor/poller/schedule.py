"""When each feed is due, shared by every poller: one Redis sorted set, feed name -> due time.

A poller claims due feeds with one Lua call that also pushes their due time a lease ahead,
so no two pollers fetch a feed for the same due time; when the fetch is done the poller
writes the real next due time. A poller that dies mid-fetch leaves only the lease, and the
feed falls due again when it runs out.

How long to wait before the next poll is decided here too (`next_interval`; `backoff` after
a failure): a feed without its own `interval_seconds` adapts to how often it has new entries,
within the configured bounds, and no feed is polled sooner than its `<ttl>` or
`Cache-Control: max-age` allow.

Redis memory stays bounded by the configured feeds. Each poll's `set_due` keeps the feed's
keys (state, seen-set, digests) until KEEP_SECONDS after its next due time, whatever its
interval or backoff. A feed that leaves feeds.toml is marked removed by `sync` and keeps its
keys for REMOVED_GRACE_SECONDS: put back by mistake, it does not replay its past as new.
While a new config rolls out, a poller still on the old one marks the new feeds removed too,
but any poller that knows a feed unmarks it at its next sync (every minute), so the feed's
keys go only if no poller has known it for the whole grace period.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import redis
import structlog

from monitor.core import keys
from monitor.core.feedstate import RATE_MEMORY_SECONDS
from monitor.core.models import Feed

log = structlog.get_logger()

# The longest a failing feed waits between tries, unless its own interval is longer.
MAX_BACKOFF_SECONDS = 6 * 3600
# A feed's keys outlive its next due time by this much: no poller running (an outage, an
# upgrade) for up to a week, and its next poll still knows what it has seen.
KEEP_SECONDS = 7 * 24 * 3600
# How long a feed gone from feeds.toml keeps its keys (see the module's docstring).
REMOVED_GRACE_SECONDS = 7 * 24 * 3600
# Removed feeds whose keys one sync drops at most: a mass removal is spread over a few syncs.
DROP_PER_SYNC = 100

CLAIM_SCRIPT = """
-- KEYS[1]: the schedule. ARGV: now, lease end, how many feeds at most.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, name in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], name)
end
return due
"""

DROP_SCRIPT = """
-- KEYS: removed feeds, schedule, then the feed's own keys. ARGV: name, removed at or before.
-- Checked here, atomically: a feed that came back meanwhile has been unmarked and is kept.
local removed = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not removed or tonumber(removed) > tonumber(ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', unpack(KEYS, 3))
return 1
"""


class Schedule:
    def __init__(
        self,
        connection: redis.Redis,
        lease_seconds: float,
        keep_seconds: float = KEEP_SECONDS,
        grace_seconds: float = REMOVED_GRACE_SECONDS,
    ):
        self.connection = connection
        self.lease_seconds = lease_seconds
        self.keep_seconds = keep_seconds
        self.grace_seconds = grace_seconds
        self._claim = connection.register_script(CLAIM_SCRIPT)
        self._drop = connection.register_script(DROP_SCRIPT)

    def sync(self, feeds: Iterable[Feed], now: float, spread_seconds: float) -> list[str]:
        """Add configured feeds that are not scheduled yet and drop ones no longer configured.

        A new feed is first due at a stable offset of up to `spread_seconds` (within its
        interval): feeds started together would stay in step, every poll landing at once and
        every batch queueing behind the others. A dropped feed is marked removed (once: the
        first poller to notice sets the time), a configured one unmarked; the keys of feeds
        marked more than the grace period ago are deleted. Returns the names deleted."""
        first_due = {
            feed.name: now
            + zlib.crc32(feed.name.encode())
            % 1000
            / 1000
            * min(feed.interval_seconds, spread_seconds)
            for feed in feeds
        }
        scheduled = {name.decode() for name in self.connection.zrange(keys.SCHEDULE, 0, -1)}
        with self.connection.pipeline(transaction=False) as pipe:
            if first_due:
                pipe.zadd(keys.SCHEDULE, first_due, nx=True)
                pipe.zrem(keys.FEEDS_REMOVED, *first_due)
            if gone := scheduled - first_due.keys():
                pipe.zrem(keys.SCHEDULE, *gone)
                pipe.zadd(keys.FEEDS_REMOVED, dict.fromkeys(gone, now), nx=True)
            pipe.zrangebyscore(
                keys.FEEDS_REMOVED, "-inf", now - self.grace_seconds, 0, DROP_PER_SYNC
            )
            expired = [name.decode() for name in pipe.execute()[-1]]
        dropped = []
        for name in expired:
            if name not in first_due and self.drop(name, now):
                log.info("feed.forgotten", feed=name, grace_seconds=self.grace_seconds)
                dropped.append(name)
        return dropped

    def drop(self, name: str, now: float) -> bool:
        """Delete a removed feed's keys and schedule entry if its grace period is over."""
        feed_keys = [keys.FEEDS_REMOVED, keys.SCHEDULE, *keys.feed_keys(name)]
        return bool(self._drop(keys=feed_keys, args=[name, now - self.grace_seconds]))

    def claim(self, now: float, limit: int) -> list[str]:
        """Names of up to `limit` feeds due at `now`, now leased to the caller."""
        names = self._claim(keys=[keys.SCHEDULE], args=[now, now + self.lease_seconds, limit])
        return [name.decode() for name in names]

    def set_due(self, pipe: redis.client.Pipeline, name: str, due: float) -> None:
        """Schedule the feed's next poll, in the caller's pipeline (ends its lease), and keep
        the feed's keys until `keep_seconds` after it. Every poll ends here, whatever its
        outcome, so the expiry follows the feed's real interval, backoff or Retry-After."""
        pipe.zadd(keys.SCHEDULE, {name: due})
        for key in keys.feed_keys(name):
            pipe.expireat(key, math.ceil(due + self.keep_seconds))

    def extend_lease(self, name: str, now: float) -> None:
        """Keep a claimed feed that is still waiting for its turn from falling due again."""
        self.connection.zadd(keys.SCHEDULE, {name: now + self.lease_seconds}, xx=True)

    def next_due(self) -> float | None:
        first = self.connection.zrange(keys.SCHEDULE, 0, 0, withscores=True)
        return first[0][1] if first else None


def next_interval(
    feed: Feed,
    new_count: float,
    age_seconds: float,
    bounds: tuple[float, float],
    floor_seconds: float = 0,
) -> float:
    """Seconds until the next poll after a successful one.

    An adaptive feed is polled about once per expected new entry: the mean gap between its
    new entries (`new_count` entries, decayed, over the time it has been watched), within
    `bounds`. Until it has been watched for one default interval it keeps that interval.
    `floor_seconds` is what the publisher asked for (`<ttl>`, max-age, a hub's push)."""
    interval = float(feed.interval_seconds)
    if feed.adaptive and age_seconds >= feed.interval_seconds:
        watched = RATE_MEMORY_SECONDS * (1 - math.exp(-age_seconds / RATE_MEMORY_SECONDS))
        lower, upper = bounds
        interval = min(max(watched / (new_count + 1), lower), upper)
    return max(interval, floor_seconds)


def backoff(feed: Feed, errors: int) -> int:
    """Seconds until a failing feed is tried again: its interval, doubled with each error in
    a row after the first, up to MAX_BACKOFF_SECONDS (or its interval, if longer)."""
    longest = max(MAX_BACKOFF_SECONDS, feed.interval_seconds)
    # The exponent is capped first: 2 ** 2**20 is slow to compute, and a stored count is any.
    doublings = min(max(errors - 1, 0), longest.bit_length())
    return min(feed.interval_seconds * 2**doublings, longest)
