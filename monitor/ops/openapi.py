"""The OpenAPI 3.1 document of `/api/v1`, served at `/openapi.json`.

Written by hand rather than generated from docstrings: it states every body and answer in
one readable place, and tests/test_api.py checks that it lists every route the API serves and
(with schemathesis) that every answer of a real server conforms to it. Bounds are those
config.py checks, read from its constants.
"""

from __future__ import annotations

from typing import Any

from monitor.core import __version__, keys
from monitor.core.config import BACKFILL_HOURS, DIGEST_MINUTES, NAME_PATTERN
from monitor.core.models import Format

MESSAGES_LISTED = 50  # GET .../messages without ?limit=

_ID = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"}
_SECRET = {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/=]+$"}
_TOPICS = {
    "type": "array",
    "items": {"type": "string"},
    "minItems": 1,
    "description": 'topics of topics.toml, or ["*"] for every entry',
}
_TIME = {"type": "string", "format": "date-time"}
_NAMES = {"type": "array", "items": {"type": "string"}, "minItems": 1}
# What a subscription may add to its topics: the shape of its messages, filters, digests
# and the feeds' past; each optional, as in subscriptions.toml, and left out of an answer
# when not set.
_FILTERS = {
    "feeds": {**_NAMES, "description": "only entries of these feeds of feeds.toml"},
    "tags": {**_NAMES, "description": "only entries of feeds carrying one of these tags"},
    "keywords": {**_NAMES, "description": "only entries mentioning one of these"},
    "exclude_keywords": {**_NAMES, "description": "no entry mentioning one of these"},
}
_OPTIONS = {
    "format": {"enum": [f.value for f in Format], "default": Format.STANDARD.value},
    **_FILTERS,
    "digest_minutes": {
        "type": "integer",
        "minimum": DIGEST_MINUTES.low,
        "maximum": DIGEST_MINUTES.high,
        "description": "one message every this many minutes; left out: one a story",
    },
    "backfill_hours": {
        "type": "number",
        "minimum": BACKFILL_HOURS.low,
        "maximum": BACKFILL_HOURS.high,
    },
}
# In a PATCH, null puts an option back to its default, and [] removes a filter too.
_PATCH_OPTIONS = {
    name: (
        {"type": ["array", "null"], "items": {"type": "string"}}
        if name in _FILTERS
        else {"anyOf": [schema, {"type": "null"}]}
    )
    | {
        "description": f"{schema.get('description', name)}; "
        + ("[] or null removes it" if name in _FILTERS else "null leaves it out, as if never set")
    }
    for name, schema in _OPTIONS.items()
}

