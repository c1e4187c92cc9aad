"""A subscription, declared once: the keys of a [[subscriptions]] table of
subscriptions.toml, which the HTTP API takes too (but `secret_env`) and which API
subscriptions are stored as. Its check serves all three; its JSON Schema is the API's."""

from __future__ import annotations

from typing import Annotated, Any, Required

from pydantic import ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

from monitor.core.config.channels import addresses, chat_id, read_channel, secret_values
from monitor.core.config.declared import Checked, check_table
from monitor.core.config.reading import NUMBER, Check, Problem, Reader, shown
from monitor.core.config.values import (
    NAME_PATTERN,
    Between,
    http_url,
    name,
    phrases,
    strings,
    table_key,
)
from monitor.core.models import ALL_TOPICS, Feed, Format, Subscription

DIGEST_MINUTES = Between(1, 24 * 60, " minutes (a day); leave it out for one message a story")
BACKFILL_HOURS = Between(0, 365 * 24, " hours (a year); 0 sends none of the feeds' past")
SMTP_NEEDED = "'email' needs a mail server: set [smtp] host and from in newsmon.toml"
SECRET_PATTERN = "^whsec_[A-Za-z0-9+/=]+$"


def _topics(value: list[Any]) -> str | None:
    if value == []:
        return 'is empty; list topics, or ["*"] for every entry'
    return strings(value)


def _listing(check: Check) -> Check:
    """`check` for an optional list that, when given, lists something: an empty one is a slip."""

    def listed(value: list[Any]) -> str | None:
        return "is empty; list at least one, or remove the key" if value == [] else check(value)

    return listed


def _format_name(value: str) -> str | None:
    if value in set(Format):
        return None
    names = ", ".join(repr(f.value) for f in Format)
    return f"unknown format {shown(value)}; write one of {names} (default 'standard')"


Name = Annotated[str, Field(pattern=f"^{NAME_PATTERN.pattern}$"), Checked(str, name)]
Topics = Annotated[
    list[str],
    Field(min_length=1, description='topics of topics.toml, or ["*"] for every entry'),
    Checked(list, _topics),
]
Secret = Annotated[str, Field(pattern=SECRET_PATTERN)]
FormatName = Annotated[
    Format,
    Field(strict=False, description="the body's shape; left out: standard"),
    Checked(str, _format_name),
]
FeedNames = Annotated[
    list[str],
    Field(min_length=1, description="only entries of these feeds of feeds.toml"),
    Checked(list, _listing(strings)),
]
Tags = Annotated[
    list[str],
    Field(min_length=1, description="only entries of feeds carrying one of these tags"),
    Checked(list, _listing(strings)),
]
Keywords = Annotated[
    list[str],
    Field(min_length=1, description="only entries mentioning one of these"),
    Checked(list, _listing(phrases)),
]
ExcludeKeywords = Annotated[
    list[str],
    Field(min_length=1, description="no entry mentioning one of these"),
    Checked(list, _listing(phrases)),
]
DigestMinutes = Annotated[
    int,
    Field(description="one message every this many minutes; left out: one a story"),
    Checked(int, DIGEST_MINUTES),
]
BackfillHours = Annotated[
    float,
    Field(description="alert the feeds' past published this many hours back; 0: none of it"),
    Checked(NUMBER, BACKFILL_HOURS),
]


class SubscriptionTable(TypedDict, total=False):
    """The keys of a [[subscriptions]] table of subscriptions.toml."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # a bool is no number

    id: Required[Name]
    topics: Required[Topics]
    # Where messages go: per format, only the keys it uses (config/channels.py).
    url: Annotated[
        str,
        Field(json_schema_extra={"format": "uri"}, description="a webhook format's: the URL"),
        Checked(str, http_url),
    ]
    chat_id: Annotated[
        str | int,
        Field(description="telegram's: the chat's id (a number), or @channelusername"),
        Checked((str, int), chat_id),
    ]
    to: Annotated[
        list[str],
        Field(min_length=1, description="email's: the recipients' addresses"),
        Checked(list, _listing(addresses)),
    ]
    # A webhook format's signing secret: exactly one of these two. Telegram's bot token is
    # in the variable `secret_env` names.
    secret: Annotated[
        Secret | Annotated[list[Secret], Field(min_length=1)], Checked((str, list), secret_values)
    ]
    secret_env: Annotated[
        str,
        Field(
            description="the environment variable holding the secret, or several "
            "space-separated; telegram's: holding the bot's token"
        ),
        Checked(str),
    ]
    format: FormatName
    feeds: FeedNames
    tags: Tags
    keywords: Keywords
    exclude_keywords: ExcludeKeywords
    digest_minutes: DigestMinutes
    backfill_hours: BackfillHours


SUBSCRIPTION_TABLE = TypeAdapter(SubscriptionTable)
SUBSCRIPTION_KEYS = SubscriptionTable.__required_keys__ | SubscriptionTable.__optional_keys__


def read_subscriptions(
    reader: Reader, topic_names: set[str], feeds: tuple[Feed, ...], smtp_host: str
) -> tuple[Subscription, ...]:
    """The [[subscriptions]] tables of subscriptions.toml; ids must be unique, and an email
    subscription needs newsmon.toml's [smtp] host."""
    subscriptions, seen_ids = [], set()
    tables = reader.array_of_tables("subscriptions")
    for i, table in enumerate(tables):
        where = f"{table_key('subscriptions', i, tables, 'id')}."
        subscription = _subscription(reader, table, where, topic_names, feeds, SUBSCRIPTION_KEYS)
        sub_id = table.get("id")
        if isinstance(sub_id, str):  # anything else is already a problem
            if sub_id in seen_ids:
                reader.problem(
                    f"{where}id", f"{sub_id!r} is used by another subscription; ids must be unique"
                )
                continue
            seen_ids.add(sub_id)
        if subscription and subscription.format is Format.EMAIL and not smtp_host:
            reader.problem(f"{where}format", SMTP_NEEDED)
        elif subscription:
            subscriptions.append(subscription)
    return tuple(subscriptions)


