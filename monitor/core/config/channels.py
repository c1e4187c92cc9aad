"""What a subscription's format needs beside its topics: a webhook's `url` and signing
secret, a Telegram chat and its bot's token, email's recipients. A key one format needs is
refused with another, so that a subscription never carries a key it does not use."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from typing import Any

from monitor.core.config.reading import Reader, shown
from monitor.core.config.values import email_address
from monitor.core.models import Format

CHANNEL_KEYS = frozenset({"url", "secret", "secret_env", "chat_id", "to"})
CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
# The keys each format needs; a webhook format also takes one of secret or secret_env.
REQUIRED = {Format.TELEGRAM: ("chat_id", "secret_env"), Format.EMAIL: ("to",)}
BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True)
class Channel:
    """The Subscription fields that say where its messages go."""

    url: str
    secrets: tuple[str, ...] = ()
    chat_id: str = ""
    bot_token: str = ""
    to: tuple[str, ...] = ()


def secret_check(value: str) -> str | None:
    if not value.startswith("whsec_"):
        return "must start with 'whsec_' followed by base64 (generate one with: newsmon secret)"
    try:
        key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except ValueError:
        return "the part after 'whsec_' is not valid base64"
    if len(key) < 24:
        return "key is too short: use at least 24 random bytes (newsmon secret makes one)"
    return None


def secret_values(value: str | list[Any]) -> str | None:
    """One secret, or several (a list) for key rotation: the first problem, or None."""
    values = [value] if isinstance(value, str) else value
    if not values:
        return "no secret given; make one with `newsmon secret`"
    problems = (secret_check(v) if isinstance(v, str) else "must be a string" for v in values)
    return next((problem for problem in problems if problem), None)


def chat_id(value: str | int) -> str | None:
    if CHAT_ID.fullmatch(str(value)):
        return None
    return f"{shown(value)} is not a chat id; write its number (-100...) or @channelusername"


def addresses(value: list[Any]) -> str | None:
    if not all(isinstance(v, str) for v in value):
        return 'must be a list of addresses, each in quotes: ["desk@example.org"]'
    return next(filter(None, map(email_address, value)), None)


def read_channel(
    reader: Reader,
    table: dict[str, Any],
    fine: dict[str, Any],
    where: str,
    format_: Format,
    allowed: frozenset[str],
) -> Channel | None:
    """Where a subscription of `format_` sends, from its table (`fine`: the keys that passed
    their declared check); None, with the problems recorded, when it cannot tell."""
    required = REQUIRED.get(format_, ("url",))
    taken = required if not format_.webhook else ("url", "secret", "secret_env")
    found = len(reader.problems)
    for key in sorted(CHANNEL_KEYS.intersection(table) - set(taken)):
        reader.problem(f"{where}{key}", f"is not used with format {format_.value!r}; remove it")
    if format_ is Format.TELEGRAM and "secret_env" not in allowed:
        reader.problem(
            f"{where}format",
            "a Telegram bot's token is read from the server's environment: "
            "declare this subscription in subscriptions.toml, with secret_env",
        )
    else:
        for key in required:
            if key not in table:
                reader.problem(f"{where}{key}", f"is required with format {format_.value!r}")
    if len(reader.problems) > found or not all(key in fine for key in required):
        return None
    if format_ is Format.TELEGRAM:
        token = _bot_token(reader, fine["secret_env"], where)
        return Channel(f"telegram:{fine['chat_id']}", chat_id=str(fine["chat_id"]), bot_token=token)
    if format_ is Format.EMAIL:
        return Channel("mailto:" + ",".join(fine["to"]), to=tuple(fine["to"]))
    return Channel(fine["url"], _secrets(reader, table, fine, where))


def _bot_token(reader: Reader, env_name: str, where: str) -> str:
    """The bot's token from the environment; never quoted in a problem."""
    if env_name not in os.environ:
        reader.problem(
            f"{where}secret_env", f"environment variable {env_name} is not set; export it"
        )
        return ""
    token = os.environ[env_name].strip()
    if not BOT_TOKEN.fullmatch(token):
        reader.problem(
            f"{where}secret_env ({env_name})",
            "does not hold a bot token (digits, ':', then 20 or more letters, digits, '_' "
            "or '-'); copy the one @BotFather gave",
        )
    return token


def _secrets(
    reader: Reader, table: dict[str, Any], fine: dict[str, Any], where: str
) -> tuple[str, ...]:
    """One secret, or several (a list, or space-separated in the variable) for key rotation."""
    if ("secret" in table) == ("secret_env" in table):
        reader.problem(f"{where}secret", "set exactly one of 'secret' or 'secret_env'")
        return ()
    if "secret" in fine:
        return (fine["secret"],) if isinstance(fine["secret"], str) else tuple(fine["secret"])
    env_name = fine.get("secret_env")
    if env_name is None:  # the key is faulty, or not allowed here: a problem already
        return ()
    if env_name not in os.environ:
        reader.problem(
            f"{where}secret_env", f"environment variable {env_name} is not set; export it"
        )
        return ()
    values = os.environ[env_name].split()
    if problem := secret_values(values):
        reader.problem(f"{where}secret_env ({env_name})", problem)
        return ()
    return tuple(values)
