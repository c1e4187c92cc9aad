"""WebSub push: feeds that advertise a hub send their new entries instead of waiting to be
polled. The poller subscribes (and renews before the lease ends); `newsmon serve` answers
the hub's verification and takes pushed documents onto the same path as polled ones.

The callback is public, so nothing in it is taken on trust:
- Verification. Each request we send names a callback of its own,
  `{callback_url}/{feed}?token=T` with T random (a query parameter, because WebSub hubs
  must keep the callback's query when they add theirs). Only T's hash is stored, with the
  request time. A verification is confirmed only with that token, for that topic, while the
  request is pending (RETRY_SECONDS); the token is then cleared, so it confirms once. The
  lease a hub grants is capped at LEASE_SECONDS, and a stored expiry beyond that cap (none of
  ours can be) counts as no subscription.
- Pushes. Every request has its own random secret, so a pushed document is taken only when
  its `X-Hub-Signature` proves it came from the hub we subscribed at. The secret of the
  verified subscription stays in force until the next request is verified, so a renewal the
  hub never confirms does not stop the pushes of the subscription that still runs. (A
  renewal names a new callback, so the hub may push to the old one too until its lease ends,
  at most a day later; those pushes carry the old secret and are dropped, the same entries
  arriving through the new one.)
A feed with an active push subscription is still polled, at the longest interval, in case
pushes stop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

import httpx
import redis
import structlog

from monitor.core import keys
from monitor.core.config import Config
from monitor.core.feedstate import FeedState
from monitor.core.models import Feed
from monitor.poller.fetch import Fetcher, FetchError
from monitor.poller.parse import ParseError, parse_feed
from monitor.poller.seen import EntryQueue

log = structlog.get_logger()

LEASE_SECONDS = 10 * 24 * 3600  # asked of the hub, and the most we accept from it
RENEW_BEFORE_SECONDS = 24 * 3600
RETRY_SECONDS = 3600  # a request the hub never verified is sent again after this
SIGNATURE_METHODS = {"sha1", "sha256", "sha384", "sha512"}
# A push is one feed document, usually a few KiB; the polling cap (15 MiB) is for archives
# that nobody pushes, and a public endpoint should not hold that much per request.
PUSH_MAX_BYTES = 2 * 1024 * 1024


# Checks a verification against the pending request and, if it matches, spends the token and
# makes the request's secret the subscription's, in one step: a second use of the token, or a
# new request stored meanwhile (a new token), cannot slip between the check and the change.
# The token is compared as a hash, so a timing difference says nothing about the token.
CONFIRM_SCRIPT = """
-- KEYS: feed state. ARGV: token hash, topic, oldest request time still pending, mode, expiry.
local state = redis.call('HMGET', KEYS[1], 'websub_token', 'websub_requested',
                         'websub_topic', 'websub_pending_secret')
local token, requested, topic, secret = state[1], state[2], state[3], state[4]
if not token or token ~= ARGV[1] then return 'token' end
if not secret or not requested or tonumber(requested) < tonumber(ARGV[3]) then
  return 'stale'
end
if topic ~= ARGV[2] then return 'topic' end
redis.call('HDEL', KEYS[1], 'websub_token', 'websub_pending_secret')
if ARGV[4] == 'subscribe' then
  redis.call('HSET', KEYS[1], 'websub_secret', secret, 'websub_expires', ARGV[5])
