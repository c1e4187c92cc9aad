"""A feed's state between polls, and its health: one Redis hash per feed (keys.feed_state).

A poll reads the hash once into a FeedState, changes it through the methods named after
what happened (fetched, not_modified, failed, throttled, redirected), and writes back only
the fields that changed (`take_changes`), in the same round trip as the rest of the poll.
The hash keeps strings under the field names below, as every newsmon wrote them, so state
written by an older poller reads here and the other way round. A value that does not parse
(or a field an older newsmon never wrote) reads as the field's default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter

UNHEALTHY_AFTER_ERRORS = 5
MOVE_AFTER_REDIRECTS = 3
# How long a feed's recent history counts when estimating its update rate.
RATE_MEMORY_SECONDS = 24 * 3600


class FeedHealth(StrEnum):
    """What `newsmon feeds`, `newsmon stats` and /metrics say of a feed."""

    NEVER_FETCHED = "never_fetched"
    OK = "ok"
    FAILING = "failing"  # its last fetch failed
    UNHEALTHY = "unhealthy"  # UNHEALTHY_AFTER_ERRORS fetches in a row failed

    @property
    def is_failing(self) -> bool:
        return self in (FeedHealth.FAILING, FeedHealth.UNHEALTHY)


def decayed_count(count: float, since_seconds: float) -> float:
    """A feed's count of new entries `since_seconds` later: older ones fade, so the count
    reflects about the last RATE_MEMORY_SECONDS."""
    return count * math.exp(-max(since_seconds, 0) / RATE_MEMORY_SECONDS)


@dataclass(slots=True)
class FeedState:
    # The validators of the conditional GET, and the RSS <ttl> (seconds) of the last document.
    etag: str = ""
    last_modified: str = ""
    ttl: float = 0.0
    # The last poll, the run of errors that led to it, and the rate of new entries.
    last_status: int = 0
    last_fetched: float | None = None
    first_fetched: float | None = None
    errors: int = 0
    last_error: str = ""
    new_count: float = 0.0  # new entries, decayed (decayed_count)
    # Entries of the feed's past recorded without alerts; the poller adds to it in Redis.
    backfilled: int = 0
    # A permanent redirect seen on consecutive polls (moving_*), and the one followed (moved_*).
    moving_to: str = ""
    moving_count: int = 0
    moved_url: str = ""
    moved_from: str = ""
    # WebSub (monitor/poller/websub.py): the pending request, and the verified subscription,
    # which `newsmon serve` confirms in a Lua script of its own.
    websub_hub: str = ""
    websub_topic: str = ""
    websub_token: str = ""
    websub_pending_secret: str = ""
    websub_requested: float | None = None
    websub_secret: str = ""
    websub_expires: float | None = None
    last_pushed: float | None = None
    # The values as stored: what take_changes compares with.
    _stored: tuple[object, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._stored = _field_values(self)

    @classmethod
    def read(cls, raw: Mapping[bytes, bytes]) -> FeedState:
        """The state in the hash as HGETALL returns it (empty for a feed never seen)."""
        values = {}
        for raw_name, raw_value in raw.items():
            name = raw_name.decode("utf-8", "replace")
            if decode := _DECODERS.get(name):
                values[name] = decode(raw_value.decode("utf-8", "replace"))
        return cls(**values)

    def take_changes(self) -> dict[str, str]:
        """The fields changed since the state was read (or last taken), as the hash keeps
        them; from now on they count as stored."""
        values = _field_values(self)
        changed = {
            name: _encode(value)
            for name, value, stored in zip(_FIELD_NAMES, values, self._stored, strict=True)
            if value != stored
        }
        self._stored = values
        return changed

    @property
    def health(self) -> FeedHealth:
        if self.errors >= UNHEALTHY_AFTER_ERRORS:
            return FeedHealth.UNHEALTHY
        if self.errors:
            return FeedHealth.FAILING
        if self.last_fetched is None:
            return FeedHealth.NEVER_FETCHED
        return FeedHealth.OK

    def url_for(self, configured: str) -> str:
        """Where to fetch the feed configured at `configured`: the URL it moved to for good,
        until the config names another."""
        return self.moved_url if self.moved_url and self.moved_from == configured else configured

    def fetched(
        self,
        status: int,
        now: float,
        etag: str | None,
        last_modified: str | None,
        ttl: float | None,
        new_entries: int,
    ) -> None:
        """A document came: its validators and <ttl> replace the old, and its new entries
        count toward the feed's rate (except the first document's: that is the feed's past)."""
        first = self.first_fetched is None
        self._answered(status, now)
        self.etag, self.last_modified, self.ttl = etag or "", last_modified or "", float(ttl or 0)
        if not first:
            self.new_count += new_entries

    def not_modified(self, status: int, now: float) -> None:
        self._answered(status, now)

    def failed(self, reason: str, now: float, status: int = 0) -> None:
        """A poll failed; `status` is the HTTP status the server answered, 0 when none did."""
        self.errors += 1
        self.last_error = reason
        self.last_status = status
        self.last_fetched = now

    def throttled(self, reason: str, now: float, status: int) -> None:
        """The server asked for time: no error counts against the feed."""
        self.last_error = reason
        self.last_status = status
        self.last_fetched = now

    def redirected(self, configured: str, fetched_url: str, moved_to: str | None) -> bool:
        """Follow a permanent redirect seen MOVE_AFTER_REDIRECTS times in a row; forget one
        that is not seen again. True when the feed has just moved to `moved_to`."""
        if moved_to is None or moved_to == fetched_url:
            self.moving_to, self.moving_count = "", 0
            return False
        self.moving_count = self.moving_count + 1 if self.moving_to == moved_to else 1
        self.moving_to = moved_to
        if self.moving_count < MOVE_AFTER_REDIRECTS:
            return False
        self.moved_url, self.moved_from = moved_to, configured
        self.moving_to, self.moving_count = "", 0
        return True

    def subscription_requested(
        self, hub: str, topic: str, token_hash: str, pending_secret: str, now: float
    ) -> None:
        self.websub_hub, self.websub_topic = hub, topic
        self.websub_token, self.websub_pending_secret = token_hash, pending_secret
        self.websub_requested = now

    def pushed(self, now: float) -> None:
        self.last_pushed = now

    def _answered(self, status: int, now: float) -> None:
        """A fetch answered (a document or 304): the run of errors is over."""
        self.new_count = decayed_count(self.new_count, now - (self.last_fetched or now))
        self.last_status = status
        self.last_fetched = now
        self.errors = 0
        self.last_error = ""
        if self.first_fetched is None:
            self.first_fetched = now


def _count(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


def _amount(text: str) -> float:
    """A finite number >= 0 (a count, seconds), else 0."""
    number = _number(text)
    return number if number is not None and number > 0 else 0.0


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _encode(value: object) -> str:
    # repr, as redis-py writes a float: the hash has always held "1733049600.123".
    return repr(value) if isinstance(value, float) else "" if value is None else str(value)


# By annotation (a string here, under `from __future__ import annotations`).
_DECODER_OF_TYPE: dict[str, Callable[[str], object]] = {
    "str": str,
    "int": _count,
    "float": _amount,
    "float | None": _number,
}
_FIELD_NAMES = tuple(f.name for f in fields(FeedState) if f.name != "_stored")
_field_values = attrgetter(*_FIELD_NAMES)
_DECODERS = {f.name: _DECODER_OF_TYPE[f.type] for f in fields(FeedState) if f.name in _FIELD_NAMES}
