"""`newsmon feeds discover URL` against pages and feeds on a real local server: the feeds a
page links to, their URLs resolved as a browser would, a snippet that feeds.toml takes."""

from __future__ import annotations

import tomllib

import pytest

from monitor.core.config import load_config
from monitor.ops.discovery import FoundFeed, feed_links
from tests.helpers import HTML, RSS, newsmon, serve_locally, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, atom, json_feed, liveblog_page, rss

ARTICLE = b"""<!doctype html><html><head><title>Paris talks</title>
<link rel="stylesheet" href="/site.css">
<link rel="alternate" hreflang="fr" href="/fr/article.html">
<link rel="alternate" type="application/rss+xml" title="Example News &amp; More" href="rss.xml">
<link rel="Alternate" type="application/atom+xml; charset=utf-8" title="Example (Atom)"
      href="/wire/atom.xml">
<link rel="alternate" type="application/feed+json" title="Example JSON" href="feed.json">
<link rel="alternate" type="application/rss+xml" title="Again" href="/news/rss.xml">
<base href="/news/">
</head><body><p>Envoys meet in Paris.</p></body></html>"""


def test_a_page_lists_the_feeds_it_links_to_and_a_snippet_feeds_toml_takes(tmp_path, http_server):
    http_server.route("/2024/06/paris-talks", (301, {"location": "/world/paris-talks"}, b""))
    http_server.route("/world/paris-talks", (200, HTML, ARTICLE))
    directory = write_config(
        tmp_path / "config", feeds=[{"name": "wire", "url": http_server.url_for("/wire/atom.xml")}]
    )

    result = newsmon(
        "feeds", "discover", http_server.url_for("/2024/06/paris-talks"), "--config", str(directory)
    )

    assert result.returncode == 0, result.stderr
    site = http_server.url
    listing, snippet = result.stdout.split(f"\n# for {directory / 'feeds.toml'}:\n")
    # <base href="/news/"> counts wherever it stands; "/wire/..." is from the site's root.
    assert listing.splitlines() == [
        f"RSS        {site}/news/rss.xml  Example News & More",
        f"Atom       {site}/wire/atom.xml  Example (Atom)",
        f"JSON Feed  {site}/news/feed.json  Example JSON",
    ]
    assert f"# skipped {site}/wire/atom.xml: already in feeds.toml as 'wire'" in snippet
    assert tomllib.loads(snippet) == {
        "feeds": [
            {"name": "example-news-more", "url": f"{site}/news/rss.xml"},
            {"name": "example-json", "url": f"{site}/news/feed.json"},
        ]
    }
    with (directory / "feeds.toml").open("a") as feeds:
        feeds.write(snippet)
    assert [f.name for f in load_config(directory).feeds] == [
        "wire",
        "example-news-more",
        "example-json",
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "title"),
    [
        (rss(ROUND_ONE_LIVEBLOG, title="Live: Ukraine"), RSS, "RSS", "Live: Ukraine"),
        (
            atom([], title="Wire: Europe"),
            {"content-type": "application/atom+xml"},
            "Atom",
            "Wire: Europe",
        ),
        (json_feed([], title="Daily"), {"content-type": "application/json"}, "JSON Feed", "Daily"),
    ],
)
def test_a_feed_is_its_own_discovery(tmp_path, http_server, body, content_type, kind, title):
    http_server.route("/feed", (200, content_type, body))
    directory = write_config(tmp_path / "config")

    result = newsmon("feeds", "discover", http_server.url_for("/feed"), "--config", str(directory))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{kind:<9}  {http_server.url_for('/feed')}  {title}"


def test_a_live_blog_page_is_a_feed_and_so_are_the_feeds_it_links_to(tmp_path, http_server):
    page = liveblog_page(ROUND_ONE_LIVEBLOG).replace(
        b"<head>", b'<head><link rel="alternate" type="application/rss+xml" href="/rss.xml">', 1
    )
    http_server.route("/live", (200, HTML, page))
    directory = write_config(tmp_path / "config")

    result = newsmon("feeds", "discover", http_server.url_for("/live"), "--config", str(directory))

    assert result.returncode == 0, result.stderr
    listing, snippet = result.stdout.split(f"\n# for {directory / 'feeds.toml'}:\n")
    assert listing.splitlines() == [
        f"live blog  {http_server.url_for('/live')}  Live: war in Ukraine",
        f"RSS        {http_server.url_for('/rss.xml')}  ",
    ]
    assert [feed["url"] for feed in tomllib.loads(snippet)["feeds"]] == [
        http_server.url_for("/live"),
        http_server.url_for("/rss.xml"),
    ]


def test_a_page_without_feeds_or_an_error_says_so(tmp_path, http_server):
    http_server.route("/plain", (200, HTML, b"<html><head><title>x</title></head></html>"))
    http_server.route("/huge", (200, HTML, b"<html>" + b" " * 2000))
    directory = write_config(tmp_path / "config", settings="[poller]\nmax_body_bytes = 1000\n")

    def discover(path):
        return newsmon("feeds", "discover", http_server.url_for(path), "--config", str(directory))

    plain, missing, huge = discover("/plain"), discover("/gone"), discover("/huge")
    assert plain.returncode == 1
    assert plain.stdout == (
        f"{http_server.url_for('/plain')}: no feed found (the page is no live blog and links "
        'to no RSS, Atom or JSON Feed with <link rel="alternate">)\n'
    )
    assert (missing.returncode, missing.stderr) == (
        2,
        f"newsmon: {http_server.url_for('/gone')}: HTTP 404 Not Found\n",
    )
    assert huge.returncode == 2 and "body exceeds the 1000-byte cap" in huge.stderr


def test_discovery_goes_through_the_ssrf_guard(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_TARGETS", raising=False)
    server = serve_locally()
    local = next(server)
    local.route("/", (200, HTML, ARTICLE))
    directory = write_config(tmp_path / "config")

    result = newsmon("feeds", "discover", local.url_for("/"), "--config", str(directory))

    server.close()
    assert result.returncode == 2
    assert "127.0.0.1 resolves to non-public address 127.0.0.1; refused" in result.stderr
    assert local.requests == []


def test_links_resolve_against_base_and_page_and_keep_only_http_feeds():
    page = """<html><head>
    <link rel="alternate" type="application/rss+xml" href="feed.xml" title="  A
      feed ">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    <link rel="alternate" type="application/rss+xml" href="ftp://example.org/feed">
    <link rel="alternate" type="application/atom+xml" href="?format=atom&amp;x=1">
    <link rel="alternate" type="application/rss+xml" href="feed.xml">
    <link rel="alternate" type="text/html" href="/page">
    <link rel="alternate" type="application/rss+xml">
    </head></html>"""

    assert feed_links(page, "https://example.org/a/b.html") == [
        FoundFeed("A feed", "RSS", "https://example.org/a/feed.xml"),
        FoundFeed("", "Atom", "https://example.org/a/b.html?format=atom&x=1"),
    ]
    based = page.replace("<head>", '<head><base href="https://cdn.example.net/x/">')
    assert [f.url for f in feed_links(based, "https://example.org/a/b.html")] == [
        "https://cdn.example.net/x/feed.xml",
        "https://cdn.example.net/x/?format=atom&x=1",
    ]
