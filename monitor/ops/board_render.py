"""The board's HTML, rendered here and only here: the page script (board.js) swaps in the
parts it fetches from /board/live, rendered by the same functions. Every value a feed, an
endpoint, a config or Redis controls goes through escape(), so a headline is text wherever
it shows; only http(s) links are made clickable (`safe_link`).

Tables carry a `data-label` on each cell: at a phone's width board.css stacks a row into
labelled lines instead of columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import quote

from monitor.ops import stats

ASSETS = files("monitor.ops") / "board_assets"
PAGE = Template((ASSETS / "page.html").read_text(encoding="utf-8"))
BOARD = Template((ASSETS / "board.html").read_text(encoding="utf-8"))
SCRIPT = '<script src="/board/board.js" defer></script>'
REFRESH_SECONDS = 3  # how often board.js asks for the live parts
RETRY_SECONDS = 10  # how often the "Redis is down" page tries again


def clock(unix_time: float | None, now: float) -> str:
    """UTC: the time of day when it is today, else the date too."""
    if unix_time is None:
        return "-"
    moment = datetime.fromtimestamp(unix_time, UTC)
    same_day = moment.date() == datetime.fromtimestamp(now, UTC).date()
    return moment.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M")


def duration(seconds: float) -> str:
    """A short span."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def until(moment: float | None, now: float) -> str:
    """When something comes next: "now", "in 3 min" or "-"."""
    if moment is None:
        return "-"
    return "now" if moment - now < 1 else f"in {duration(moment - now)}"


def safe_link(url: str) -> str | None:
    """The link when it is http(s), the only schemes the board makes clickable. A plain
    prefix test: nothing to parse, so nothing a browser could read another way."""
    return url if url[:8].lower().startswith(("http://", "https://")) else None


def story_path(story_id: str) -> str:
    return f"/board/story/{quote(story_id, safe='')}"


def subscription_path(subscription_id: str) -> str:
    return f"/board/subscription/{quote(subscription_id, safe='')}"


def _class(css: str) -> str:
    return f' class="{escape(css)}"' if css else ""


def link(href: str, text: str) -> str:
    """A link within the board."""
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def outside_link(url: str, text: str) -> str:
    """`text` linked to `url` in a new tab when the URL is http(s), else the text alone."""
    if target := safe_link(url):
        return (
            f'<a href="{escape(target)}" rel="noopener noreferrer" target="_blank">'
            f"{escape(text)}</a>"
        )
    return escape(text)


def badge(state: str) -> str:
    return f'<span class="badge {escape(state)}">{escape(state.replace("_", " "))}</span>'


def cell(label: str, html: str, css: str = "") -> str:
    """A cell holding `html` (already escaped), labelled for the stacked layout."""
    return f'<td data-label="{escape(label)}"{_class(css)}>{html}</td>'


def text_cell(label: str, value: object, css: str = "") -> str:
    return cell(label, escape(str(value)), css)


