"""Standard Webhooks signing: the headers that let a receiver verify a delivery.

signature = base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), where key is
the base64-decoded part of the secret after "whsec_". With several secrets (key rotation)
the header carries one "v1," signature per secret, space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as random_secrets

from monitor.core import __version__


def new_secret() -> str:
    return "whsec_" + base64.b64encode(random_secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(
    secrets: tuple[str, ...], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
        "user-agent": f"newsmon/{__version__}",
    }
