"""OPML in and out: `newsmon feeds import FILE.opml` appends to feeds.toml what loads (and
reports what it skips), `newsmon feeds export` writes OPML that imports back, and an OPML
file from anywhere can neither blow up nor reach out, nor make a feeds.toml that fails."""

from __future__ import annotations

import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import load_config
from monitor.core.config.values import name as name_problem
from monitor.ops.feeds_toml import (
    NewFeed,
    append_tables,
    feed_name,
    feed_table,
    plan_additions,
    toml_string,
)
from monitor.ops.opml import NOT_XML, OpmlError, read_opml
from tests.helpers import BILLION_LAUGHS, newsmon, write_config

FEEDS_TOML = """# Our feeds: the wires first.
[[feeds]]
name = "wire"   # the agency
url = "https://wire.example/rss.xml"
tags = ["agency"]
"""
READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions in a feed reader</title></head>
  <body>
    <outline text="News" title="News">
      <outline text="  World  ">
        <outline type="rss" text="Le Monde &#8211; International" xmlUrl="https://lemonde.example/int.xml"/>
        <outline type="rss" text="Новости" xmlUrl="https://novosti.example/rss"/>
      </outline>
      <outline type="rss" text="The Wire again" xmlUrl="https://wire.example/rss.xml"/>
    </outline>
    <outline text="Tech">
      <outline type="rss" text="Le Monde - International" xmlUrl="https://lemonde.example/int.xml"/>
      <outline type="rss" text="Wire" xmlUrl="https://other-wire.example/feed"/>
      <outline type="rss" text="Gopher" xmlUrl="gopher://old.example/feed"/>
    </outline>
    <outline type="rss" text="Daily" xmlUrl="https://daily.example/feed.json"/>
  </body>
