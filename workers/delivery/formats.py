"""The body of a message in each format a subscription may ask for (`format = ...`).

"standard" is newsmon's own Standard Webhooks JSON. "slack", "discord" and "teams" are what
each service's incoming webhook accepts: Slack `text` + `blocks` (mrkdwn), Discord `content`
+ `embeds`, Teams a connector MessageCard. Each shows the title (linked), the outlet and the
topics. Feed text is untrusted: it is escaped for each service's markup, stripped of control
characters and cut to the service's limits, and Discord is told to ping nobody.

Every function here is pure: the same alert gives the same bytes, on every retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.core.models import Alert, Entry, Format
from monitor.core.redact import redact_url

# The services' documented limits (characters), with room to spare where they count bytes.
SLACK_TEXT = 3000  # a section block's text; also kept for the notification `text`
SLACK_ABOUT = 200  # what a story's linked title leaves at least for its outlet and topics
SLACK_BLOCKS = 50
SLACK_ALL_BLOCKS = 10_000  # all blocks' text as sent; Slack refuses ~13k (msg_blocks_too_long)
DISCORD_CONTENT = 2000
DISCORD_TITLE = 256
DISCORD_DESCRIPTION = 4096
DISCORD_FIELD = 1024
DISCORD_TOTAL = 6000  # all of an embed's text together
TEAMS_TEXT = 2000  # a MessageCard holds ~28 KB in all
TEAMS_SECTIONS = 10
TEAMS_BYTES = 24 * 1024  # under the 28 KB a connector card may hold
ELLIPSIS = "…"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
DISCORD_MARKUP = re.compile(r"([\\*_~`|>#\-\[\]()<@:])")
TEAMS_MARKUP = re.compile(r"([\\*_~`#\[\]()<>])")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _plain(text: str) -> str:
    """One line of text: control characters and line breaks become spaces."""
    return " ".join(CONTROL.sub(" ", text).split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _cut_escaped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """`text` escaped and at most `limit` long, never cut inside an escape."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    text = text[:limit]  # escaping never shortens
    while len(escaped := escape(text)) > limit - 1:
        # An escape is at most 5 characters for 1 ("&amp;"): drop a fifth of the excess.
        text = text[: len(text) - max((len(escaped) - limit + 1) // 5, 1)]
    return escaped + ELLIPSIS


def _linkable(link: str) -> bool:
    """A link worth showing as one: http(s), one line, of a sane length."""
    return link.startswith(("http://", "https://")) and len(link) <= 2000 and _plain(link) == link


def _title(entry: Entry) -> str:
    """What names a story: its title, else its link, as one line."""
    return _plain(entry.title) or _plain(entry.link) or "(no title)"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _stories(alert: Alert) -> tuple[Alert, ...]:
    """The stories a message tells: a digest's, or the alert's own."""
    return alert.stories or (alert,)


def _heading(alert: Alert) -> str:
    if alert.stories:
        return f"newsmon digest: {len(alert.stories)} new stories"
    return "newsmon: story updated" if alert.type == "alert.updated" else "newsmon"


# Standard Webhooks: newsmon's own JSON.


def _entry_data(alert: Alert) -> dict[str, Any]:
    """An alert's `data` (a digest's story's, a test message's): the one place a body names
    the feed, so its URL is redacted here; a feed's credentials are the operator's, never
    the subscriber's."""
    entry = alert.entry
    return {
        "alert_id": alert.id,
        "subscription_id": alert.subscription_id,
        "topics": list(alert.topics),
        "story_id": entry.story_id,
        "entry": {
            "id": entry.id,
            "title": entry.title,
            "link": entry.link,
            "summary": entry.summary,
            "published": _iso(entry.published),
            "feed": {"name": entry.feed_name, "url": redact_url(entry.feed_url)},
        },
    }


def standard(alert: Alert) -> bytes:
    if alert.stories:
        data: dict[str, Any] = {
            "digest_id": alert.id,
            "subscription_id": alert.subscription_id,
            "stories": [_entry_data(story) for story in alert.stories],
        }
    else:
        data = _entry_data(alert)
    return _json({"type": alert.type, "timestamp": _iso(alert.created), "data": data})


# Slack: mrkdwn, where &, < and > are markup (<!channel> would ping a whole channel).


def slack_escape(text: str) -> str:
    return _plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_line(story: Alert) -> str:
    """A story's section text, at most SLACK_TEXT long: its title, linked, then its outlet
    and topics. Only plain text is cut: a link cut short breaks the block and loses its
    title, so a link too long to fit (an escaped `&` is 5 characters) goes, its title stays."""
    entry = story.entry
    title = _cut_escaped(_title(entry), 300, slack_escape)
    # A link's target is escaped too: Slack reads `|` and `>` in it as the link's end.
    target = slack_escape(entry.link).replace("|", "%7C")
    linked = f"*<{target}|{title}>*"
    if not _linkable(entry.link) or len(linked) > SLACK_TEXT - SLACK_ABOUT:
        linked = title
    about = f"{entry.feed_name} · {', '.join(story.topics) or 'no topic'}"
    return f"{linked}\n{_cut_escaped(about, SLACK_TEXT - len(linked) - 1, slack_escape)}"


def _json_length(text: str) -> int:
    """A text's length as sent: JSON writes a backslash or a quote as two characters."""
    return len(json.dumps(text, ensure_ascii=False))


def slack(alert: Alert) -> bytes:
    stories = _stories(alert)
    lines = [_slack_line(story) for story in stories]
    shown: list[str] = []
    for line in lines:  # within the block count, and the size Slack takes for all of them
        size = sum(map(_json_length, shown)) + _json_length(line)
        if len(shown) == SLACK_BLOCKS - 1 or size > SLACK_ALL_BLOCKS:
            break
        shown.append(line)
    # A line is at most SLACK_TEXT, under SLACK_ALL_BLOCKS even with JSON doubling it.
    shown = shown or lines[:1]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": line}} for line in shown
    ]
    if len(lines) > len(shown):
        more = f"and {len(lines) - len(shown)} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    text = _cut_escaped(f"{_heading(alert)}: {_title(stories[0].entry)}", SLACK_TEXT, slack_escape)
    return _json({"text": text, "blocks": blocks})


# Discord: markdown in content and descriptions; mentions are never parsed.


def discord_escape(text: str) -> str:
    return DISCORD_MARKUP.sub(r"\\\1", _plain(text))


def _field(text: str) -> str:
    return _cut_escaped(_plain(text) or "-", DISCORD_FIELD, discord_escape)


def _embed_chars(embed: dict[str, Any]) -> int:
    """What Discord counts toward an embed's 6000 characters."""
    fields = sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    return len(embed["title"]) + len(embed.get("description", "")) + fields


def _discord_embed(story: Alert) -> dict[str, Any]:
    entry = story.entry
    embed: dict[str, Any] = {
        # A title is shown as it is, not as markdown.
        "title": _cut(_title(entry), DISCORD_TITLE),
        "fields": [
            {"name": "Outlet", "value": _field(entry.feed_name), "inline": True},
            {"name": "Topics", "value": _field(", ".join(story.topics) or "none"), "inline": True},
        ],
    }
    if _linkable(entry.link):
        embed["url"] = entry.link
    if entry.summary:
        budget = min(DISCORD_DESCRIPTION, DISCORD_TOTAL - _embed_chars(embed))
        embed["description"] = _cut_escaped(entry.summary, budget, discord_escape)
    if entry.published:
        embed["timestamp"] = _iso(entry.published)
    return embed


def discord(alert: Alert) -> bytes:
    stories = _stories(alert)
    # One embed a story, up to 10 and 6000 characters in all; a longer digest is a list.
    embeds = [_discord_embed(story) for story in stories] if len(stories) <= 10 else []
    if sum(_embed_chars(e) for e in embeds) > DISCORD_TOTAL:
        embeds = []
    content = discord_escape(_heading(alert))
    if not embeds:
        lines = [
            f"{discord_escape(_title(s.entry))} ({discord_escape(s.entry.feed_name)})"
            for s in stories
        ]
        content = _cut("\n".join([content, *lines]), DISCORD_CONTENT)
    return _json({"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}})


# Teams: a connector MessageCard, whose text fields read markdown.


def teams_escape(text: str) -> str:
    return TEAMS_MARKUP.sub(r"\\\1", _plain(text))


def _teams_section(story: Alert) -> dict[str, Any]:
    entry = story.entry
    section: dict[str, Any] = {
        "activityTitle": _cut_escaped(_title(entry), 400, teams_escape),
        "facts": [
            {"name": "Outlet", "value": _cut_escaped(entry.feed_name, 200, teams_escape)},
            {"name": "Topics", "value": teams_escape(", ".join(story.topics) or "none")},
        ],
    }
    if entry.summary:
        section["text"] = _cut_escaped(entry.summary, TEAMS_TEXT, teams_escape)
    if _linkable(entry.link):
        section["potentialAction"] = [
            {"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": entry.link}]}
        ]
    return section


def teams(alert: Alert) -> bytes:
    stories = _stories(alert)
    first = stories[0].entry
    sections = [_teams_section(story) for story in stories[:TEAMS_SECTIONS]]
    card = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": _cut(f"{_heading(alert)}: {_title(first)}", 200),
        "title": teams_escape(_heading(alert)),
        "sections": sections,
    }
    # Within Teams' size limit: summaries go first, then the last stories.
    while len(_json(card)) > TEAMS_BYTES and any("text" in s for s in sections):
        for section in sections:
            section.pop("text", None)
    while len(_json(card)) > TEAMS_BYTES and len(sections) > 1:
        sections.pop()
    if len(stories) > len(sections):
        sections.append({"text": f"and {len(stories) - len(sections)} more"})
    return _json(card)


BODIES: dict[Format, Callable[[Alert], bytes]] = {
    Format.STANDARD: standard,
    Format.SLACK: slack,
    Format.DISCORD: discord,
    Format.TEAMS: teams,
}


def body(alert: Alert, format_: Format) -> bytes:
    """The bytes POSTed for `alert` to a subscription of this format."""
    return BODIES[format_](alert)
