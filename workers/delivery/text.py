"""What every message format does to a story's text: feed text is untrusted, so it is made
one line without control characters, cut to a service's limit without breaking an escape,
and a link is shown as one only when it is a sane http(s) URL."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.core.models import Alert, Entry

ELLIPSIS = "…"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def plain(text: str) -> str:
    """One line of text: control characters and line breaks become spaces."""
    return " ".join(CONTROL.sub(" ", text).split())


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def cut_escaped(text: str, limit: int, escape: Callable[[str], str]) -> str:
    """`text` escaped and at most `limit` long, never cut inside an escape."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    text = text[:limit]  # escaping never shortens
    while len(escaped := escape(text)) > limit - 1:
        # An escape is at most 6 characters for 1 ("&quot;"): drop a sixth of the excess.
        text = text[: len(text) - max((len(escaped) - limit + 1) // 6, 1)]
    return escaped + ELLIPSIS


def linkable(link: str) -> bool:
    """A link worth showing as one: http(s), one line, of a sane length."""
    return link.startswith(("http://", "https://")) and len(link) <= 2000 and plain(link) == link


def story_title(entry: Entry) -> str:
    """What names a story: its title, else its link, as one line."""
    return plain(entry.title) or plain(entry.link) or "(no title)"


def stories(alert: Alert) -> tuple[Alert, ...]:
    """The stories a message tells: a digest's, or the alert's own."""
    return alert.stories or (alert,)


def heading(alert: Alert) -> str:
    if alert.stories:
        return f"newsmon digest: {len(alert.stories)} new stories"
    return "newsmon: story updated" if alert.type == "alert.updated" else "newsmon"


def about(story: Alert) -> str:
    """A story's outlet and topics, on one line."""
    return f"{plain(story.entry.feed_name)} · {', '.join(story.topics) or 'no topic'}"


def compact_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
