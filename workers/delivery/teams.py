"""Microsoft Teams: a connector's MessageCard (`format = "teams"`, for Office 365 connector
URLs until Microsoft retires them), or an Adaptive Card posted to a Teams Workflows webhook
(`format = "teams_workflow"`). Both read markdown in their text, escaped here, and hold
about 28 KB: summaries go first, then the last stories, to fit."""

from __future__ import annotations

import re
from typing import Any

from monitor.core.models import Alert
from workers.delivery.text import (
    compact_json,
    cut,
    cut_escaped,
    heading,
    linkable,
    plain,
    stories,
    story_title,
)

TEAMS_TEXT = 2000
TEAMS_STORIES = 10
TEAMS_BYTES = 24 * 1024  # under the 28 KB a card may hold
TEAMS_MARKUP = re.compile(r"([\\*_~`#\[\]()<>])")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def teams_escape(text: str) -> str:
    return TEAMS_MARKUP.sub(r"\\\1", plain(text))


def _teams_section(story: Alert) -> dict[str, Any]:
    entry = story.entry
    section: dict[str, Any] = {
        "activityTitle": cut_escaped(story_title(entry), 400, teams_escape),
        "facts": [
            {"name": "Outlet", "value": cut_escaped(entry.feed_name, 200, teams_escape)},
            {"name": "Topics", "value": teams_escape(", ".join(story.topics) or "none")},
        ],
    }
    if entry.summary:
        section["text"] = cut_escaped(entry.summary, TEAMS_TEXT, teams_escape)
    if linkable(entry.link):
        section["potentialAction"] = [
            {"@type": "OpenUri", "name": "Open", "targets": [{"os": "default", "uri": entry.link}]}
        ]
    return section


def message_card(alert: Alert) -> bytes:
    told = stories(alert)
    first = told[0].entry
    sections = [_teams_section(story) for story in told[:TEAMS_STORIES]]
    card = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": cut(f"{heading(alert)}: {story_title(first)}", 200),
        "title": teams_escape(heading(alert)),
        "sections": sections,
    }
    # Within Teams' size limit: summaries go first, then the last stories.
    while len(compact_json(card)) > TEAMS_BYTES and any("text" in s for s in sections):
        for section in sections:
            section.pop("text", None)
    while len(compact_json(card)) > TEAMS_BYTES and len(sections) > 1:
        sections.pop()
    if len(told) > len(sections):
        sections.append({"text": f"and {len(told) - len(sections)} more"})
    return compact_json(card)


def _adaptive_story(story: Alert) -> dict[str, Any]:
    entry = story.entry
    items: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": cut_escaped(story_title(entry), 400, teams_escape),
            "weight": "Bolder",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Outlet", "value": cut_escaped(entry.feed_name, 200, teams_escape)},
                {"title": "Topics", "value": teams_escape(", ".join(story.topics) or "none")},
            ],
        },
    ]
    if summary := cut_escaped(entry.summary, TEAMS_TEXT, teams_escape):
        items.append({"type": "TextBlock", "text": summary, "wrap": True, "isSubtle": True})
    if linkable(entry.link):
        open_link = {"type": "Action.OpenUrl", "title": "Open", "url": entry.link}
        items.append({"type": "ActionSet", "actions": [open_link]})
    return {"type": "Container", "separator": True, "items": items}


def adaptive_card(alert: Alert) -> bytes:
    """A Workflows webhook's message: one Adaptive Card (1.4) attached, a container a story."""
    told = stories(alert)
    containers = [_adaptive_story(story) for story in told[:TEAMS_STORIES]]
    title = {"type": "TextBlock", "text": teams_escape(heading(alert)), "size": "Medium"}
    body: list[dict[str, Any]] = [{**title, "weight": "Bolder", "wrap": True}, *containers]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    message = {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }
    while len(compact_json(message)) > TEAMS_BYTES and any(_drop_summary(c) for c in containers):
        pass
    while len(compact_json(message)) > TEAMS_BYTES and len(containers) > 1:
        body.remove(containers.pop())
    if len(told) > len(containers):
        more = f"and {len(told) - len(containers)} more"
        body.append({"type": "TextBlock", "text": more, "wrap": True, "isSubtle": True})
    return compact_json(message)


def _drop_summary(container: dict[str, Any]) -> bool:
    """Take the container's summary out; False when it had none."""
    items = container["items"]
    summaries = [item for item in items[2:] if item["type"] == "TextBlock"]
    for summary in summaries:
        items.remove(summary)
    return bool(summaries)
