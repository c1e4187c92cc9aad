"""The data types passed between the steps of the flow, and nothing else.

fetch -> parse -> new-entry check -> enqueue -> normalise -> dedupe -> classify -> match -> deliver:
the poller produces `Entry` objects from a `Feed`, the workers enrich the same `Entry`
(`text`, `story_id`, `topics`) and turn it into one `Alert` per matching `Subscription`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

ALL_TOPICS = "*"


class Format(StrEnum):
    """How a subscription's messages go: POSTed to its `url` as newsmon's Standard Webhooks
    JSON or as the payload of a chat service's incoming webhook (workers/delivery/formats.py),
    or sent by Telegram's Bot API or by email (workers/delivery/telegram.py, mail.py)."""

    STANDARD = "standard"
    SLACK = "slack"
    DISCORD = "discord"
    TEAMS = "teams"  # an Office 365 connector's MessageCard, until connectors are retired
    TEAMS_WORKFLOW = "teams_workflow"  # an Adaptive Card, to a Teams Workflows webhook
    TELEGRAM = "telegram"
    EMAIL = "email"

    @property
    def webhook(self) -> bool:
        """Whether messages are POSTed to the subscription's `url`, signed with its secrets."""
        return self not in (Format.TELEGRAM, Format.EMAIL)


class FeedKind(StrEnum):
    """What a feed's URL answers. A `feed` is RSS, Atom or JSON Feed, or an HTML page carrying
    a live blog, told apart by the body; a `liveblog` is read as a live blog page whatever
    the body looks like (monitor/poller/liveblog.py)."""

    FEED = "feed"
    LIVEBLOG = "liveblog"


@dataclass(frozen=True, slots=True)
class Feed:
    name: str
    url: str
    interval_seconds: int
    tags: tuple[str, ...] = ()
    adaptive: bool = False  # poll as often as the feed updates, within the configured bounds
    kind: FeedKind = FeedKind.FEED


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic and how it is recognised: weighted terms, ignored contexts, a threshold."""

    name: str
    threshold: float
    terms: dict[str, float]
    ignore: tuple[str, ...] = ()


# The sentence encoder a topic model reads (workers/encoder.py), and its vectors' length.
# Here, not there, so that checking a config needs no inference runtime.
ENCODER_ID = "use-multilingual-v3"
DIMENSIONS = 512


@dataclass(frozen=True, slots=True)
class TopicModel:
    """Topics learned from labelled lines (`topic_model.json`), read beside the rules.

    Per topic, a logistic model over the entry's sentence vector: one weight per dimension,
    then the bias; and the threshold its probability, with the rules' evidence added
    (workers/ml/topic_model.py), must reach.
    """

    encoder: str  # the sentence encoder it was trained on; must be the one newsmon ships
    thresholds: dict[str, float]
    weights: dict[str, tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    # Where its messages go, which identifies the endpoint (its health, whether it is
    # disabled): a webhook's URL; `telegram:<chat_id>` or `mailto:<to>,...` for the others.
    url: str
    topics: frozenset[str]
    secrets: tuple[str, ...]  # each "whsec_" + base64; every webhook delivery is signed with each
    format: Format = Format.STANDARD
    chat_id: str = ""  # Telegram's: the chat the bot posts to
    bot_token: str = field(default="", repr=False)  # Telegram's, from the environment
    to: tuple[str, ...] = ()  # email's recipients
    # Filters beyond topics (workers/pipeline/match.py), each optional: only entries of these
    # feeds (named in `feeds`, or carrying one of its `tags`: resolved when the config is
    # read; empty: every feed), that mention any of `keywords`, and none of `exclude_keywords`.
    feeds: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    # One message every this many minutes listing the new stories since the last (0: one
    # message per story); workers/delivery/digests.py.
    digest_minutes: int = 0
    # The feed's past (Entry.backfilled) published within this many hours is alerted too;
    # 0: none of it. An entry without a date counts as within.
    backfill_hours: float = 0.0
    # Secrets replaced by a rotation, each with the unix time it stops signing: a receiver
    # still verifying with the old one keeps working until then.
    retiring: tuple[tuple[str, float], ...] = ()
    # The feed filters as written, before `tags` were resolved into `feeds`: what the API
    # shows back, so a subscription reads as it was made.
    feed_names: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The secrets a delivery made at `now` is signed with."""
        return self.secrets + tuple(secret for secret, until in self.retiring if now < until)

    def matching_topics(self, entry_topics: tuple[str, ...]) -> tuple[str, ...] | None:
        """The entry's topics this subscription wants; None when it wants none of them."""
        if ALL_TOPICS in self.topics:
            return entry_topics
        matched = tuple(t for t in entry_topics if t in self.topics)
        return matched or None

    def wants_past(self, entry: Entry, now: datetime) -> bool:
        """Whether this subscription is alerted to `entry`, an item of its feed's past."""
        if not self.backfill_hours:
            return False
        return entry.published is None or now - entry.published <= timedelta(
            hours=self.backfill_hours
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One item of a feed. The poller fills the first block, the workers the second.
    Built by keyword only: its many string fields are too easy to swap by position."""

    id: str
    feed_name: str
    feed_url: str
    key: str  # what identifies the item inside its feed: guid, else link, else a content hash
    title: str
    link: str
    summary: str
    published: datetime | None = None
    # Set by the poller when the item was edited in place (same key, new title or summary):
    # a digest of the new version. The entry then updates its story instead of starting one.
    revision: str = ""
    # When the poller got the document the entry came in (fetched or pushed): the start of
    # the fetch-to-delivery latency. None in documents queued by an older newsmon.
    fetched: datetime | None = None
    # Set by the poller for an item of the feed's past (its first document, or published
    # longer ago than [alerts] max_age_hours): recorded for dedupe, never classified by the
    # model nor alerted, except to subscriptions that ask for the past (backfill_hours).
    backfilled: bool = False
    # Filled by the workers.
    text: str = ""
    story_id: str = ""
    topics: tuple[str, ...] = field(default=())

    @property
    def starts_story(self) -> bool:
        """True for the first entry of its story (story ids are "st_" + that entry's id)."""
        return self.story_id == f"st_{self.id}"

    @staticmethod
    def make_id(feed_name: str, key: str) -> str:
        """A stable id: the same item of the same feed always gets the same id."""
        return hashlib.blake2b(f"{feed_name}\0{key}".encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One message to one subscription about one entry; `id` is its `webhook-id` on every try.
    Built by keyword only, as Entry is."""

    id: str
    subscription_id: str
    topics: tuple[str, ...]
    entry: Entry
    created: datetime
    test: bool = False  # a sample sent on request, to check the receiver end to end
    # A digest (digest_minutes) is one message listing the alerts of many stories; its
    # `entry` is its first story's, so logs and dead letters name one.
    stories: tuple[Alert, ...] = ()

    @property
    def type(self) -> str:
        """The webhook body's `type`: an entry's first alert, the update of an edited one, a
        digest, or a test message."""
        if self.test:
            return "message.test"
        if self.stories:
            return "digest.created"
        return "alert.updated" if self.entry.revision else "alert.created"

    @staticmethod
    def make_id(entry_id: str, subscription_id: str, revision: str = "") -> str:
        # Derived, not random: a job that runs twice re-sends under the same webhook-id,
        # so receivers can drop the repeat. Each revision of an entry is a message of its own.
        source = f"{entry_id}\0{subscription_id}" + (f"\0{revision}" if revision else "")
        return "msg_" + hashlib.blake2b(source.encode(), digest_size=12).hexdigest()
