"""Live blog pages: the posts of the schema.org LiveBlogPosting an HTML page carries in its
JSON-LD (`<script type="application/ld+json">`), one post per `liveBlogUpdate`.

News sites publish a live blog as a page, not a feed; its JSON-LD lists the posts for search
engines. Only that is read: the page's own text (appeals, comment prompts, cards linking to
other articles) never becomes a post. The LiveBlogPosting may stand alone, sit in a list or
an `@graph` beside the page's other nodes, or be nested in one (a WebPage's mainEntity).

The page is cut into script elements by a scan of its own, and html.parser reads only each
script's start tag: on the Python newsmon runs on, html.parser over a whole hostile page
takes quadratic time (hundreds of `<a` without `>`: minutes; CVE-2025-6069) and can raise
AssertionError (`<![<![`). The scan is linear: every step moves past what it looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

LIVE_BLOG = "LiveBlogPosting"
JSON_LD = "application/ld+json"
# A comment (whose scripts are not run), or a script's start tag up to its attributes.
COMMENT_OR_SCRIPT = re.compile(r"<!--|<script(?=[\s/>])", re.IGNORECASE)
SCRIPT_END = re.compile(r"</script", re.IGNORECASE)
MAX_START_TAG = 1024  # characters; a JSON-LD script's start tag holds a type and an id or two


class NoLiveBlog(Exception):
    """The page carries no LiveBlogPosting; str(error) says why, when a JSON-LD block of it
    could not be read (else it is empty)."""


@dataclass(frozen=True)
class LiveBlog:
    title: str  # the first LiveBlogPosting's headline (or name)
    posts: list[dict[str, Any]]  # the post nodes (`liveBlogUpdate`) of each, in page order


def read_live_blog(page: bytes) -> LiveBlog:
    """The page's live blog: a live blog with no post yet has none. Raises NoLiveBlog when
    the page has no LiveBlogPosting."""
    blogs, unreadable = [], ""
    for block in _json_ld_blocks(page.decode("utf-8", errors="replace")):
        try:
            document = json.loads(block)
        except RecursionError:
            unreadable = "its JSON-LD nests too deeply to read"
            continue
        except ValueError as exc:  # bad JSON, or an integer over Python's digit limit
            unreadable = f"its JSON-LD is not valid JSON ({exc})"
            continue
        blogs.extend(_live_blogs(document))
    if not blogs:
        raise NoLiveBlog(unreadable)
    posts = []
    for blog in blogs:
        updates = blog.get("liveBlogUpdate")
        updates = updates if isinstance(updates, list) else [updates]
        posts.extend(update for update in updates if isinstance(update, dict))
    title = next(
        (name for blog in blogs for key in ("headline", "name")
         if isinstance(name := blog.get(key), str) and name.strip()),
        "",
    )  # fmt: skip
    return LiveBlog(" ".join(title.split()), posts)


def _json_ld_blocks(page: str) -> Iterator[str]:
    """The text of each JSON-LD script of the page, outside comments. A script's text ends
    at the first `</script`, as a browser ends it (pages write `<\\/script>` inside one)."""
    position = 0
    while found := COMMENT_OR_SCRIPT.search(page, position):
        if found[0] == "<!--":
            end = page.find("-->", found.end())
            if end < 0:
                return
            position = end + len("-->")
            continue
        tag_end = page.find(">", found.end())
        if tag_end < 0:
            return
        closing = SCRIPT_END.search(page, tag_end)
        if closing is None:
            return
        start_tag = page[found.start() : tag_end + 1]
        if len(start_tag) <= MAX_START_TAG and _script_type(start_tag) == JSON_LD:
            yield page[tag_end + 1 : closing.start()]
        position = closing.end()


def _script_type(start_tag: str) -> str:
    """The `type` attribute of a script's start tag, as html.parser reads it, lowercased."""
    reader = _StartTag()
    reader.feed(start_tag)
    return (reader.attributes.get("type") or "").strip().lower()


class _StartTag(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes = dict(attrs)


def _live_blogs(document: Any) -> Iterator[dict[str, Any]]:
    """The LiveBlogPosting nodes anywhere in a JSON-LD document, in document order. Walked
    with a stack, not recursion: whatever depth json.loads could read, this can too."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            if LIVE_BLOG in _types(node):
                yield node  # its posts are read by the caller, not searched for more blogs
            else:
                stack.extend(reversed(node.values()))


def _types(node: dict[str, Any]) -> list[str]:
    """A node's `@type`, one name or a list of them."""
    types = node.get("@type")
    if isinstance(types, str):
        return [types]
    return [t for t in types if isinstance(t, str)] if isinstance(types, list) else []
