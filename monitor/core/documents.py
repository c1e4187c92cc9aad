"""What newsmon keeps in Redis about entries and alerts: versioned JSON documents.

Queued jobs and dead letters outlive the code that wrote them, so they are plain JSON with a
version (`"v"`), never pickles, which record module paths and field order. Each type has one
writer and one reader; a reader takes every version up to its own, upgrading older ones step
by step (`UPGRADES`), and refuses a newer one with a clear error instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitor.core.models import Alert, Entry

VERSION = 1
Document = dict[str, Any]

# UPGRADES[kind][v] turns a version-v document into version v + 1. Add one when a field is
# renamed or its meaning changes; a field added with a default needs none.
UPGRADES: dict[str, dict[int, Callable[[Document], Document]]] = {"entry": {}, "alert": {}}


class DocumentError(ValueError):
    """A stored document this version of newsmon cannot read."""


def entry_document(entry: Entry) -> Document:
    return {
        "v": VERSION,
        "id": entry.id,
        "feed_name": entry.feed_name,
        "feed_url": entry.feed_url,
        "key": entry.key,
        "title": entry.title,
        "link": entry.link,
        "summary": entry.summary,
        "published": entry.published.isoformat() if entry.published else None,
        "revision": entry.revision,
        "fetched": entry.fetched.isoformat() if entry.fetched else None,
        "backfilled": entry.backfilled,
        "text": entry.text,
        "story_id": entry.story_id,
        "topics": list(entry.topics),
    }


def read_entry(document: Document) -> Entry:
    doc = _current(document, "entry")
    published, fetched = doc.get("published"), doc.get("fetched")
    return Entry(
        id=doc["id"],
        feed_name=doc["feed_name"],
        feed_url=doc["feed_url"],
        key=doc["key"],
        title=doc["title"],
        link=doc["link"],
        summary=doc["summary"],
        published=datetime.fromisoformat(published) if published else None,
        revision=doc.get("revision", ""),
        fetched=datetime.fromisoformat(fetched) if fetched else None,
        backfilled=doc.get("backfilled", False),
        text=doc.get("text", ""),
        story_id=doc.get("story_id", ""),
        topics=tuple(doc.get("topics", ())),
    )


def alert_document(alert: Alert) -> Document:
    return {
        "v": VERSION,
        "id": alert.id,
        "subscription_id": alert.subscription_id,
        "topics": list(alert.topics),
        "entry": entry_document(alert.entry),
        "created": alert.created.isoformat(),
        "test": alert.test,
        "stories": [alert_document(story) for story in alert.stories],
    }


def read_alert(document: Document) -> Alert:
    doc = _current(document, "alert")
    return Alert(
        id=doc["id"],
        subscription_id=doc["subscription_id"],
        topics=tuple(doc["topics"]),
        entry=read_entry(doc["entry"]),
        created=datetime.fromisoformat(doc["created"]),
        test=doc.get("test", False),
        stories=tuple(read_alert(story) for story in doc.get("stories", ())),
    )


def _current(document: Document, kind: str) -> Document:
    """The document brought up to VERSION; DocumentError when it cannot be."""
    version = document.get("v") if isinstance(document, dict) else None
    if not isinstance(version, int) or version < 1:
        raise DocumentError(f"not a versioned {kind} document: {str(document)[:80]}")
    if version > VERSION:
        raise DocumentError(
            f"{kind} document of version {version}, written by a newer newsmon "
            f"(this one reads up to {VERSION}): upgrade every process"
        )
    for step in range(version, VERSION):
        document = UPGRADES[kind].get(step, dict)(document)
    return document