</opml>
"""


def test_import_appends_the_feeds_with_folders_as_tags_and_reports_what_it_skips(tmp_path):
    directory = write_config(tmp_path / "config")
    (directory / "feeds.toml").write_text(FEEDS_TOML)
    opml = tmp_path / "reader.opml"
    opml.write_text(READER_EXPORT)

    result = newsmon("feeds", "import", str(opml), "--config", str(directory))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added le-monde-international  https://lemonde.example/int.xml  tags News, World, Tech",
        "added novosti.example-rss  https://novosti.example/rss  tags News, World",
        "added daily  https://daily.example/feed.json",
        "skipped https://wire.example/rss.xml: already in feeds.toml as 'wire'",
        "skipped https://other-wire.example/feed: its name 'wire' is taken by "
        "https://wire.example/rss.xml; add it by hand under another name",
        'skipped Gopher: url "gopher://old.example/feed" is not a usable http(s) URL (it needs '
        "http:// or https:// and a host); write https://host/path",
        f"{directory / 'feeds.toml'}: 3 feeds added, 3 skipped",
    ]
    written = (directory / "feeds.toml").read_text()
    assert written.startswith(FEEDS_TOML + "\n# Imported from reader.opml\n[[feeds]]\n")
    assert [(f.name, f.url, f.tags) for f in load_config(directory).feeds] == [
        ("wire", "https://wire.example/rss.xml", ("agency",)),
        ("le-monde-international", "https://lemonde.example/int.xml", ("News", "World", "Tech")),
        ("novosti.example-rss", "https://novosti.example/rss", ("News", "World")),
        ("daily", "https://daily.example/feed.json", ()),
    ]
    assert newsmon("check", "--config", str(directory)).returncode == 0
    again = newsmon("feeds", "import", str(opml), "--config", str(directory))
    assert again.stdout.splitlines()[-1] == f"{directory / 'feeds.toml'}: 0 feeds added, 6 skipped"
    assert (directory / "feeds.toml").read_text() == written


def test_export_writes_opml_2_with_tags_as_folders_that_imports_back(tmp_path):
    feeds = [
        {"name": "wire", "url": "https://wire.example/rss.xml?a=1&b=2", "tags": ["agency", "eu"]},
        {"name": "daily", "url": "https://daily.example/feed.json"},
        {"name": "blog", "url": "https://blog.example/atom", "tags": ["eu"]},
    ]
    source = write_config(tmp_path / "source", feeds=feeds)

    exported = newsmon("feeds", "export", "--config", str(source))

    assert exported.returncode == 0, exported.stderr
    root = ET.fromstring(exported.stdout)
    assert root.get("version") == "2.0"
    folders = {o.get("text"): [f.get("text") for f in o] for o in root.find("body") if len(o)}
    assert folders == {"agency": ["wire"], "eu": ["wire", "blog"]}
    opml = tmp_path / "newsmon.opml"
    opml.write_text(exported.stdout)
    target = write_config(tmp_path / "target")
    assert newsmon("feeds", "import", str(opml), "--config", str(target)).returncode == 0
    assert {(f.name, f.url, f.tags) for f in load_config(target).feeds} == {
        (f["name"], f["url"], tuple(f.get("tags", ()))) for f in feeds
    }


def test_hostile_xml_is_refused_quickly_and_feeds_toml_is_left_alone(tmp_path):
    directory = write_config(
        tmp_path / "config", feeds=[{"name": "a", "url": "https://a.example/"}]
    )
    before = (directory / "feeds.toml").read_bytes()
    documents = {
        "laughs.opml": f'<!DOCTYPE opml [{BILLION_LAUGHS}]><opml><body><outline text="&e9;" '
        'xmlUrl="https://b.example/"/></body></opml>',
        "external.opml": '<!DOCTYPE opml [<!ENTITY s SYSTEM "file:///etc/hostname">]><opml><body>'
        '<outline text="&s;" xmlUrl="https://c.example/"/></body></opml>',
        "undeclared.opml": '<opml><body><outline text="&s;" xmlUrl="https://c.example/"/>'
        "</body></opml>",
        "rss.opml": '<rss version="2.0"><channel/></rss>',
    }
    reasons = {}
    for file_name, text in documents.items():
        (tmp_path / file_name).write_text(text)
        started = time.monotonic()
        result = newsmon("feeds", "import", str(tmp_path / file_name), "--config", str(directory))
        assert time.monotonic() - started < 10
        assert result.returncode == 2 and result.stdout == ""
        reasons[file_name] = result.stderr.removeprefix(f"newsmon: {tmp_path / file_name}: ")
    assert reasons == {
        "laughs.opml": "refused: the document declares a DOCTYPE, which OPML never needs\n",
        "external.opml": "refused: the document declares a DOCTYPE, which OPML never needs\n",
        "undeclared.opml": "not well-formed XML: undefined entity: line 1, column 12\n",
        "rss.opml": "not OPML: the document is <rss>, not <opml>\n",
    }
    assert (directory / "feeds.toml").read_bytes() == before


def test_an_inline_feeds_array_is_restored_rather_than_broken(tmp_path):
    directory = write_config(tmp_path / "config")
    (directory / "feeds.toml").write_text("feeds = []\n")
    opml = tmp_path / "one.opml"
    opml.write_text('<opml><body><outline text="a" xmlUrl="https://a.example/"/></body></opml>')

    result = newsmon("feeds", "import", str(opml), "--config", str(directory))

    assert result.returncode == 2
    assert "it is unchanged. Write its feeds as [[feeds]] tables" in result.stderr
    assert (directory / "feeds.toml").read_text() == "feeds = []\n"


# Untrusted OPML, property-based.

XML_TEXT = st.text().map(lambda text: NOT_XML.sub("", text))
EXISTING = ["https://a.example/", "http://b.example:8080/x"]
URLS = st.one_of(
    XML_TEXT,
    st.sampled_from(EXISTING),
    st.builds(
        "{}://{}/{}".format,
        st.sampled_from(["http", "https", "ftp"]),
        st.sampled_from(["a.example", "b.example:8080", "[::1]", "münchen.example", ""]),
        XML_TEXT,
    ),
)


@st.composite
def outlines(draw: st.DrawFn, depth: int = 0) -> ET.Element:
    """A folder of feeds and folders, any title, any URL."""
    folder = ET.Element("outline", text=draw(XML_TEXT))
    for _ in range(draw(st.integers(0, 4))):
        if depth < 3 and draw(st.booleans()):
            folder.append(draw(outlines(depth + 1)))
        else:
            attributes = {"text": draw(XML_TEXT), "xmlUrl": draw(URLS)}
            folder.append(ET.Element("outline", attributes))
    return folder


@given(document=st.binary(max_size=2000))
def test_any_bytes_are_read_or_refused_as_opml_never_a_crash(document):
    try:
        feeds = read_opml(document)
    except OpmlError:
        return
    assert all(isinstance(feed, NewFeed) for feed in feeds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folder=outlines(), existing=st.lists(st.sampled_from(EXISTING), unique=True))
def test_any_opml_imports_into_a_feeds_toml_that_loads_with_every_feed_added(folder, existing):
    opml = ET.Element("opml", version="2.0")
    ET.SubElement(opml, "body").append(folder)
    new_feeds = read_opml(ET.tostring(opml))
    feeds = [{"name": f"existing-{i}", "url": url} for i, url in enumerate(existing)]
    with tempfile.TemporaryDirectory() as temporary:
        directory = write_config(Path(temporary), feeds=feeds)
        before = load_config(directory).feeds
        additions = plan_additions(new_feeds, before)
        tables = [feed_table(name, feed) for name, feed in additions.added]
        append_tables(directory / "feeds.toml", "Imported from any.opml", tables)
        after = load_config(directory).feeds
    assert len(additions.added) + len(additions.skipped) == len(new_feeds)
    assert after[: len(before)] == before
    assert [(f.name, f.url, f.tags) for f in after[len(before) :]] == [
        (name, feed.url, feed.tags) for name, feed in additions.added
    ]
    assert not {feed.url for _, feed in additions.added} & set(existing)


@given(title=st.text(), url=URLS)
def test_a_feed_name_always_keeps_the_naming_rules(title, url):
    assert name_problem(feed_name(title, url)) is None


@given(text=st.text().filter(lambda text: not any(0xD800 <= ord(c) <= 0xDFFF for c in text)))
def test_any_text_is_a_toml_string_that_reads_back(text):
    assert tomllib.loads(f"value = {toml_string(text)}") == {"value": text}
