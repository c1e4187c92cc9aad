"""Bearer tokens for what `newsmon serve` exposes beyond health and metrics.

The tokens come from the environment (NEWSMON_API_TOKEN, NEWSMON_VIEW_TOKEN), never from
the config folder, which is often kept in git."""

from __future__ import annotations

import hmac
import os

API_TOKEN_ENV = "NEWSMON_API_TOKEN"
VIEW_TOKEN_ENV = "NEWSMON_VIEW_TOKEN"


def token_from_env(name: str) -> str | None:
    """The token set in `name`, or None when it is unset or blank."""
    return os.environ.get(name, "").strip() or None


def bearer_matches(authorization: str | None, tokens: tuple[str, ...]) -> bool:
    """Whether an Authorization header carries one of `tokens`. Every token is compared, in
    constant time, so the answer's timing tells nothing about how much of a guess was right."""
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.strip().encode(), token.encode())
    return matched
