"""What a feed document is (RSS, Atom or JSON Feed) and its title, read as the poller's
parser reads it (monitor/poller/parse.py): JSON Feed by its content type or its opening
brace, the rest by feedparser."""

from __future__ import annotations

import json

import feedparser

KINDS = {"rss": "RSS", "atom": "Atom", "cdf": "CDF"}  # feedparser's versions: rss20, atom10, ...


def describe(body: bytes, content_type: str) -> tuple[str, str]:
    """The document's kind and title, for a body the parser took as a feed."""
    stripped = body.lstrip()
    if "json" in content_type or stripped.startswith(b"{"):
        title = json.loads(stripped).get("title")
        return "JSON Feed", " ".join(str(title or "").split())
    parsed = feedparser.parse(
        body, response_headers={"content-type": content_type or "application/xml"}
    )
    version = parsed.version or ""
    kind = next((name for prefix, name in KINDS.items() if version.startswith(prefix)), version)
    return kind or "unknown", " ".join(str(parsed.feed.get("title") or "").split())
