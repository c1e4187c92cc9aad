"""OPML, the list of feeds feed readers import and export: read (safely: an OPML file
comes from anywhere) and written (2.0, tags as folders).

Reading refuses any DOCTYPE: OPML has no use for one, and without it no entity can be
declared, so none can be expanded (a billion laughs) or fetched (an external entity).
Expat itself never fetches anything.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.parsers import expat

from monitor.core.models import Feed
from monitor.ops.feeds_toml import NewFeed

# What XML 1.0 cannot carry, even escaped; a tag holding one loses it on export.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class OpmlError(Exception):
    """The document is not OPML newsmon reads; str(error) says why."""


def read_opml(document: bytes) -> list[NewFeed]:
    """The feeds of an OPML document (outlines with an `xmlUrl`), each tagged with the
    folders (enclosing outlines without one) it sits in. A URL listed in several folders
    is one feed with all their tags."""
    folders: list[str | None] = []  # per open <outline>: its folder name, None for a feed
    feeds: dict[str, NewFeed] = {}
    root: list[str] = []

    def start(element: str, attributes: dict[str, str]) -> None:
        if not root:
            root.append(element)
            if element != "opml":
                raise OpmlError(f"not OPML: the document is <{element[:40]}>, not <opml>")
        if element != "outline":
            return
        attributes = {key.lower(): value for key, value in attributes.items()}
        title = _words(attributes.get("text") or attributes.get("title") or "")
        url = attributes.get("xmlurl", "").strip()
        folders.append(None if url else title)
        if url:
            tags = tuple(dict.fromkeys(folder for folder in folders if folder))
            earlier = feeds.get(url)
            if earlier:
                tags = tuple(dict.fromkeys(earlier.tags + tags))
            feeds[url] = NewFeed(earlier.title if earlier else title, url, tags)

    def end(element: str) -> None:
        if element == "outline":
            folders.pop()

    def refuse_doctype(*_: object) -> None:
        raise OpmlError("refused: the document declares a DOCTYPE, which OPML never needs")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(document, True)
    except expat.ExpatError as exc:
        raise OpmlError(f"not well-formed XML: {exc}") from None
    return list(feeds.values())


def write_opml(feeds: Sequence[Feed]) -> str:
    """The feeds as an OPML 2.0 document: a folder per tag holding the feeds that carry it
    (a feed with two tags is in both), the untagged feeds outside any folder."""
    root = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(root, "head"), "title").text = "newsmon feeds"
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        for tag in feed.tags or (None,):
            parent = body
            if tag is not None:
                name = NOT_XML.sub("", tag)
                if tag not in folders:
                    folders[tag] = ET.SubElement(body, "outline", text=name, title=name)
                parent = folders[tag]
            ET.SubElement(
                parent, "outline", type="rss", text=feed.name, title=feed.name, xmlUrl=feed.url
            )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _words(text: str) -> str:
    """A title as one line: its whitespace runs as single spaces."""
    return " ".join(text.split())
