"""What a story gathered: its headline, topics, the outlets that reported it and their entries.

Dedupe decides which story an entry joins; this keeps the record a person reads to see what
was merged (`newsmon stories`). One Redis hash per story, living as long as the dedupe window
after its last report, and one sorted set of stories by their last report.

A story's hash: `v` (format version), `title`, `link`, `topics` (JSON list), `first_seen`,
`last_seen` (unix times), then `o:<feed>` = when that outlet first reported it and
`e:<entry id>` = the entry's feed, one field each, `r:<entry id>` = the report as it came
(JSON: headline, link, when it was recorded), and `w:<entry id>` = why a report joined
(JSON: the reason, the report it joined, the similarity, which for a story is the pair
model's probability, and for a story the deciding features), so that an operator can audit
every merge. A story's `w:` recorded by an older newsmon holds the probability again, as
`probability`; it reads as it was written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from monitor.core import keys
from monitor.core.models import Entry

VERSION = 1
OUTLET = "o:"
ENTRY = "e:"
REPORT = "r:"
WHY = "w:"

# Every report adds itself and moves last_seen; the story's first entry sets its headline,
# link and topics (a later report recorded before it, by another worker, fills them in
# until then). One script, so two workers adding to one story never lose a field.
RECORD_SCRIPT = """
-- KEYS: the story's hash, the index. ARGV: story id, now, ttl, feed, entry id,
-- v, title, link, topics, '1' when the entry is the story's first, why it joined ('' if new),
-- the report (JSON).
local set = ARGV[10] == '1' and 'HSET' or 'HSETNX'
for i, field in ipairs({'title', 'link', 'topics'}) do
  redis.call(set, KEYS[1], field, ARGV[6 + i])
end
redis.call('HSETNX', KEYS[1], 'v', ARGV[6])
redis.call('HSETNX', KEYS[1], 'first_seen', ARGV[2])
redis.call('HSETNX', KEYS[1], 'o:' .. ARGV[4], ARGV[2])
redis.call('HSET', KEYS[1], 'e:' .. ARGV[5], ARGV[4], 'r:' .. ARGV[5], ARGV[12],
  'last_seen', ARGV[2])
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[1], 'w:' .. ARGV[5], ARGV[11])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


@dataclass(frozen=True, slots=True)
class Story:
    id: str
    title: str
    link: str
    topics: tuple[str, ...]
    outlets: tuple[str, ...]  # feed names, in the order they first reported it
    entries: tuple[str, ...]
    first_seen: float
    last_seen: float
    why: dict[str, dict[str, object]]  # entry id -> why it joined (entries after the first)
    # entry id -> {"feed", "title", "link", "at"}, oldest first; a report recorded by an
    # older newsmon has its feed only.
    reports: dict[str, dict[str, object]]


class Stories:
    def __init__(self, connection: redis.Redis, window_seconds: int):
        self.connection = connection
        self.window_seconds = window_seconds
        self.record_script = connection.register_script(RECORD_SCRIPT)

    def add(
        self,
        pipe: redis.client.Pipeline,
        entry: Entry,
        why: dict[str, object] | None = None,
        now: float | None = None,
    ) -> None:
        """Record `entry` as a report of its story, in the caller's pipeline, with `why` it
        joined (for a report after the first). The first report's headline, link and topics
        stand for the story."""
        now = now or time.time()
        report = {"title": entry.title, "link": entry.link, "at": now}
        self.record_script(
            keys=[keys.story(entry.story_id), keys.STORIES],
            args=[
                entry.story_id,
                now,
                self.window_seconds,
                entry.feed_name,
                entry.id,
                VERSION,
                entry.title,
                entry.link,
                json.dumps(list(entry.topics)),
                "1" if entry.starts_story else "0",
                json.dumps(why) if why else "",
                json.dumps(report, ensure_ascii=False),
            ],
            client=pipe,
        )

    def recent(self, since: float, topic: str | None = None) -> list[Story]:
        """Stories reported since `since`, the latest report first."""
        ids = self.connection.zrevrangebyscore(keys.STORIES, "+inf", since)
        return [s for s in self._read(ids) if topic is None or topic in s.topics]

    def latest(self, count: int, topic: str | None = None) -> list[Story]:
        """The `count` stories reported last (under `topic`, if given), the latest report
        first. Reads the index a page at a time, so a board asking for the last few reads a
        few stories, however many the window holds."""
        page = count if topic is None else 4 * count
        found: list[Story] = []
        start = 0
        while len(found) < count:
            ids = self.connection.zrevrange(keys.STORIES, start, start + page - 1)
            if not ids:
                break
            found += [s for s in self._read(ids) if topic is None or topic in s.topics]
            start += page
        return found[:count]

    def get(self, story_id: str) -> Story | None:
        """The story, or None when there is none of that id (or it expired)."""
        raw = self.connection.hgetall(keys.story(story_id))
        return _story(story_id, raw) if raw else None

    def _read(self, raw_ids: list[bytes]) -> list[Story]:
        ids = [i.decode() for i in raw_ids]
        with self.connection.pipeline(transaction=False) as pipe:
            for story_id in ids:
                pipe.hgetall(keys.story(story_id))
            raws = pipe.execute()
        return [_story(i, raw) for i, raw in zip(ids, raws, strict=True) if raw]


def _story(story_id: str, raw: dict[bytes, bytes]) -> Story:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    outlets = sorted(
        (float(seen), name.removeprefix(OUTLET))
        for name, seen in fields.items()
        if name.startswith(OUTLET)
    )
    return Story(
        id=story_id,
        title=fields.get("title", ""),
        link=fields.get("link", ""),
        topics=tuple(json.loads(fields.get("topics", "[]"))),
        outlets=tuple(name for _, name in outlets),
        entries=tuple(n.removeprefix(ENTRY) for n in fields if n.startswith(ENTRY)),
        first_seen=float(fields.get("first_seen", 0)),
        last_seen=float(fields.get("last_seen", 0)),
        why={n.removeprefix(WHY): json.loads(v) for n, v in fields.items() if n.startswith(WHY)},
        reports=_reports(fields),
    )


def _reports(fields: dict[str, str]) -> dict[str, dict[str, object]]:
    """Each entry's report, oldest first: its feed, and what its `r:` field kept."""
    reports = {
        name.removeprefix(ENTRY): {
            "feed": feed,
            **json.loads(fields.get(REPORT + name.removeprefix(ENTRY), "{}")),
        }
        for name, feed in fields.items()
        if name.startswith(ENTRY)
    }
    return dict(sorted(reports.items(), key=lambda item: float(item[1].get("at", 0))))
