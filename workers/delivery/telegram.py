"""Telegram (`format = "telegram"`): a bot's `sendMessage` to the subscription's chat, in
Telegram's HTML parse mode with every piece of feed text escaped, within Telegram's 4,096
characters. A 429 says how long to wait in `parameters.retry_after`, honoured as a webhook's
Retry-After is. The bot's token is in the request's path: whatever quotes the URL is redacted
(monitor/core/redact.py)."""

from __future__ import annotations

import html
import json
from typing import Any

import httpx

from monitor.core.http import MAX_RETRY_AFTER_SECONDS
from monitor.core.models import Alert, Subscription
from workers.delivery.outcome import DeliveryStatus, Outcome
from workers.delivery.text import (
    about,
    compact_json,
    cut_escaped,
    heading,
    linkable,
    plain,
    stories,
    story_title,
)

# Telegram counts a message's length in UTF-16 code units, after its markup is parsed: the
# markup as sent, counted the same way, is never shorter.
TELEGRAM_TEXT = 4096
TITLE = 300
LINK = 1000  # a longer link is left out; its title stays
MORE = "\n\nand {} more"
RETRYABLE_STATUS = {408, 429}


def escape(text: str) -> str:
    return html.escape(plain(text))


def units(text: str) -> int:
    """`text`'s length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, budget: int) -> str:
    """`text` escaped and cut to at most `budget` units; empty when nothing fits."""
    while budget > 1:
        fitted = cut_escaped(text, budget, escape)
        if (excess := units(fitted) - budget) <= 0:
            return fitted
        budget -= excess
    return ""


def _story(story: Alert) -> str:
    """A story's lines: its title, linked, then its outlet and topics."""
    entry = story.entry
    title = cut_escaped(story_title(entry), TITLE, escape)
    target = html.escape(entry.link, quote=True)
    if linkable(entry.link) and len(target) <= LINK:
        title = f'<a href="{target}">{title}</a>'
    return f"{title}\n{cut_escaped(about(story), TITLE, escape)}"


def message_text(alert: Alert) -> str:
    """The message: its heading in bold, then each story (a digest's, as many as fit, then
    how many more), and a single story's summary in what room is left."""
    told = stories(alert)
    text = f"<b>{escape(heading(alert))}</b>"
    for shown, story in enumerate(told):
        block = f"\n\n{_story(story)}"
        room = TELEGRAM_TEXT - units(text) - (units(MORE.format(len(told))) if told[1:] else 0)
        if units(block) > room:
            return text + MORE.format(len(told) - shown)
        text += block
    summary = told[0].entry.summary if not alert.stories else ""
    if summary and (fitted := _fit(summary, TELEGRAM_TEXT - units(text) - 1)):
        text += f"\n{fitted}"
    return text


def request(api_url: str, subscription: Subscription, alert: Alert) -> tuple[str, bytes]:
    """The URL (holding the bot's token) and JSON body of the alert's `sendMessage`."""
    chat: int | str = subscription.chat_id
    if subscription.chat_id.lstrip("-").isdigit():
        chat = int(subscription.chat_id)
    body = {"chat_id": chat, "text": message_text(alert), "parse_mode": "HTML"}
    return f"{api_url.rstrip('/')}/bot{subscription.bot_token}/sendMessage", compact_json(body)


def outcome(response: httpx.Response, duration_ms: float) -> Outcome:
    """What Telegram's answer means: 2xx sent; 429 (after `retry_after`), 408 and 5xx worth
    retrying; any other refusal (a chat not found, a bot blocked or its token revoked) final."""
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(DeliveryStatus.DELIVERED, http_status=code, duration_ms=duration_ms)
    answer = _answer(response)
    description = plain(str(answer.get("description", "")))[:200]
    reason = f"HTTP {code}: {description}" if description else f"HTTP {code}"
    if code in RETRYABLE_STATUS or code >= 500:
        retry_after = (answer.get("parameters") or {}).get("retry_after")
        wait = None
        if isinstance(retry_after, int | float):
            wait = min(max(float(retry_after), 0.0), MAX_RETRY_AFTER_SECONDS)
        return Outcome(DeliveryStatus.RETRY, reason, code, wait, duration_ms)
    return Outcome(DeliveryStatus.FAILED, reason, code, duration_ms=duration_ms)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = json.loads(response.content)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
