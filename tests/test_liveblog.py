"""A live blog page read as a feed: one entry per post of its JSON-LD LiveBlogPosting, none
from the rest of the page, and a clear error (never a crash or a hang) for any other page."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.models import Entry, Feed, FeedKind
from monitor.poller.parse import ParseError, parse_feed
from tests.stories import (
    PAGE_TEXT,
    PUBLISHED,
    ROUND_ONE_LIVEBLOG,
    SITE,
    html_page,
    json_ld,
    live_blog,
    liveblog_page,
    post_node,
    rss,
)

PAGE = Feed("live", SITE, 60)
FORCED = Feed("live", SITE, 60, kind=FeedKind.LIVEBLOG)


def read(body: bytes, feed: Feed = PAGE, content_type: str = "text/html") -> list[Entry]:
    return parse_feed(feed, body, content_type).entries


@pytest.mark.parametrize("shape", ["plain", "graph", "nested"])
def test_each_post_is_an_entry_and_nothing_else_of_the_page_is(shape):
    entries = read(liveblog_page(ROUND_ONE_LIVEBLOG, shape))
    newest_first = ROUND_ONE_LIVEBLOG[::-1]
    assert [e.key for e in entries] == [f"{SITE}#block-{i.guid}" for i in newest_first]
    assert [e.link for e in entries] == [i.link for i in newest_first]
    assert [(e.title, e.summary) for e in entries] == [(i.title, i.summary) for i in newest_first]
    minutes = range(len(newest_first) - 1, -1, -1)
    assert [e.published for e in entries] == [PUBLISHED + timedelta(minutes=m) for m in minutes]
    shown = " ".join(f"{e.title} {e.summary}" for e in entries)
    assert not [text for text in PAGE_TEXT if text in shown]


def test_a_live_blog_of_one_post_gives_it_as_an_object_not_a_list():
    entries = read(liveblog_page(ROUND_ONE_LIVEBLOG, "single"))
    assert [e.title for e in entries] == [ROUND_ONE_LIVEBLOG[-1].title]


def test_a_post_without_an_id_is_known_by_its_url_else_its_headline_and_time():
    first, second = ROUND_ONE_LIVEBLOG[:2]
    by_url, anonymous = post_node(first, 0, ids="url"), post_node(second, 1, ids="none")
    entries = read(html_page(json_ld(live_blog([by_url, anonymous]))))
    assert [e.key for e in entries] == [first.link, f"{second.title} {anonymous['datePublished']}"]
    assert [e.link for e in entries] == [first.link, SITE]  # no url of its own: the page's


def test_a_post_link_is_resolved_against_the_page_and_only_http_reaches_subscribers():
    posts = [
        {**post_node(ROUND_ONE_LIVEBLOG[0], 0), "url": "#post-101"},
        {**post_node(ROUND_ONE_LIVEBLOG[1], 1), "url": "javascript:alert(1)"},
        {**post_node(ROUND_ONE_LIVEBLOG[2], 2), "url": "http://[broken/"},
    ]
    entries = read(html_page(json_ld(live_blog(posts))))
    assert [e.link for e in entries] == [f"{SITE}#post-101", SITE, SITE]


def test_a_post_with_only_a_description_and_a_modified_date_still_has_both():
    post = {"@id": "p1", "headline": "Curfew lifted", "description": "From 6 a.m.", "x": 1}
    post["dateModified"] = PUBLISHED.isoformat()
    (entry,) = read(html_page(json_ld(live_blog([post]))))
    assert (entry.summary, entry.published) == ("From 6 a.m.", PUBLISHED)


def test_a_live_blog_with_no_post_yet_is_an_empty_feed():
    assert read(html_page(json_ld(live_blog([])))) == []


def test_a_page_without_a_live_blog_is_the_error_it_always_was():
    with pytest.raises(ParseError) as caught:
        read(html_page(json_ld({"@type": "NewsArticle", "headline": "Not live"})))
    assert str(caught.value) == "not a feed: the server returned an HTML page"


def test_unreadable_json_ld_is_named_and_skipped_beside_a_readable_live_blog():
    broken = '<script type="application/ld+json">{"@type": "LiveBlogPosting",</script>'
    with pytest.raises(ParseError, match=r"HTML page \(its JSON-LD is not valid JSON"):
        read(html_page(broken))
    live = json_ld(live_blog([post_node(ROUND_ONE_LIVEBLOG[0], 0)]))
    assert len(read(html_page(broken + live))) == 1


def test_kind_liveblog_reads_a_page_the_body_does_not_show_as_html():
    fragment = json_ld(live_blog([post_node(ROUND_ONE_LIVEBLOG[0], 0)])).encode()
    with pytest.raises(ParseError, match="not a feed"):
        read(fragment)
    assert [e.title for e in read(fragment, FORCED)] == [ROUND_ONE_LIVEBLOG[0].title]
    with pytest.raises(ParseError, match="not a live blog: the page carries no"):
        read(rss(ROUND_ONE_LIVEBLOG), FORCED, "application/rss+xml")


def test_a_feed_quoting_html_near_its_top_is_still_a_feed():
    about = "<description><![CDATA[<!DOCTYPE html><html><body>Live</body></html>]]></description>"
    body = rss(ROUND_ONE_LIVEBLOG, head=about)
    assert len(read(body, content_type="text/html")) == len(ROUND_ONE_LIVEBLOG)


# Hostile pages: each must end in a clear ParseError, fast (html.parser over the whole page
# would take minutes on some of them, and raise AssertionError on "<![").
HOSTILE = {
    "unclosed tags": b"<!DOCTYPE html>" + b"<a" * 2_000_000,
    "marked sections": b"<!DOCTYPE html>" + b"<![" * 1_000_000,
    "unclosed comment": b"<!DOCTYPE html><!--" + b"x" * 4_000_000,
    "unclosed script tags": b"<!DOCTYPE html>" + b"<script " * 500_000,
    "scripts never ended": b"<!DOCTYPE html>" + b'<script type="application/ld+json">' * 100_000,
    "deep nesting": html_page(f'<script type="application/ld+json">{"[" * 200_000}</script>'),
    "huge number": html_page(f'<script type="application/ld+json">{"9" * 100_000}</script>'),
    "long start tag": html_page(
        '<script type="application/ld+json" ' + "a " * 500_000 + '>{"@type": "LiveBlogPosting"}'
        "</script>"
    ),
    "types not names": html_page(json_ld([{"@type": 7}, {"@type": {"LiveBlogPosting": 1}}])),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_pages_fail_clearly_and_fast(body):
    started = time.monotonic()
    with pytest.raises(ParseError, match="HTML page"):
        read(body)
    assert time.monotonic() - started < 5


def test_script_tags_and_markup_in_posts_stay_text_of_their_post():
    hostile = {"@id": "p", "headline": "</script><script>alert(1)</script>", "articleBody": "<!--"}
    (entry,) = read(html_page(json_ld(live_blog([hostile, "not a post", 7, None]))))
    assert (entry.title, entry.summary) == (hostile["headline"], "<!--")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["@type", "@id", "url", "headline", "articleBody", "liveBlogUpdate", "x"]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
TYPES = st.sampled_from(["LiveBlogPosting", "BlogPosting", "WebPage", ["LiveBlogPosting"]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
def test_any_bytes_give_entries_or_a_parse_error(body):
    for feed in (PAGE, FORCED):
        with contextlib.suppress(ParseError):
            parse_feed(feed, b"<!DOCTYPE html>" + body, "text/html")


@settings(max_examples=300, deadline=None)
@given(document=JSON, blog_type=TYPES, updates=JSON)
def test_any_json_ld_gives_well_typed_entries_or_a_parse_error(document, blog_type, updates):
    blog = {"@type": blog_type, "liveBlogUpdate": updates}
    try:
        entries = read(html_page(json_ld([document, blog])))
    except ParseError as error:
        assert str(error).startswith("not a feed")
        return
    for entry in entries:
        assert all(isinstance(v, str) for v in (entry.key, entry.title, entry.summary))
        assert entry.link.startswith(("http://", "https://"))


POST_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(posts=st.lists(st.tuples(POST_TEXT, POST_TEXT), min_size=1, max_size=8))
def test_any_post_text_comes_back_as_written(posts):
    """Whatever the posts say (markup, `</script>`, quotes, comments), each comes back as its
    own entry with its own words: the page's JSON-LD is the whole source."""
    nodes = [
        {"@id": f"#p{i}", "headline": title, "articleBody": body}
        for i, (title, body) in enumerate(posts)
    ]
    for script in (json_ld(live_blog(nodes)), json_ld({"@graph": [live_blog(nodes)]})):
        entries = read(html_page(script))
        assert [(e.title, e.summary) for e in entries] == posts


def test_a_json_ld_script_needs_its_type_not_just_json():
    plain = f"<script>{json.dumps(live_blog([post_node(ROUND_ONE_LIVEBLOG[0], 0)]))}</script>"
    typed = plain.replace("<script>", "<SCRIPT TYPE='Application/LD+JSON'>")
    with pytest.raises(ParseError):
        read(html_page(plain))
    assert len(read(html_page(typed))) == 1
