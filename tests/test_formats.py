"""Slack, Discord and Teams bodies: the shape each incoming webhook documents, checked by
local receivers, and safe for any title a feed can send."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.core import keys
from monitor.core.models import Alert, Entry, Format
from monitor.poller.loop import Poller
from tests.helpers import (
    SECRET,
    Request,
    Response,
    load,
    one_subscription_per_format,
    polled_before,
    run_worker,
    write_config,
)
from tests.stories import ROUND_ONE_LIVEBLOG, rss
from workers.delivery.formats import body, slack_escape

LINK = re.compile(r"<https?://[^|<>]*\|[^<>]*>")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def slack_problem(payload: dict[str, Any]) -> str | None:
    """What Slack's incoming webhook would refuse or render wrongly (text + blocks)."""
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        return "no text"
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return "blocks must be 1 to 50"
    if sum(len(json.dumps(b, ensure_ascii=False)) for b in blocks) > 13_000:
        return "blocks too long in all"
    texts = [payload["text"]]
    for block in blocks:
        if block.get("type") == "section":
            text = block.get("text", {})
            if text.get("type") != "mrkdwn" or not 0 < len(text.get("text", "")) <= 3000:
                return f"bad section {block}"
            texts.append(text["text"])
        elif block.get("type") == "context":
            texts += [e["text"] for e in block["elements"] if e.get("type") == "mrkdwn"]
        else:
            return f"unknown block {block.get('type')}"
    for text in texts:
        if "<" in LINK.sub("", text) or ">" in LINK.sub("", text):
            return f"unescaped markup in {text!r}"
    return None


def discord_problem(payload: dict[str, Any]) -> str | None:
    """What Discord's execute-webhook would refuse, or a mention it would resolve."""
    if payload.get("allowed_mentions") != {"parse": []}:
        return "mentions are parsed"
    content, embeds = payload.get("content", ""), payload.get("embeds", [])
    if not content and not embeds:
        return "neither content nor embeds"
    if len(content) > 2000 or len(embeds) > 10:
        return "content over 2000 or more than 10 embeds"
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        fields = embed.get("fields", [])
        if len(title) > 256 or len(description) > 4096 or len(fields) > 25:
            return "embed over its limits"
        if any(len(f["name"]) > 256 or not 0 < len(f["value"]) <= 1024 for f in fields):
            return "field over its limits"
        total += len(title) + len(description) + sum(len(f["name"] + f["value"]) for f in fields)
    if total > 6000:
        return "embeds over 6000 characters"
    markdown = [content] + [
        s for e in embeds for s in [e.get("description", ""), *_strings(e.get("fields", []))]
    ]
    if any(re.search(r"(?<!\\)@(everyone|here)", text) for text in markdown):
        return "an unescaped mention"
    return None


def teams_problem(payload: dict[str, Any]) -> str | None:
    """What a Teams incoming webhook (connector MessageCard) would refuse."""
    if payload.get("@type") != "MessageCard" or payload.get("@context") != (
        "https://schema.org/extensions"
    ):
        return "not a MessageCard"
    if not payload.get("summary") and not payload.get("text"):
        return "a card needs a summary or text"
    if len(json.dumps(payload, ensure_ascii=False).encode()) > 28 * 1024:
        return "over 28 KB"
    for section in payload.get("sections", []):
        for fact in section.get("facts", []):
            if set(fact) != {"name", "value"}:
                return f"bad fact {fact}"
        for action in section.get("potentialAction", []):
            if action.get("@type") != "OpenUri" or not action.get("targets"):
                return f"bad action {action}"
    return None


def teams_workflow_problem(payload: dict[str, Any]) -> str | None:
    """What a Teams Workflows webhook ("Post to a channel when a webhook request is received")
    would refuse: a message with one Adaptive Card attached."""
    if payload.get("type") != "message" or len(payload.get("attachments", [])) != 1:
        return "not a message with one attachment"
    (attachment,) = payload["attachments"]
    if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return "not an Adaptive Card"
    card = attachment["content"]
    if card.get("type") != "AdaptiveCard" or card.get("version") < "1.4" or not card.get("body"):
        return "not an Adaptive Card 1.4 with a body"
    if len(json.dumps(payload, ensure_ascii=False).encode()) > 28 * 1024:
        return "over 28 KB"
    elements = [*card["body"]]
    while elements:
        element = elements.pop()
        kind = element.get("type")
        if kind == "Container":
            elements += element["items"]
        elif kind == "TextBlock" and not (isinstance(element.get("text"), str) and element["text"]):
            return f"empty text in {element}"
        elif kind == "FactSet" and any(set(f) != {"title", "value"} for f in element["facts"]):
            return f"bad fact in {element}"
        elif kind == "ActionSet" and any(
            a.get("type") != "Action.OpenUrl" or not a.get("url", "").startswith("http")
            for a in element["actions"]
        ):
            return f"bad action in {element}"
        elif kind not in ("Container", "TextBlock", "FactSet", "ActionSet"):
            return f"unknown element {kind}"
    return None


PROBLEMS = {
    "slack": slack_problem,
    "discord": discord_problem,
    "teams": teams_problem,
    "teams_workflow": teams_workflow_problem,
}