def check_subscription(
    table: dict[str, Any],
    topic_names: set[str],
    feeds: tuple[Feed, ...],
    *,
    source: str,
    keys: frozenset[str],
) -> tuple[Subscription | None, list[Problem]]:
    """One subscription table as it arrives outside subscriptions.toml (the HTTP API, Redis),
    checked exactly as a [[subscriptions]] table is, with `keys` the keys it may hold: the
    subscription, or None and every problem found (each naming the key)."""
    problems: list[Problem] = []
    reader = Reader.of(table, source, problems)
    subscription = _subscription(reader, table, "", topic_names, feeds, keys)
    return (None if problems else subscription), problems


def _subscription(
    reader: Reader,
    table: dict[str, Any],
    where: str,
    topic_names: set[str],
    feeds: tuple[Feed, ...],
    allowed: frozenset[str],
) -> Subscription | None:
    """The one check of a subscription table, wherever it comes from: each key as declared,
    then what the declaration cannot know (the topics and feeds named, the secret's source)."""
    found_before = len(reader.problems)
    reader.unknown_keys(table, set(allowed), where)
    given = {key: value for key, value in table.items() if key in allowed}
    faulty = check_table(SUBSCRIPTION_TABLE, given, reader, where)
    fine = {key: value for key, value in given.items() if key not in faulty}
    for topic in fine.get("topics", []):
        if topic != ALL_TOPICS and topic not in topic_names:
            known = ", ".join(sorted(topic_names)) or "none defined"
            reader.problem(
                f"{where}topics", f"unknown topic {shown(topic)}; known: {known}, or '*'"
            )
    filters = _filters(reader, fine, where, feeds)
    format_ = Format(fine.get("format", Format.STANDARD))
    channel = None
    if "format" not in faulty:  # else what the format needs is unknown
        channel = read_channel(reader, table, fine, where, format_, allowed)
    if channel is None or len(reader.problems) > found_before:
        return None
    return Subscription(
        fine["id"],
        channel.url,
        frozenset(fine["topics"]),
        channel.secrets,
        format=format_,
        chat_id=channel.chat_id,
        bot_token=channel.bot_token,
        to=channel.to,
        backfill_hours=float(fine.get("backfill_hours", 0)),
        digest_minutes=fine.get("digest_minutes", 0),
        **filters,
    )


def _filters(
    reader: Reader, fine: dict[str, Any], where: str, feeds: tuple[Feed, ...]
) -> dict[str, Any]:
    """`feeds` and `tags` (resolved to the feeds they name), `keywords`, `exclude_keywords`:
    the Subscription fields that narrow what it gets beyond its topics."""
    names, tags = fine.get("feeds", []), fine.get("tags", [])
    known_names = {f.name for f in feeds}
    known_tags = {t for f in feeds for t in f.tags}
    for feed_name in names:
        if feed_name not in known_names:
            reader.problem(
                f"{where}feeds",
                f"unknown feed {shown(feed_name)}; name a feed of feeds.toml "
                f"({_some(known_names)}), or remove it",
            )
    for tag in tags:
        if tag not in known_tags:
            reader.problem(
                f"{where}tags",
                f"no feed has the tag {shown(tag)}; add it to a feed's tags in feeds.toml "
                f"(tags in use: {_some(known_tags)}), or remove it",
            )
    chosen = set(names) | {f.name for f in feeds if set(f.tags) & set(tags)}
    return {
        "feeds": frozenset(chosen),
        "feed_names": frozenset(names),
        "tags": frozenset(tags),
        "keywords": tuple(fine.get("keywords", ())),
        "exclude_keywords": tuple(fine.get("exclude_keywords", ())),
    }


def _some(names: set[str], count: int = 10) -> str:
    """A few of `names`, for a problem's hint (feeds.toml may hold thousands)."""
    first = sorted(names)[:count]
    more = f", and {len(names) - count} more" if len(names) > count else ""
    return ", ".join(first) + more if first else "none"
