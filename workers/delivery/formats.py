"""The body of a message in each format a subscription may ask for (`format = ...`).

"standard" is newsmon's own Standard Webhooks JSON. "slack", "discord", "teams" and
"teams_workflow" are what each service's incoming webhook accepts: Slack `text` + `blocks`
(mrkdwn), Discord `content` + `embeds`, Teams a connector MessageCard or, for a Workflows
webhook, an Adaptive Card (teams.py). Each shows the title (linked), the outlet and the
topics. Feed text is untrusted: it is escaped for each service's markup, stripped of control
characters and cut to the service's limits, and Discord is told to ping nobody.

Every function here is pure: the same alert gives the same bytes, on every retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from monitor.core.models import Alert, Format
from monitor.core.redact import redact_url
from workers.delivery import teams
from workers.delivery.text import (
    compact_json,
    cut,
    cut_escaped,
    heading,
    iso,
    linkable,
    plain,
    stories,
    story_title,
)

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
DISCORD_MARKUP = re.compile(r"([\\*_~`|>#\-\[\]()<@:])")


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
            "published": iso(entry.published),
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
    return compact_json({"type": alert.type, "timestamp": iso(alert.created), "data": data})


# Slack: mrkdwn, where &, < and > are markup (<!channel> would ping a whole channel).


def slack_escape(text: str) -> str:
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_line(story: Alert) -> str:
    """A story's section text, at most SLACK_TEXT long: its title, linked, then its outlet
    and topics. Only plain text is cut: a link cut short breaks the block and loses its
    title, so a link too long to fit (an escaped `&` is 5 characters) goes, its title stays."""
    entry = story.entry
    title = cut_escaped(story_title(entry), 300, slack_escape)
    # A link's target is escaped too: Slack reads `|` and `>` in it as the link's end.
    target = slack_escape(entry.link).replace("|", "%7C")
    linked = f"*<{target}|{title}>*"
    if not linkable(entry.link) or len(linked) > SLACK_TEXT - SLACK_ABOUT:
        linked = title
    about = f"{entry.feed_name} · {', '.join(story.topics) or 'no topic'}"
    return f"{linked}\n{cut_escaped(about, SLACK_TEXT - len(linked) - 1, slack_escape)}"


def _json_length(text: str) -> int:
    """A text's length as sent: JSON writes a backslash or a quote as two characters."""
    return len(json.dumps(text, ensure_ascii=False))


def slack(alert: Alert) -> bytes:
    told = stories(alert)
    lines = [_slack_line(story) for story in told]
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
    text = cut_escaped(f"{heading(alert)}: {story_title(told[0].entry)}", SLACK_TEXT, slack_escape)
    return compact_json({"text": text, "blocks": blocks})


# Discord: markdown in content and descriptions; mentions are never parsed.


def discord_escape(text: str) -> str:
    return DISCORD_MARKUP.sub(r"\\\1", plain(text))


def _field(text: str) -> str:
    return cut_escaped(plain(text) or "-", DISCORD_FIELD, discord_escape)


def _embed_chars(embed: dict[str, Any]) -> int:
    """What Discord counts toward an embed's 6000 characters."""
    fields = sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    return len(embed["title"]) + len(embed.get("description", "")) + fields


def _discord_embed(story: Alert) -> dict[str, Any]:
    entry = story.entry
    embed: dict[str, Any] = {
        # A title is shown as it is, not as markdown.
        "title": cut(story_title(entry), DISCORD_TITLE),
        "fields": [
            {"name": "Outlet", "value": _field(entry.feed_name), "inline": True},
            {"name": "Topics", "value": _field(", ".join(story.topics) or "none"), "inline": True},
        ],
    }
    if linkable(entry.link):
        embed["url"] = entry.link
    if entry.summary:
        budget = min(DISCORD_DESCRIPTION, DISCORD_TOTAL - _embed_chars(embed))
        embed["description"] = cut_escaped(entry.summary, budget, discord_escape)
    if entry.published:
        embed["timestamp"] = iso(entry.published)
    return embed


def discord(alert: Alert) -> bytes:
    told = stories(alert)
    # One embed a story, up to 10 and 6000 characters in all; a longer digest is a list.
    embeds = [_discord_embed(story) for story in told] if len(told) <= 10 else []
    if sum(_embed_chars(e) for e in embeds) > DISCORD_TOTAL:
        embeds = []
    content = discord_escape(heading(alert))
    if not embeds:
        lines = [
            f"{discord_escape(story_title(s.entry))} ({discord_escape(s.entry.feed_name)})"
            for s in told
        ]
        content = cut("\n".join([content, *lines]), DISCORD_CONTENT)
    return compact_json({"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}})


BODIES: dict[Format, Callable[[Alert], bytes]] = {
    Format.STANDARD: standard,
    Format.SLACK: slack,
    Format.DISCORD: discord,
    Format.TEAMS: teams.message_card,
    Format.TEAMS_WORKFLOW: teams.adaptive_card,
}


def body(alert: Alert, format_: Format) -> bytes:
    """The bytes POSTed for `alert` to a subscription of this format."""
    return BODIES[format_](alert)