def table(table_id: str, columns: list[tuple[str, str]], rows: list[str], empty: str) -> str:
    """A table of (heading, css class) columns; `empty` says why when it has no rows."""
    head = "".join(f"<th{_class(css)}>{escape(name)}</th>" for name, css in columns)
    body = "".join(rows) or (
        f'<tr class="empty"><td colspan="{len(columns)}">{escape(empty)}</td></tr>'
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(title: str, main: str, status: str, *, head: str = "") -> str:
    """A whole page: the shell of page.html around `main`, with `head` (already HTML) in its
    head and `status` (text) in its header."""
    return PAGE.substitute(title=escape(title), head=head, status=escape(status), main=main)


def updated(now: float) -> str:
    return f"updated {clock(now, now)} UTC"


# The front page's pieces.

STORY_COLUMNS = [
    ("Headline", ""),
    ("Outlets", ""),
    ("Topics", ""),
    ("First seen (UTC)", "time"),
    ("Last report", "time"),
]


def render_story(story: dict[str, Any], now: float) -> str:
    """A story's row: its headline opens its page; the source link opens the article."""
    title = story["title"] or "(no headline)"
    headline = link(story_path(story["id"]), title)
    if source := safe_link(story["link"]):
        headline += " " + outside_link(source, "source")
    topics = "".join(f'<span class="topic">{escape(t)}</span>' for t in story["topics"])
    return (
        f'<tr data-story="{escape(story["id"])}">'
        + cell("Headline", headline, "headline")
        + text_cell("Outlets", ", ".join(story["outlets"]), "outlets")
        + cell("Topics", topics or "-", "topics")
        + text_cell("First seen", clock(story["first_seen"], now), "time")
        + text_cell("Last report", clock(story["last_seen"], now), "time")
        + "</tr>"
    )


FEED_COLUMNS = [
    ("Feed", ""),
    ("Health", ""),
    ("Last status", ""),
    ("Last fetch (UTC)", "time"),
    ("Next poll", "time"),
    ("Errors in a row", "number"),
    ("Last error", ""),
]


def _unix(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def render_feed(row: dict[str, Any], now: float) -> str:
    next_poll = None if row["next_due_in_seconds"] is None else now + row["next_due_in_seconds"]
    return (
        "<tr>"
        + text_cell("Feed", row["feed"])
        + cell("Health", badge(row["health"]))
        + text_cell("Last status", row["last_status"] or "-")
        + text_cell("Last fetch", clock(_unix(row["last_fetched"]), now), "time")
        + text_cell("Next poll", until(next_poll, now), "time")
        + text_cell("Errors in a row", row["errors"], "number")
        + text_cell("Last error", row["last_error"] or "-", "error")
        + "</tr>"
    )


COUNT_HEADINGS = {
    "delivered": "Delivered",
    "retried": "Retried",
    "failed": "Failed",
    "dead": "Dead",
}
SUBSCRIPTION_COLUMNS = [
    ("Subscription", ""),
    ("Status", ""),
    ("Failing since (UTC)", "time"),
    ("Why", ""),
    ("Next try", "time"),
    *((COUNT_HEADINGS[name], "number") for name in stats.SUBSCRIPTION_COUNTERS),
    ("Dead letters kept", "number"),
]


def why_failing(row: dict[str, Any]) -> str:
    """What the endpoint last answered (or why it is disabled); "-" when it is well."""
    return row["disabled_reason"] or row["last_error"] or "-"


def render_subscription(row: dict[str, Any], now: float) -> str:
    counts = "".join(
        text_cell(COUNT_HEADINGS[name], row["last_hour"][name], "number")
        for name in stats.SUBSCRIPTION_COUNTERS
    )
    return (
        "<tr>"
        + cell("Subscription", link(subscription_path(row["id"]), row["id"]))
        + cell("Status", badge(row["status"]))
        + text_cell("Failing since", clock(row["failing_since"], now), "time")
        + text_cell("Why", why_failing(row), "error")
        + text_cell("Next try", until(row["next_try"], now), "time")
        + counts
        + text_cell("Dead letters kept", row["dead_letters"], "number")
        + "</tr>"
    )


def render_glance(board: dict[str, Any]) -> str:
    """Cards of (label, figure, note): pollers, workers, queues, rates."""
    beat = board["poller_heartbeat_age_seconds"]
    rates = board["per_minute"]
    items = [
        (
            "pollers",
            str(board["pollers"]),
            "none beat in the last minute" if beat is None else f"last beat {duration(beat)} ago",
        ),
        ("workers", str(board["workers"]), "registered"),
    ]
    for queue, depths in board["queues"].items():
        note = f"{depths['started']} started · {depths['scheduled']} scheduled · "
        items.append((queue, f"{depths['queued']} queued", note + f"{depths['failed']} failed"))
    items.append(
        (
            "per minute",
            f"{rates['entries_processed']} entries",
            f"{rates['entries_duplicate']} duplicates · {rates['alerts_delivered']} delivered · "
            f"{rates['alerts_dead']} dead",
        )
    )
    cards = "".join(
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="figure">{escape(figure)}</div><div class="note">{escape(note)}</div></div>'
        for label, figure, note in items
    )
    return f'<section id="glance" aria-label="queues and workers">{cards}</section>'


def render_warning(warning: str | None) -> str:
    hidden = "" if warning else " hidden"
    return f'<p id="redis-warning" class="warning" role="alert"{hidden}>{escape(warning or "")}</p>'


def live_parts(board: dict[str, Any]) -> dict[str, str]:
    """The parts of the front page that change, by the id of their element: the page is
    built around them, and /board/live answers them for board.js to swap in."""
    now = board["generated_at"]
    return {
        "status": f'<p id="status">{escape(updated(now))}</p>',
        "redis-warning": render_warning(board["redis_warning"]),
        "glance": render_glance(board),
        "stories": table(
            "stories",
            STORY_COLUMNS,
            [render_story(s, now) for s in board["stories"]],
            "no stories yet",
        ),
        "subscriptions": table(
            "subscriptions",
            SUBSCRIPTION_COLUMNS,
            [render_subscription(row, now) for row in board["subscriptions"]],
            "no subscriptions, in subscriptions.toml or made over the API",
        ),
        "feeds": table(
            "feeds", FEED_COLUMNS, [render_feed(r, now) for r in board["feeds"]], "no feeds"
        ),
    }


def render_board(board: dict[str, Any], topics: list[str]) -> str:
    """The front page, its topic filter set to the board's topic."""
    parts = live_parts(board)
    options = "".join(
        f'<option value="{escape(name)}"{" selected" if name == board["topic"] else ""}>'
        f"{escape(name)}</option>"
        for name in topics
    )
    main = BOARD.substitute(
        {key.replace("-", "_"): html for key, html in parts.items() if key != "status"},
        refresh_ms=REFRESH_SECONDS * 1000,
        all_selected="" if board["topic"] else " selected",
        topic_options=options,
    )
    return page("newsmon", main, updated(board["generated_at"]), head=SCRIPT)


def render_unavailable(error: str) -> str:
    """The page for when Redis does not answer: what is wrong, and that it tries again."""
    main = (
        '<section class="problem" role="alert"><h2>Redis is not answering</h2>'
        "<p>Everything the board shows is kept in Redis, and Redis did not answer: "
        f"<code>{escape(error)}</code>.</p>"
        "<p>Check that Redis is running and that <code>REDIS_URL</code> points at it "
        "(without it, <code>newsmon run</code> starts a Redis of its own). The pollers and "
        "workers wait for Redis too.</p>"
        f"<p>This page tries again every {RETRY_SECONDS} s.</p></section>"
    )
    refresh = f'<meta http-equiv="refresh" content="{RETRY_SECONDS}">'
    return page("newsmon: Redis is not answering", main, "Redis is not answering", head=refresh)
