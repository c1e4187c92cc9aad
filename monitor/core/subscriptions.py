"""Subscriptions made over the HTTP API, kept in Redis, and the view every process reads:
subscriptions.toml's first, then the API's whose id the file does not use.

A record keeps the subscription's table (the keys of a [[subscriptions]] table, secrets
listed under `secret`) as the API accepted it, and is checked again by the one subscription
check (config/subscription.py) when read: a key added there applies to both sources at once. Records
are versioned JSON; every change moves a counter, which is all a worker reads to know
whether its view is current.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import redis
import structlog

from monitor.core import keys
from monitor.core.config import SUBSCRIPTION_KEYS, Config, Problem, check_subscription
from monitor.core.models import Feed, Subscription

VERSION = 1
# Over the API a secret is given, or made by newsmon; an environment variable names
# something on the server's side, which a caller has no business reading.
API_KEYS = SUBSCRIPTION_KEYS - {"secret_env"}
REFRESH_SECONDS = 2.0  # how stale a process's view may be: well inside the promised 5 s
ROTATION_OVERLAP_SECONDS = 24 * 3600  # an old secret signs beside the new one this long

log = structlog.get_logger()


@dataclass(frozen=True)
class Record:
    """One API subscription as stored: its table, and secrets replaced by a rotation with the
    unix time each stops signing."""

    table: dict[str, Any]
    retiring: tuple[tuple[str, float], ...] = ()
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def id(self) -> str:
        return self.table["id"]

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "table": self.table,
                "retiring": [[secret, until] for secret, until in self.retiring],
                "created": self.created,
                "updated": self.updated,
            },
            ensure_ascii=False,
        )

    def rotated(self, secrets: tuple[str, ...], now: float) -> Record:
        """The record signing with `secrets` from `now`: each secret they replace signs beside
        them for ROTATION_OVERLAP_SECONDS more, so receivers have time to take the new one;
        those already retiring keep their own time, and go once it has passed."""
        until = now + ROTATION_OVERLAP_SECONDS
        retiring = tuple((s, t) for s, t in self.retiring if t > now) + tuple(
            (old, until) for old in self.table["secret"] if old not in secrets
        )
        table = {**self.table, "secret": list(secrets)}
        return replace(self, table=table, retiring=retiring, updated=now)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Record:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise ValueError(f"not a version-{VERSION} subscription record: {str(raw)[:80]}")
        retiring = tuple((secret, float(until)) for secret, until in doc.get("retiring", ()))
        return cls(doc["table"], retiring, doc["created"], doc["updated"])

    def checked(
        self, topic_names: set[str], feeds: tuple[Feed, ...]
    ) -> tuple[Subscription | None, list[Problem]]:
        """The subscription checked as when it was made, and its problems."""
        return check_subscription(
            self.table, topic_names, feeds, source=f"API subscription {self.id}", keys=API_KEYS
        )

    def subscription(self, topic_names: set[str], feeds: tuple[Feed, ...]) -> Subscription | None:
        """The subscription, checked as when it was made; None (logged) if it no longer
        passes, e.g. its topic was removed from topics.toml."""
        subscription, problems = self.checked(topic_names, feeds)
        if subscription is None:
            log.warning(
                "subscription.invalid", subscription=self.id, problems=[str(p) for p in problems]
            )
            return None
        now = time.time()
        live = tuple((secret, until) for secret, until in self.retiring if until > now)
        return replace(subscription, retiring=live)


class SubscriptionStore:
    """The API's subscriptions in Redis: one hash field each, and the change counter."""

    def __init__(self, connection: redis.Redis):
        self.connection = connection

    def version(self) -> int:
        return int(self.connection.get(keys.API_SUBSCRIPTIONS_VERSION) or 0)

    def records(self) -> dict[str, Record]:
        raw = self.connection.hgetall(keys.API_SUBSCRIPTIONS)
        records = {}
        for sub_id, value in raw.items():
            name = sub_id.decode() if isinstance(sub_id, bytes) else sub_id
            try:
                records[name] = Record.from_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("subscription.unreadable", subscription=name, reason=str(exc))
        return dict(sorted(records.items()))

    def get(self, sub_id: str) -> Record | None:
        raw = self.connection.hget(keys.API_SUBSCRIPTIONS, sub_id)
        return Record.from_json(raw) if raw else None

    def create(self, record: Record) -> bool:
        """Store a new record; False if its id is taken."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.API_SUBSCRIPTIONS, record.id, record.to_json())
            pipe.incr(keys.API_SUBSCRIPTIONS_VERSION)
            created, _ = pipe.execute()
        return bool(created)

    def update(self, sub_id: str, change: Callable[[Record], Record]) -> Record | None:
        """Store `change(record)` in place of the record, unless another change lands between
        the read and the write (then it runs again on the new record); None when there is no
        such record. An exception from `change` leaves the record as it was."""
        changed: Record | None = None

        def apply(pipe: redis.client.Pipeline) -> None:
            nonlocal changed
            raw = pipe.hget(keys.API_SUBSCRIPTIONS, sub_id)
            changed = change(Record.from_json(raw)) if raw else None
            if changed is not None:
                pipe.multi()
                pipe.hset(keys.API_SUBSCRIPTIONS, sub_id, changed.to_json())
                pipe.incr(keys.API_SUBSCRIPTIONS_VERSION)

        self.connection.transaction(apply, keys.API_SUBSCRIPTIONS)
        return changed

    def delete(self, sub_id: str) -> bool:
        """Remove the record, and the state kept under its id (endpoint health, counters, the
        message index, what waits for its digest), so a subscription made later under the
        same id starts afresh."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.API_SUBSCRIPTIONS, sub_id)
            pipe.delete(
                keys.endpoint(sub_id),
                keys.stats_subscription(sub_id),
                keys.messages_of(sub_id),
                keys.digest_pending(sub_id),
            )
            pipe.zrem(keys.DIGESTS_DUE, sub_id)
            pipe.incr(keys.API_SUBSCRIPTIONS_VERSION)
            deleted, *_ = pipe.execute()
        return bool(deleted)


class Subscriptions:
    """Every subscription a process acts on: subscriptions.toml's, then the API's. The API's
    are read again when the change counter has moved, which is checked at most every
    `refresh_seconds`: one small read per few seconds, none per entry."""

    def __init__(
        self, config: Config, connection: redis.Redis, refresh_seconds: float = REFRESH_SECONDS
    ):
        self.config, self.refresh_seconds = config, refresh_seconds
        self.store = SubscriptionStore(connection)
        self.topic_names = {topic.name for topic in config.topics}
        self.feeds = config.feeds
        self.from_file = {s.id: s for s in config.subscriptions}
        self._version: int | None = None
        self._checked = float("-inf")
        self._all: tuple[Subscription, ...] = config.subscriptions

    def all(self) -> tuple[Subscription, ...]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_seconds:
            self._checked = now
            version = self.store.version()
            if version != self._version:
                self._all = self._read()
                self._version = version
        return self._all

    def get(self, sub_id: str) -> Subscription | None:
        return next((s for s in self.all() if s.id == sub_id), None)

    def _read(self) -> tuple[Subscription, ...]:
        from_api = [
            subscription
            for sub_id, record in self.store.records().items()
            if sub_id not in self.from_file
            and (subscription := record.subscription(self.topic_names, self.feeds))
        ]
        return self.config.subscriptions + tuple(from_api)
