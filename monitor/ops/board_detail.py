"""The board's detail pages: a story (every report, why each joined, who was told of it and
what became of each message) and a subscription (its endpoint's health, its recent messages
and every attempt). Rendered with board_render's pieces, escaped the same way."""

from __future__ import annotations

from html import escape
from typing import Any

from monitor.ops.board_render import (
    badge,
    cell,
    clock,
    link,
    outside_link,
    page,
    story_path,
    subscription_path,
    table,
    text_cell,
    until,
    updated,
    why_failing,
)

BACK = '<p class="back"><a href="/">&larr; the board</a></p>'


def _facts(pairs: list[tuple[str, str]]) -> str:
    """A definition list of (term, HTML) pairs."""
    return "<dl>" + "".join(f"<dt>{escape(t)}</dt><dd>{html}</dd>" for t, html in pairs) + "</dl>"


def why_joined(why: dict[str, Any] | None, reports: dict[str, dict[str, Any]]) -> str:
    """Why a report joined the story, in words: the kind of match, the report it matched and
    how close; for a story match, the pair model's probability and the deciding features."""
    if why is None:
        return "first report"
    reason, of = why.get("reason", "?"), why.get("of", "?")
    matched = reports.get(of, {})
    words = f"{reason} match with {matched.get('feed', of)}"
    scores = {k: v for k, v in why.items() if k not in ("reason", "of")}
    if scores:
        words += ": " + ", ".join(f"{name} {value}" for name, value in scores.items())
    return words


REPORT_COLUMNS = [("Reported (UTC)", "time"), ("Outlet", ""), ("Headline", ""), ("Joined", "")]


def _report_row(entry_id: str, report: dict[str, Any], story: dict[str, Any], now: float) -> str:
    title = str(report.get("title") or "(headline not kept)")
    return (
        f'<tr data-entry="{escape(entry_id)}">'
        + text_cell("Reported", clock(report.get("at"), now), "time")
        + text_cell("Outlet", report["feed"])
        + cell("Headline", outside_link(str(report.get("link", "")), title), "headline")
        + text_cell("Joined", why_joined(story["why"].get(entry_id), story["reports"]), "why")
        + "</tr>"
    )


MESSAGE_COLUMNS = [
    ("Subscription", ""),
    ("Message", ""),
    ("Sent (UTC)", "time"),
    ("Outcome", ""),
    ("Attempts", ""),
]


def _last_outcome(message: dict[str, Any]) -> str:
    attempts = message["attempts"]
    return badge(attempts[-1]["status"]) if attempts else badge("not_tried")


def _attempts(attempts: list[dict[str, Any]], now: float) -> str:
    """Each attempt on a line: when, its number, what became of it, the answer, the error."""
    if not attempts:
        return "-"
    lines = []
    for attempt in attempts:
        answer = f"HTTP {attempt['http_status']}" if attempt.get("http_status") else "no answer"
        words = [
            clock(attempt["at"], now),
            f"#{attempt['attempt']}",
            attempt["status"],
            answer,
            f"{attempt.get('duration_ms') or 0:.0f} ms",
        ]
        if attempt.get("error"):
            words.append(attempt["error"])
        lines.append(f"<li>{escape(' · '.join(str(w) for w in words))}</li>")
    return f'<ol class="attempts">{"".join(lines)}</ol>'


def _alert_row(message: dict[str, Any], now: float) -> str:
    sub_id = message["subscription_id"]
    return (
        f'<tr data-message="{escape(message["id"])}">'
        + cell("Subscription", link(subscription_path(sub_id), sub_id))
        + text_cell("Message", f"{message['type']} {message['id']}")
        + text_cell("Sent", clock(message["created"], now), "time")
        + cell("Outcome", _last_outcome(message))
        + cell("Attempts", _attempts(message["attempts"], now))
        + "</tr>"
    )


def render_story_page(data: dict[str, Any]) -> str:
    story, now = data["story"], data["generated_at"]
    title = story["title"] or "(no headline)"
    topics = "".join(f'<span class="topic">{escape(t)}</span>' for t in story["topics"])
    facts = _facts(
        [
            ("First seen", escape(clock(story["first_seen"], now) + " UTC")),
            ("Last report", escape(clock(story["last_seen"], now) + " UTC")),
            ("Topics", topics or "-"),
            ("Article", outside_link(story["link"], story["link"] or "-")),
        ]
    )
    reports = [_report_row(e, r, story, now) for e, r in story["reports"].items()]
    alerts = [_alert_row(m, now) for m in data["messages"]]
    main = (
        f'{BACK}<h2 class="title">{escape(title)}</h2>{facts}'
        f"<section><h2>Reports</h2>"
        f"{table('reports', REPORT_COLUMNS, reports, 'no reports kept')}</section>"
        f'<section><h2>Alerts <span class="hint">who was told, and what became of it</span>'
        f"</h2>{table('alerts', MESSAGE_COLUMNS, alerts, 'no subscription was alerted')}"
        "</section>"
    )
    return page(f"newsmon: {title}", main, updated(now))


SUBSCRIPTION_MESSAGE_COLUMNS = [
    ("Sent (UTC)", "time"),
    ("Headline", ""),
    ("Message", ""),
    ("Outcome", ""),
    ("Attempts", ""),
]


def _message_row(message: dict[str, Any], now: float) -> str:
    title = message["title"] or "(no headline)"
    return (
        f'<tr data-message="{escape(message["id"])}">'
        + text_cell("Sent", clock(message["created"], now), "time")
        + cell("Headline", link(story_path(message["story_id"]), title), "headline")
        + text_cell("Message", f"{message['type']} {message['id']}")
        + cell("Outcome", _last_outcome(message))
        + cell("Attempts", _attempts(message["attempts"], now))
        + "</tr>"
    )


def render_subscription_page(data: dict[str, Any]) -> str:
    now = data["generated_at"]
    facts = _facts(
        [
            ("Status", badge(data["status"])),
            ("Failing since", escape(clock(data["failing_since"], now))),
            ("Why", f'<span class="error">{escape(why_failing(data))}</span>'),
            ("Next try", escape(until(data["next_try"], now))),
        ]
    )
    messages = [_message_row(m, now) for m in data["messages"]]
    main = (
        f'{BACK}<h2 class="title">Subscription {escape(data["id"])}</h2>{facts}'
        f'<section><h2>Recent messages <span class="hint">newest first</span></h2>'
        f"{table('messages', SUBSCRIPTION_MESSAGE_COLUMNS, messages, 'no messages yet')}"
        "</section>"
    )
    return page(f"newsmon: subscription {data['id']}", main, updated(now))


def render_missing(what: str) -> str:
    """The page for a story or subscription that is not there (any more)."""
    main = f'{BACK}<section class="problem" role="alert"><h2>{escape(what)}</h2></section>'
    return page("newsmon: not found", main, what)
