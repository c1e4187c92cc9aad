"""When each feed is due, shared by every poller: one Redis sorted set, feed name -> due time.

A poller claims due feeds with one Lua call that also pushes their due time a lease ahead,
so no two pollers fetch a feed for the same due time; when the fetch is done the poller
writes the real next due time. A poller that dies mid-fetch leaves only the lease, and the
feed falls due again when it runs out.

How long to wait before the next poll is decided here too (`next_interval`): a feed without
its own `interval_seconds` adapts to how often it has new entries, within the configured
bounds, and no feed is polled sooner than its `<ttl>` or `Cache-Control: max-age` allow.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import redis

from monitor import keys
from monitor.models import Feed

# How long a feed's recent history counts when estimating its update rate.
RATE_MEMORY_SECONDS = 24 * 3600

CLAIM_SCRIPT = """
-- KEYS[1]: the schedule. ARGV: now, lease end, how many feeds at most.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, name in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], name)
end
return due
"""


class Schedule:
    def __init__(self, connection: redis.Redis, lease_seconds: float):
        self.connection = connection
        self.lease_seconds = lease_seconds
        self._claim = connection.register_script(CLAIM_SCRIPT)

    def sync(self, feeds: Iterable[Feed], now: float, spread_seconds: float) -> None:
        """Add configured feeds that are not scheduled yet and drop ones no longer configured.

        A new feed is first due at a stable offset of up to `spread_seconds` (within its
        interval): feeds started together would stay in step, every poll landing at once and
        every batch queueing behind the others."""
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
            if gone := scheduled - first_due.keys():
                pipe.zrem(keys.SCHEDULE, *gone)
            pipe.execute()

    def claim(self, now: float, limit: int) -> list[str]:
        """Names of up to `limit` feeds due at `now`, now leased to the caller."""
        names = self._claim(keys=[keys.SCHEDULE], args=[now, now + self.lease_seconds, limit])
        return [name.decode() for name in names]

    def set_due(self, pipe: redis.client.Pipeline, name: str, due: float) -> None:
        """Schedule the feed's next poll, in the caller's pipeline (ends its lease)."""
        pipe.zadd(keys.SCHEDULE, {name: due})

    def extend_lease(self, name: str, now: float) -> None:
        """Keep a claimed feed that is still waiting for its turn from falling due again."""
        self.connection.zadd(keys.SCHEDULE, {name: now + self.lease_seconds}, xx=True)

    def next_due(self) -> float | None:
        first = self.connection.zrange(keys.SCHEDULE, 0, 0, withscores=True)
        return first[0][1] if first else None


def decayed_count(count: float, since_seconds: float) -> float:
    """A feed's count of new entries `since_seconds` later: older ones fade, so the count
    reflects about the last RATE_MEMORY_SECONDS."""
    return count * math.exp(-max(since_seconds, 0) / RATE_MEMORY_SECONDS)


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
