"""WebSub push: feeds that advertise a hub send their new entries instead of waiting to be
polled. The poller subscribes (and renews before the lease ends); `newsmon serve` answers
the hub's verification and takes pushed documents onto the same path as polled ones.

Every subscription has its own random secret, so a pushed document is taken only when its
`X-Hub-Signature` proves it came from the hub we subscribed at. A feed with an active push
subscription is still polled, at the longest interval, in case pushes stop.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote

import redis
import structlog

from monitor import keys
from monitor.config import Config
from monitor.enqueue import EntryQueue
from monitor.parse import ParseError, parse_feed

log = structlog.get_logger()

LEASE_SECONDS = 10 * 24 * 3600  # asked of the hub; it may grant another
RENEW_BEFORE_SECONDS = 24 * 3600
RETRY_SECONDS = 3600  # a request the hub never verified is sent again after this
SIGNATURE_METHODS = {"sha1", "sha256", "sha384", "sha512"}


def callback_url(base: str, feed_name: str) -> str:
    return f"{base.rstrip('/')}/{quote(feed_name, safe='')}"


def is_active(state: Mapping[str, str], now: float) -> bool:
    return float(state.get("websub_expires") or 0) > now


def wants_subscription(state: Mapping[str, str], hub: str, topic: str, now: float) -> bool:
    """True when there is no verified subscription at this hub for this topic that lasts
    another day, and no request of ours is still waiting for the hub's verification."""
    same = state.get("websub_hub") == hub and state.get("websub_topic") == topic
    if same and float(state.get("websub_expires") or 0) - now > RENEW_BEFORE_SECONDS:
        return False
    return not same or now - float(state.get("websub_requested") or 0) > RETRY_SECONDS


def subscription_request(
    base: str, feed_name: str, hub: str, topic: str, now: float
) -> tuple[dict[str, str | float], dict[str, str]]:
    """The state to store before asking (the hub may verify and push at once), and the form."""
    secret = secrets.token_hex(32)
    state = {
        "websub_hub": hub,
        "websub_topic": topic,
        "websub_secret": secret,
        "websub_requested": now,
    }
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback_url(base, feed_name),
        "hub.secret": secret,
        "hub.lease_seconds": str(LEASE_SECONDS),
    }
    return state, form


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """`X-Hub-Signature: method=hexdigest`, an HMAC of the body under the subscription secret."""
    method, _, given = header.partition("=")
    if not secret or method not in SIGNATURE_METHODS:
        return False
    expected = hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


class Callback:
    """The subscriber side of `newsmon serve`: GET is the hub's verification, POST a push."""

    def __init__(self, connection: redis.Redis, config: Config):
        self.connection = connection
        self.feeds = {feed.name: feed for feed in config.feeds}
        self.entry_queue = EntryQueue(connection, config.settings.seen_per_feed)

    def _state(self, feed_name: str) -> dict[str, str]:
        raw = self.connection.hgetall(keys.feed_state(feed_name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def verify(self, feed_name: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """Confirm only what we asked for: a subscription to this feed's topic at its hub."""
        state = self._state(feed_name) if feed_name in self.feeds else {}
        mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
        bound = log.bind(feed=feed_name, topic=topic, mode=mode)
        if not state or topic != state.get("websub_topic"):
            bound.warning("websub.unexpected", reason="no subscription of ours to this topic")
            return 404, b"unknown subscription\n"
        if mode == "denied":
            bound.warning("websub.denied", reason=params.get("hub.reason", ""))
            return 200, b""
        if mode != "subscribe":
            bound.warning("websub.unexpected", reason=f"we did not ask to {mode!r}")
            return 404, b"unexpected mode\n"
        lease = params.get("hub.lease_seconds", "")
        expires = time.time() + (int(lease) if lease.isdigit() else LEASE_SECONDS)
        self.connection.hset(keys.feed_state(feed_name), "websub_expires", expires)
        bound.info("websub.subscribed", lease_seconds=int(expires - time.time()))
        return 200, params.get("hub.challenge", "").encode()

    def push(self, feed_name: str, body: bytes, content_type: str, signature: str) -> int:
        """Take a pushed document; 2xx even when it is refused, as WebSub asks, so a hub does
        not retry what will never be taken."""
        feed = self.feeds.get(feed_name)
        if feed is None:
            return 404
        state = self._state(feed_name)
        bound = log.bind(feed=feed_name, url=feed.url, bytes=len(body))
        if not signature_valid(state.get("websub_secret", ""), body, signature):
            bound.warning("websub.rejected", reason="missing or wrong X-Hub-Signature")
            return 202
        try:
            parsed = parse_feed(feed, body, content_type)
        except ParseError as exc:
            bound.warning("websub.rejected", reason=str(exc))
            return 202
        submitted = self.entry_queue.submit(
            feed, parsed.entries, {"last_pushed": time.time()}, {"feeds_pushed": 1}
        )
        submitted.log_entries(bound)
        bound.info(
            "websub.pushed",
            entries=len(parsed.entries),
            new=len(submitted.new),
            edited=len(submitted.edited),
            jobs=submitted.job_ids,
        )
        return 202
