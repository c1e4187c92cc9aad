"""The bodies `/api/v1` takes and answers, declared once: the handlers build them, and the
OpenAPI document (monitor/ops/openapi.py) is written from them. A subscription's keys are
those of subscriptions.toml's declaration (monitor/core/config/subscription.py)."""

from __future__ import annotations

from typing import Annotated, Literal, Required

from pydantic import Field, WithJsonSchema
from typing_extensions import TypedDict

from monitor.core.config.subscription import (
    BackfillHours,
    DigestMinutes,
    ExcludeKeywords,
    FeedNames,
    FormatName,
    Keywords,
    Name,
    Secret,
    Tags,
    Topics,
)

Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class Subscription(TypedDict, total=False):
    """A subscription as the API shows it: as it was written (tags as tags), without its
    secrets, and the options not set left out, as the table leaves them out."""

    id: Required[Name]
    url: Annotated[
        str,
        Field(
            description="a webhook format's, with any credential masked (***): user-info, "
            "query values, a Slack, Discord or Teams token"
        ),
    ]
    url_masked: Annotated[bool, Field(description="whether `url` had one masked")]
    chat_id: Annotated[str, Field(description="telegram's chat")]
    to: Annotated[list[str], Field(description="email's recipients")]
    topics: Required[Topics]
    format: Required[FormatName]
    feeds: FeedNames
    tags: Tags
    keywords: Keywords
    exclude_keywords: ExcludeKeywords
    digest_minutes: DigestMinutes
    backfill_hours: Required[BackfillHours]
    source: Required[Literal["api", "subscriptions.toml"]]
    created: Time
    updated: Time
    secret: Annotated[Secret, Field(description="only in the answer to a create that made it")]


class SubscriptionList(TypedDict):
    data: list[Subscription]


class Rotate(TypedDict, total=False):
    """Optional: the new secret; without it newsmon makes one."""

    secret: Secret


class Rotated(TypedDict):
    secret: Secret
    old_secrets_sign_until: Time


class Empty(TypedDict, total=False):
    """Nothing in it is read."""


class TestSent(TypedDict):
    message_id: str
    type: Literal["message.test"]


class Attempt(TypedDict):
    attempt: int
    at: Time
    status: Literal["delivered", "retry", "failed", "dead"]
    http_status: int | None
    duration_ms: float
    error: str | None


class Message(TypedDict):
    id: Annotated[str, Field(description="the webhook-id")]
    subscription_id: str
    type: str
    created: Time
    entry_id: str
    story_id: str
    title: str
    attempts: list[Attempt]


class MessageList(TypedDict):
    data: list[Message]


class Replay(TypedDict, total=False):
    messages: Annotated[
        Literal["dead", "all"],
        Field(description="dead letters (the default), or every message first sent since `since`"),
    ]
    since: Annotated[
        str, Field(description="an ISO time, or a duration ago: 30m, 2h, 7d; required for all")
    ]


class Replayed(TypedDict):
    queued: int


class FieldProblem(TypedDict):
    field: str
    message: str


class Error(TypedDict, total=False):
    error: Required[str]
    field: Annotated[str, Field(description="the body key or parameter at fault")]
    problems: list[FieldProblem]
