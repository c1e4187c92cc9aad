"""Credentials out of what newsmon shows: URLs in log lines, CLI output and error messages.

Feed and webhook URLs may carry a password (`https://user:pass@host/`) or a token in the
query (`?token=...`); WebSub callbacks carry ours. Operators need to see which host and path
a line is about, never the credential, so user-info becomes `***@` and every query value
(and any fragment) becomes `***`. A Slack, Discord or Teams incoming-webhook URL holds its
token in the path, which is masked after the service's fixed prefix; so does a Telegram
Bot API URL (`/bot<token>/sendMessage`), on whichever host `[telegram] api_url` names.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

MASK = "***"
URL_KEYS = frozenset({"url", "moved_to", "hub", "topic", "callback"})
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
# Chat services' incoming-webhook URLs (a subscription's `format = "slack"` ...) carry their
# token in the path: (host, or the domain it is under; path prefix), masked after the prefix.
CHAT_WEBHOOKS = (
    ("hooks.slack.com", "services/"),
    ("discord.com", "api/webhooks/"),
    ("discordapp.com", "api/webhooks/"),
    ("webhook.office.com", "webhookb2/"),
)

# A Telegram bot's token, as a path segment of a Bot API URL: `bot` + digits + `:` + secret.
TELEGRAM_BOT = re.compile(r"(?:^|(?<=/))bot[0-9]+:[^/]*")


def redact_url(url: str) -> str:
    """The URL with user-info, query values and fragment masked; scheme, host, port and path
    kept. Split by hand, not by urllib, which raises on some malformed URLs (a bad IPv6
    bracket, a port out of range): a log line must never fail because of what it shows."""
    rest, hash_sign, _fragment = url.partition("#")
    rest, question, query = rest.partition("?")
    scheme = SCHEME.match(rest)
    head = scheme.group() if scheme else ""
    rest = rest[len(head) :]
    if rest.startswith("//"):
        # The authority ends at the first "/" (RFC 3986; "?" and "#" are already split off),
        # and the user-info at its last "@", as urllib and httpx read it.
        authority, slash, path = rest[2:].partition("/")
        _userinfo, at, host = authority.rpartition("@")
        rest = "//" + (f"{MASK}@" if at else "") + host + slash + _chat_path(host, path)
    masked_query = "&".join(_mask_param(param) for param in query.split("&")) if query else ""
    return head + rest + question + masked_query + (hash_sign and hash_sign + MASK)


def redact_text(text: str) -> str:
    """`text` (an error message, a reason) with every URL in it redacted by redact_url. A URL
    ends at whitespace, a quote or an angle bracket, which an error message puts around one;
    a backslash does not end it (a repr escapes a control byte inside it)."""
    return URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)


def _chat_path(host: str, path: str) -> str:
    """`path` (after the authority's slash), its token masked when it is a chat webhook's."""
    name = host.split(":")[0].lower()  # without the port
    for domain, prefix in CHAT_WEBHOOKS:
        if (name == domain or name.endswith("." + domain)) and path.startswith(prefix):
            return prefix + MASK
    return TELEGRAM_BOT.sub(f"bot{MASK}", path)


def _mask_param(param: str) -> str:
    """`name=value` keeps its name; a bare item may itself be the secret, so it goes whole."""
    name, equals, _value = param.partition("=")
    if not equals:
        return MASK if param else ""
    return f"{name}={MASK}"


def is_url_key(key: str) -> bool:
    return key in URL_KEYS or key.endswith("_url")


def redact_urls(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every string under a key that holds a URL, redacted."""
    for key, value in event_dict.items():
        if isinstance(value, str) and is_url_key(key):
            event_dict[key] = redact_url(value)
    return event_dict