end
return 'ok'
"""
REFUSALS = {
    "token": "no request of ours is waiting under this callback's token",
    "stale": "our request under this token is no longer pending",
    "topic": "we asked for another topic",
}


def callback_url(base: str, feed_name: str, token: str) -> str:
    return f"{base.rstrip('/')}/{quote(feed_name, safe='')}?{urlencode({'token': token})}"


def _token_hash(token: str) -> str:
    # Hashed so that reading Redis does not give what confirms a subscription.
    return hashlib.sha256(token.encode()).hexdigest()


def _lease_end(state: FeedState, now: float) -> float:
    """The verified subscription's expiry; 0 if none, or if it lies further ahead than any
    lease we grant (written by an older newsmon that took a hub's word for ten years)."""
    expires = state.websub_expires or 0.0
    return expires if expires <= now + LEASE_SECONDS else 0.0


def is_active(state: FeedState, now: float) -> bool:
    return _lease_end(state, now) > now


def is_pending(state: FeedState, now: float) -> bool:
    """A request of ours the hub has not verified yet, and still may."""
    requested = state.websub_requested or 0.0
    return bool(state.websub_token) and now - requested <= RETRY_SECONDS


def wants_subscription(state: FeedState, hub: str, topic: str, now: float) -> bool:
    """True when there is no verified subscription at this hub for this topic that lasts
    another day, and no request of ours is still waiting for the hub's verification."""
    same = state.websub_hub == hub and state.websub_topic == topic
    if same and _lease_end(state, now) - now > RENEW_BEFORE_SECONDS:
        return False
    return not same or now - (state.websub_requested or 0.0) > RETRY_SECONDS


def request_subscription(
    state: FeedState, base: str, feed_name: str, hub: str, topic: str, now: float
) -> dict[str, str]:
    """Record a new request in `state` and return its form. Store the state before sending
    the form: the hub may verify (and push) at once. The token and secret are new for every
    request; they become the subscription's when the hub verifies this request."""
    secret, token = secrets.token_hex(32), secrets.token_urlsafe(32)
    state.subscription_requested(hub, topic, _token_hash(token), secret, now)
    return {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback_url(base, feed_name, token),
        "hub.secret": secret,
        "hub.lease_seconds": str(LEASE_SECONDS),
    }


def granted_lease(value: str) -> int:
    """The hub's `hub.lease_seconds`, capped at ours; ours when it gives none we can read."""
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        return LEASE_SECONDS
    return min(int(value), LEASE_SECONDS)


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
        self.entry_queue = EntryQueue(
            connection, config.settings.seen_per_feed, max_age_hours=config.settings.max_age_hours
        )
        self.max_push_bytes = min(config.settings.max_feed_bytes, PUSH_MAX_BYTES)
        self.confirm = connection.register_script(CONFIRM_SCRIPT)

    def _state(self, feed_name: str) -> FeedState:
        return FeedState.read(self.connection.hgetall(keys.feed_state(feed_name)))

    def verify(self, feed_name: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """Confirm only what we asked for and are still waiting for: the pending request
        whose token the callback carries, for this feed's topic."""
        mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
        bound = log.bind(feed=feed_name, topic=topic, mode=mode)
        if feed_name not in self.feeds:
            bound.warning("websub.unexpected", reason="no such feed")
            return 404, b"unknown subscription\n"
        if mode not in ("subscribe", "denied"):
            bound.warning("websub.unexpected", reason=f"we did not ask to {mode!r}")
            return 404, b"unexpected mode\n"
        lease, now = granted_lease(params.get("hub.lease_seconds", "")), time.time()
        outcome = self.confirm(
            keys=[keys.feed_state(feed_name)],
            args=[
                _token_hash(params.get("token", "")),
                topic,
                now - RETRY_SECONDS,
                mode,
                now + lease,
            ],
        ).decode()
        if outcome != "ok":
            bound.warning("websub.unexpected", reason=REFUSALS[outcome])
            return 404, b"unknown subscription\n"
        if mode == "denied":
            bound.warning("websub.denied", reason=params.get("hub.reason", ""))
            return 200, b""
        bound.info("websub.subscribed", lease_seconds=lease)
        return 200, params.get("hub.challenge", "").encode()

    def early_answer(self, feed_name: str, signature: str) -> int | None:
        """The answer to a push that can be refused from its headers alone, before its body
        is read; None when the body is worth reading."""
        if feed_name not in self.feeds:
            return 404
        bound = log.bind(feed=feed_name)
        now = time.time()
        state = self._state(feed_name)
        if not is_active(state, now) and not is_pending(state, now):
            bound.warning("websub.rejected", reason="no subscription of ours to this feed")
            return 410  # WebSub: the hub may end a subscription its callback answers 410 to
        if signature.partition("=")[0] not in SIGNATURE_METHODS:
            bound.warning("websub.rejected", reason="missing X-Hub-Signature")
            return 202  # 2xx as WebSub asks, so a hub does not retry what is never taken
        return None

    def _secrets(self, state: FeedState, now: float) -> list[str]:
        """The secrets a genuine push may be signed with: the running subscription's, and
        the pending request's (a hub may push as soon as it has verified)."""
        found = []
        if is_active(state, now) and state.websub_secret:
            found.append(state.websub_secret)
        if is_pending(state, now) and state.websub_pending_secret:
            found.append(state.websub_pending_secret)
        return found

    def push(self, feed_name: str, body: bytes, content_type: str, signature: str) -> int:
        """Take a pushed document; 2xx even when it is refused, as WebSub asks, so a hub does
        not retry what will never be taken."""
        feed = self.feeds.get(feed_name)
        if feed is None:
            return 404
        with structlog.contextvars.bound_contextvars(feed=feed_name, url=feed.url, bytes=len(body)):
            return self._take_push(feed, body, content_type, signature)

    def _take_push(self, feed: Feed, body: bytes, content_type: str, signature: str) -> int:
        state = self._state(feed.name)
        if not any(signature_valid(s, body, signature) for s in self._secrets(state, time.time())):
            log.warning("websub.rejected", reason="missing or wrong X-Hub-Signature")
            return 202
        try:
            parsed = parse_feed(feed, body, content_type)
        except ParseError as exc:
            log.warning("websub.rejected", reason=str(exc))
            return 202
        state.pushed(time.time())
        submitted = self.entry_queue.submit(
            feed, parsed.entries, state.take_changes(), {"feeds_pushed": 1}
        )
        submitted.log_entries()
        log.info(
            "websub.pushed",
            entries=len(parsed.entries),
            new=len(submitted.new),
            edited=len(submitted.edited),
            jobs=submitted.job_ids,
        )
        return 202


async def subscribe(
    fetcher: Fetcher,
    connection: redis.Redis,
    callback_base: str,
    feed: Feed,
    state: FeedState,
    hub: str,
    topic: str,
) -> None:
    """Ask the feed's hub to push it to us, unless a subscription is in place or pending."""
    now = time.time()
    if not wants_subscription(state, hub, topic, now):
        return
    form = request_subscription(state, callback_base, feed.name, hub, topic, now)
    # Stored first: the hub may verify (and push) before its answer to us arrives.
    await asyncio.to_thread(
        connection.hset, keys.feed_state(feed.name), mapping=state.take_changes()
    )
    bound = log.bind(hub=hub, topic=topic)
    try:
        status = await fetcher.post_form(hub, form)
    except FetchError as exc:
        bound.warning("websub.failed", reason=str(exc))
        return
    if httpx.codes.is_success(status):
        bound.info("websub.requested", callback=form["hub.callback"])
    else:
        bound.warning("websub.failed", reason=f"hub answered HTTP {status}")
