"""The data types passed between the steps of the flow, and nothing else.

fetch -> parse -> new-entry check -> enqueue -> normalise -> dedupe -> classify -> match -> deliver:
the poller produces `Entry` objects from a `Feed`, the workers enrich the same `Entry`
(`text`, `story_id`, `topics`) and turn it into one `Alert` per matching `Subscription`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

ALL_TOPICS = "*"


@dataclass(frozen=True, slots=True)
class Feed:
    name: str
    url: str
    interval_seconds: int
    tags: tuple[str, ...] = ()
    adaptive: bool = False  # poll as often as the feed updates, within the configured bounds


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic and how it is recognised: weighted terms, ignored contexts, a threshold."""

    name: str
    threshold: float
    terms: dict[str, float]
    ignore: tuple[str, ...] = ()


# The sentence encoder a topic model reads (workers/encoder.py), and its vectors' length.
# Here, not there, so that checking a config needs no inference runtime.
ENCODER_ID = "all-minilm-l6-v2-int8"
DIMENSIONS = 384


@dataclass(frozen=True, slots=True)
class TopicModel:
    """Topics learned from labelled lines (`topic_model.json`), read beside the rules.

    Per topic, a logistic model over the entry's sentence vector: one weight per dimension,
    then the bias. An entry gets a topic when the model is at least `threshold` sure.
    """

    encoder: str  # the sentence encoder it was trained on; must be the one newsmon ships
    threshold: float
    weights: dict[str, tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    url: str
    topics: frozenset[str]
    secrets: tuple[str, ...]  # each "whsec_" + base64; every delivery is signed with each
    # Secrets replaced by a rotation, each with the unix time it stops signing: a receiver
    # still verifying with the old one keeps working until then.
    retiring: tuple[tuple[str, float], ...] = ()

    def signing_secrets(self, now: float) -> tuple[str, ...]:
        """The secrets a delivery made at `now` is signed with."""
        return self.secrets + tuple(secret for secret, until in self.retiring if now < until)

    def matching_topics(self, entry_topics: tuple[str, ...]) -> tuple[str, ...] | None:
        """The entry's topics this subscription wants; None when it wants none of them."""
        if ALL_TOPICS in self.topics:
            return entry_topics
        matched = tuple(t for t in entry_topics if t in self.topics)
        return matched or None


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed. The poller fills the first block, the workers the second."""

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


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to one subscription about one entry; `id` is its `webhook-id` on every try."""

    id: str
    subscription_id: str
    topics: tuple[str, ...]
    entry: Entry
    created: datetime
    test: bool = False  # a sample sent on request, to check the receiver end to end

    @property
    def type(self) -> str:
        """The webhook body's `type`: an entry's first alert, the update of an edited one, or
        a test message."""
        if self.test:
            return "message.test"
        return "alert.updated" if self.entry.revision else "alert.created"

    @staticmethod
    def make_id(entry_id: str, subscription_id: str, revision: str = "") -> str:
        # Derived, not random: a job that runs twice re-sends under the same webhook-id,
        # so receivers can drop the repeat. Each revision of an entry is a message of its own.
        source = f"{entry_id}\0{subscription_id}" + (f"\0{revision}" if revision else "")
        return "msg_" + hashlib.blake2b(source.encode(), digest_size=12).hexdigest()
