"""Feeds written into `feeds.toml` by a command (`newsmon feeds import`, the snippet of
`newsmon feeds discover`): names made to newsmon's rules, each feed a `[[feeds]]` table
appended as text, so the file's own content and comments stay as they were."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from monitor.core.config.reading import printable
from monitor.core.config.values import http_url
from monitor.core.models import Feed

LONGEST_NAME = 64  # monitor/core/config/values.py NAME_PATTERN
# TOML strings must escape these (TOML 1.0: U+0000-U+001F, U+007F), and '"' and '\'.
TOML_ESCAPED = re.compile(r'[\x00-\x1f\x7f"\\]')


@dataclass(frozen=True)
class NewFeed:
    """A feed to add: its title where it came from (an OPML outline, a page's link), its URL
    and its tags."""

    title: str
    url: str
    tags: tuple[str, ...] = ()


@dataclass
class Additions:
    """What an import adds (name and feed) and what it leaves out, each with why."""

    added: list[tuple[str, NewFeed]]
    skipped: list[str]


def feed_name(title: str, url: str) -> str:
    """A name by newsmon's rules (1-64 of letters, digits, '_', '.', '-', starting with a
    letter or digit) from the feed's title, else from its URL's host and path."""
    host_and_path = " ".join(filter(None, (urlsplit(url).hostname, urlsplit(url).path)))
    for text in (title, host_and_path):
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        name = re.sub(r"[^a-z0-9_.]+", "-", ascii_text.lower()).strip("-_.")
        if name := name[:LONGEST_NAME].rstrip("-_."):
            return name
    return "feed"


def plan_additions(new_feeds: Iterable[NewFeed], existing: Sequence[Feed]) -> Additions:
    """Which of `new_feeds` to add to a feeds.toml holding `existing`: a feed whose URL or
    name is there already (or earlier in `new_feeds`) is skipped, as is an unusable URL."""
    names = {feed.name: feed.url for feed in existing}
    urls = {feed.url: feed.name for feed in existing}
    additions = Additions([], [])
    for new in new_feeds:
        name = feed_name(new.title, new.url)
        if problem := http_url(new.url):
            additions.skipped.append(f"{new.title or '(untitled)'}: url {problem}")
        elif new.url in urls:
            additions.skipped.append(f"{new.url}: already in feeds.toml as {urls[new.url]!r}")
        elif name in names:
            additions.skipped.append(
                f"{new.url}: its name {name!r} is taken by {names[name]}; "
                "add it by hand under another name"
            )
        else:
            names[name], urls[new.url] = new.url, name
            additions.added.append((name, new))
    return additions


def feed_table(name: str, feed: NewFeed) -> str:
    """The feed as a `[[feeds]]` table of feeds.toml."""
    lines = ["[[feeds]]", f"name = {toml_string(name)}", f"url = {toml_string(feed.url)}"]
    if feed.tags:
        lines.append(f"tags = [{', '.join(toml_string(tag) for tag in feed.tags)}]")
    return "\n".join(lines) + "\n"


def append_tables(path: Path, comment: str, tables: Sequence[str]) -> None:
    """Append `tables` to the file at `path` under a `# comment` line; what it holds stays."""
    existing = path.read_bytes() if path.exists() else b""
    separator = "\n" if existing and not existing.endswith(b"\n") else ""
    with path.open("a", encoding="utf-8") as file:
        file.write(f"{separator}\n# {printable(comment)}\n" + "\n".join(tables))


def toml_string(text: str) -> str:
    """`text` as a TOML basic string."""
    return '"' + TOML_ESCAPED.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + '"'
