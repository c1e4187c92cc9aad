"""`feeds.toml`: the [[feeds]] polled, each named uniquely."""

from __future__ import annotations

from monitor.core.config.reading import Reader, shown
from monitor.core.config.settings import INTERVAL, Settings
from monitor.core.config.values import http_url, name, strings, table_key
from monitor.core.models import Feed, FeedKind

FEED_KEYS = {"name", "url", "interval_seconds", "tags", "kind"}


def read_feeds(reader: Reader, settings: Settings) -> tuple[Feed, ...]:
    feeds, seen_names = [], set()
    tables = reader.array_of_tables("feeds")
    for i, table in enumerate(tables):
        where = f"{table_key('feeds', i, tables, 'name')}."
        reader.unknown_keys(table, FEED_KEYS, where)
        feed_name = reader.require(table, "name", where, str, name)
        url = reader.require(table, "url", where, str, http_url)
        # A feed given its own interval keeps it; the others adapt to their update rate.
        interval = reader.get(
            table, "interval_seconds", where, int, settings.poll_interval_seconds, INTERVAL
        )
        adaptive = "interval_seconds" not in table
        tags = reader.get(table, "tags", where, list, [], strings)
        kind = reader.get(table, "kind", where, str, FeedKind.FEED, _kind_name)
        if feed_name in seen_names:
            reader.problem(
                f"{where}name", f"{feed_name!r} is used by another feed; feed names must be unique"
            )
            continue
        seen_names.add(feed_name)
        if feed_name and url:
            feeds.append(Feed(feed_name, url, interval, tuple(tags), adaptive, FeedKind(kind)))
    return tuple(feeds)


def _kind_name(value: str) -> str | None:
    if value in set(FeedKind):
        return None
    names = ", ".join(repr(k.value) for k in FeedKind)
    return f"unknown kind {shown(value)}; write one of {names} (default 'feed')"