SCHEMAS: dict[str, Any] = {
    "SubscriptionCreate": {
        "type": "object",
        "description": "The keys of a [[subscriptions]] table of subscriptions.toml, but "
        "secret_env. Without a secret, newsmon makes one and returns it once.",
        "required": ["id", "url", "topics"],
        "properties": {
            "id": _ID,
            "url": {"type": "string", "format": "uri"},
            "topics": _TOPICS,
            "secret": {"oneOf": [_SECRET, {"type": "array", "items": _SECRET, "minItems": 1}]},
            **_OPTIONS,
        },
    },
    "SubscriptionPatch": {
        "type": "object",
        "description": "Keys to replace; the result is checked whole. The id stays; the "
        "secret changes only by rotation.",
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "topics": _TOPICS,
            **_PATCH_OPTIONS,
        },
    },
    "Subscription": {
        "type": "object",
        "required": ["id", "url", "url_masked", "topics", "source"],
        "properties": {
            "id": _ID,
            "url": {
                "type": "string",
                "description": "with any credential masked (***): user-info, query values, "
                "a Slack, Discord or Teams token",
            },
            "url_masked": {"type": "boolean", "description": "whether `url` had one masked"},
            "topics": _TOPICS,
            "source": {"enum": ["api", "subscriptions.toml"]},
            **_OPTIONS,
            "created": _TIME,
            "updated": _TIME,
            "secret": {**_SECRET, "description": "only in the answer to a create that made it"},
        },
    },
    "SubscriptionList": {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"}}
        },
    },
    "Rotate": {
        "type": "object",
        "description": "Optional: the new secret; without it newsmon makes one.",
        "properties": {"secret": _SECRET},
    },
    "Rotated": {
        "type": "object",
        "properties": {"secret": _SECRET, "old_secrets_sign_until": _TIME},
    },
    "Empty": {"type": "object", "description": "nothing in it is read"},
    "TestSent": {
        "type": "object",
        "properties": {"message_id": {"type": "string"}, "type": {"const": "message.test"}},
    },
    "Attempt": {
        "type": "object",
        "properties": {
            "attempt": {"type": "integer"},
            "at": _TIME,
            "status": {"enum": ["delivered", "retry", "failed", "dead"]},
            "http_status": {"type": ["integer", "null"]},
            "duration_ms": {"type": "number"},
            "error": {"type": ["string", "null"]},
        },
    },
    "MessageList": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "the webhook-id"},
                        "subscription_id": {"type": "string"},
                        "type": {"type": "string"},
                        "created": _TIME,
                        "entry_id": {"type": "string"},
                        "story_id": {"type": "string"},
                        "title": {"type": "string"},
                        "attempts": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Attempt"},
                        },
                    },
                },
            }
        },
    },
    "Replay": {
        "type": "object",
        "properties": {
            "messages": {
                "enum": ["dead", "all"],
                "default": "dead",
                "description": "dead letters, or every message first sent since `since`",
            },
            "since": {
                "type": "string",
                "description": "an ISO time, or a duration ago: 30m, 2h, 7d; required for all",
            },
        },
    },
    "Replayed": {"type": "object", "properties": {"queued": {"type": "integer"}}},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "field": {"type": "string", "description": "the body key or parameter at fault"},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _operation(
    summary: str, answer: tuple[str, str] | None, body: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One operation: its summary, its success answer (None: 204), the errors, and its body's
    schema (`body`, "optional:NAME" when the body may be left out)."""
    responses: dict[str, Any] = {
        "401": {"description": "missing or wrong token", **_ref("Error")},
        "429": {
            "description": "too many wrong tokens from this client of late",
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            **_ref("Error"),
        },
        "404": {"description": "no such subscription", **_ref("Error")},
        "409": {
            "description": "defined in subscriptions.toml, or the id is taken",
            **_ref("Error"),
        },
        "422": {"description": "a field is wrong; `field` names it", **_ref("Error")},
    }
    if answer is None:
        responses["204"] = {"description": "done"}
    else:
        status, schema = answer
        responses[status] = {"description": "done", **_ref(schema)}
    operation: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if body:
        responses["400"] = {
            "description": "the body is not a JSON object, or repeats a key",
            **_ref("Error"),
        }
        responses["413"] = {"description": "the body is too large", **_ref("Error")}
        optional, _, schema = body.rpartition(":")
        operation["requestBody"] = {"required": not optional, **_ref(schema)}
    return operation


_ID_PARAMETER = [{"name": "id", "in": "path", "required": True, "schema": _ID}]


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "newsmon subscriptions API", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            "/subscriptions": {
                "get": _operation(
                    "every subscription, the file's and the API's", ("200", "SubscriptionList")
                ),
                "post": _operation(
                    "create a subscription", ("201", "Subscription"), "SubscriptionCreate"
                ),
            },
            "/subscriptions/{id}": {
                "parameters": _ID_PARAMETER,
                "get": _operation("one subscription", ("200", "Subscription")),
                "patch": _operation(
                    "change the keys given", ("200", "Subscription"), "SubscriptionPatch"
                ),
                "delete": _operation("delete a subscription made over the API", None),
            },
            "/subscriptions/{id}/secret/rotate": {
                "parameters": _ID_PARAMETER,
                "post": _operation(
                    "a new secret; the old one signs beside it for 24 h",
                    ("200", "Rotated"),
                    "optional:Rotate",
                ),
            },
            "/subscriptions/{id}/test": {
                "parameters": _ID_PARAMETER,
                "post": _operation(
                    "send a message.test through delivery", ("202", "TestSent"), "optional:Empty"
                ),
            },
            "/subscriptions/{id}/messages": {
                "parameters": _ID_PARAMETER,
                "get": _operation(
                    "recent messages, newest first, with their attempts",
                    ("200", "MessageList"),
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": keys.MESSAGES_KEPT,
                                "default": MESSAGES_LISTED,
                            },
                        }
                    ],
                ),
            },
            "/subscriptions/{id}/replay": {
                "parameters": _ID_PARAMETER,
                "post": _operation(
                    "send dead letters, or every message since a time, again",
                    ("202", "Replayed"),
                    "optional:Replay",
                ),
            },
        },
    }
