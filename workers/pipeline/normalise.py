"""Normalise step: plain text out of whatever HTML and clutter a feed put around an item.

Tags and entities go, whitespace collapses, and boilerplate sentences (donation appeals,
"Read more" tails, comment-forum invitations) are dropped, so that what reaches dedupe and
classify, and the receiver's `summary`, is the item's own text.
"""

from __future__ import annotations

import dataclasses
import html
import re

from monitor.core.models import Entry

# A tag opens with a name ("<b", "</p", "<!doctype"): a "<" before a space or a digit is
# text ("turnout < 50%", "a <48-hour> stoppage"), as in a plain-text headline it often is.
TAG = re.compile(
    r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[/!?]?[a-z][^<>]*>", re.IGNORECASE | re.DOTALL
)
BLOCK_TAG = re.compile(r"</?(p|div|br|li|h[1-6]|blockquote|tr)\b[^>]*>", re.IGNORECASE)
WHITESPACE = re.compile(r"\s+")
SENTENCE_END = re.compile("(?<=[.!?:])\\s+(?=[\"'\u201c\u2018(]?[A-Z0-9])")

# A sentence starting with one of these is clutter, not news. Matched case-insensitively.
BOILERPLATE = re.compile(
    r"^(?:read more\b|read the full\b|click here\b|sign up\b|subscribe\b|join our\b|"
    r"your support\b|support (?:our|independent) journalism\b|follow (?:us|our live)\b|"
    r"share this\b|advertisement\b|related:|watch:|listen:|the post .* appeared first on\b|"
    r"continue reading\b|this story (?:is|has been) (?:developing|updated)\b)",
    re.IGNORECASE,
)


def plain_text(markup: str) -> str:
    """HTML fragment -> text: tags removed (block tags become breaks), entities decoded."""
    text = BLOCK_TAG.sub("\n", markup)
    text = TAG.sub(" ", text)
    return html.unescape(text)


def drop_boilerplate(text: str) -> str:
    kept = []
    for line in text.splitlines():
        sentences = SENTENCE_END.split(WHITESPACE.sub(" ", line).strip())
        kept.extend(s for s in sentences if s and not BOILERPLATE.match(s))
    return " ".join(kept)


def normalise(entry: Entry) -> Entry:
    """The entry with a plain-text title and summary, and `text` = both, for later steps."""
    title = WHITESPACE.sub(" ", plain_text(entry.title)).strip()
    summary = drop_boilerplate(plain_text(entry.summary))
    # A summary that only repeats the headline adds nothing.
    if summary.rstrip(".") == title.rstrip("."):
        summary = ""
    text = f"{title}\n{summary}" if title and summary else title or summary
    return dataclasses.replace(entry, title=title, summary=summary, text=text)