def receiver(service: str):
    """A local stand-in for a service's incoming webhook: 400 with the reason, as the real
    ones answer a body they refuse, else 200."""

    def answer(request: Request) -> Response:
        try:
            problem = PROBLEMS[service](json.loads(request.body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problem = f"unreadable: {exc!r}"
        return (400, {}, problem.encode()) if problem else (200, {}, b"ok")

    return answer


def test_each_format_reaches_a_receiver_checking_its_shape(tmp_path, connection, http_server):
    http_server.route(
        "/blog.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG))
    )
    for service in PROBLEMS:
        http_server.route(f"/{service}", receiver(service))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}],
            subscriptions=one_subscription_per_format(http_server, PROBLEMS),
        )
    )
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    for service in PROBLEMS:
        requests = [r for r in http_server.requests if r.path == f"/{service}"]
        assert len(requests) == len(ROUND_ONE_LIVEBLOG), service
        for request in requests:
            payload = json.loads(request.body)
            assert PROBLEMS[service](payload) is None
            assert request.headers["webhook-id"].startswith("msg_")
        titles = {i.title for i in ROUND_ONE_LIVEBLOG}
        shown = {s for r in requests for s in _strings(json.loads(r.body))}
        assert any(title in text for title in titles for text in shown), service


def test_a_refused_body_is_not_retried_and_is_dead_lettered(tmp_path, connection, http_server):
    """A receiver that refuses the shape answers 400: the same path as any client error."""
    http_server.route(
        "/blog.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG[:1]))
    )
    http_server.route("/slack", receiver("discord"))  # a Slack body sent where Discord's is due
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}],
            subscriptions=[
                {
                    "id": "s",
                    "url": http_server.url_for("/slack"),
                    "topics": ["*"],
                    "secret": SECRET,
                    "format": "slack",
                }
            ],
        )
    )
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    assert len([r for r in http_server.requests if r.path == "/slack"]) == 1
    assert connection.hlen(keys.DEAD_LETTERS) == 1


ENTRY = Entry(
    id="e1",
    feed_name="blog",
    feed_url="https://e.org/feed",
    key="k1",
    title="Title",
    link="https://e.org/a?x=1&y=2",
    summary="S",
    published=datetime(2026, 1, 1, tzinfo=UTC),
)
ALERT = Alert(
    id="msg_1",
    subscription_id="sub",
    topics=("diplomacy", "frontline"),
    entry=ENTRY,
    created=datetime(2026, 1, 1, tzinfo=UTC),
)
PIECES = ["@everyone", "@here", "<!channel>", "<@U123>", "*", "_", "`", "|", ">", "<", "&"]
PIECES += ["\n", "\x00", "\x1b", "\u2028", "[x](http://evil)", "||", "é", "\U0001f600"]
hostile = st.lists(st.text(max_size=5) | st.sampled_from(PIECES), max_size=30).map("".join) | (
    st.text(max_size=10).map(lambda s: s * 2000)
)


@settings(max_examples=150, deadline=None)
@example(title="", summary="", feed="0\\" * 2000, link="", digest=3)  # JSON doubles each backslash
@given(
    title=hostile,
    summary=hostile,
    feed=hostile,
    link=st.sampled_from(["https://e.org/a|b>c", "javascript:x", ""]) | st.text(max_size=30),
    digest=st.integers(0, 60),
)
def test_any_title_gives_a_body_each_service_takes(title, summary, feed, link, digest):
    alert = replace(
        ALERT, entry=replace(ENTRY, title=title, summary=summary, feed_name=feed, link=link)
    )
    if digest:
        alert = replace(alert, stories=tuple(replace(alert, id=f"msg_{i}") for i in range(digest)))
    for service, problem in PROBLEMS.items():
        payload = json.loads(body(alert, Format(service)))
        assert problem(payload) is None, (service, payload)
        assert not any(re.search(r"[\x00-\x09\x0b-\x1f]", s) for s in _strings(payload)), service
    standard = json.loads(body(alert, Format.STANDARD))
    assert standard["type"] == ("digest.created" if digest else "alert.created")


# Links a feed controls: long, with many `&` (5 characters each once escaped) and markup.
URL_PIECES = ["&", "a=1&", "&amp;", "|", ">", "<", "%7C", "*", " ", "é", "x" * 50]
hostile_links = st.lists(st.sampled_from(URL_PIECES) | st.text(max_size=5), max_size=700).map(
    lambda pieces: "https://e.org/a?" + "".join(pieces)
)


@settings(max_examples=150, deadline=None)
@example(title="Title", link="https://e.org/a?" + "a=1&" * 496, digest=0)  # 2000 long, 6000 sent
@example(title="&" * 400, link="https://e.org/a?" + "&" * 1000, digest=2)
@given(title=hostile, link=hostile_links, digest=st.integers(0, 3))
def test_a_slack_message_never_cuts_inside_a_link(title, link, digest):
    alert = replace(ALERT, entry=replace(ENTRY, title=title, link=link))
    if digest:
        alert = replace(alert, stories=tuple(replace(alert, id=f"msg_{i}") for i in range(digest)))
    payload = json.loads(body(alert, Format.SLACK))
    assert slack_problem(payload) is None, payload
    shown = " ".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    # Every `<` opens a whole <url|title> link; the title is there, linked or as text.
    assert shown.count("<") == shown.count(">") == len(LINK.findall(shown)), shown
    title_shown = slack_escape(title.split()[0] if title.split() else link)[:20]
    assert title_shown in shown
