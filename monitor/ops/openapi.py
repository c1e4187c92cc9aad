"""The OpenAPI 3.1 document of `/api/v1`, served at `/openapi.json`.

Its schemas are generated from the declarations the API checks and builds its bodies by: the
subscription table of subscriptions.toml (monitor/core/config/subscription.py) and the other
bodies (api_bodies.py). tests/test_api.py checks that it lists every route the API serves and
(with schemathesis) that every answer of a real server conforms to it.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from monitor.core import __version__, keys
from monitor.core.config.subscription import Name, SubscriptionTable
from monitor.core.subscriptions import API_KEYS
from monitor.ops import api_bodies

MESSAGES_LISTED = 50  # GET .../messages without ?limit=
# What a PATCH cannot put back to a default: the subscription's identity and its secret.
FIXED_KEYS = ("id", "url", "topics", "secret")
BODIES = (
    SubscriptionTable,
    api_bodies.Subscription,
    api_bodies.SubscriptionList,
    api_bodies.Rotate,
    api_bodies.Rotated,
    api_bodies.Empty,
    api_bodies.TestSent,
    api_bodies.MessageList,
    api_bodies.Replay,
    api_bodies.Replayed,
    api_bodies.Error,
)
REF = "#/components/schemas/{model}"


class _Schema(GenerateJsonSchema):
    """Pydantic's JSON Schema, without a title on every property ("Id" for `id`)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schemas() -> dict[str, Any]:
    """The components: each declared body, by name, and the subscription table made into the
    bodies that create and change a subscription."""
    adapters = [(body, "validation", TypeAdapter(body)) for body in BODIES]
    _, definitions = TypeAdapter.json_schemas(adapters, ref_template=REF, schema_generator=_Schema)
    found = definitions["$defs"]
    table = found.pop(SubscriptionTable.__name__)
    found["SubscriptionCreate"] = _create(table)
    found["SubscriptionPatch"] = _patch(table)
    return found


def _create(table: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in table["properties"].items() if k in API_KEYS}
    return {
        **table,
        "title": "SubscriptionCreate",
        "description": "The keys of a [[subscriptions]] table of subscriptions.toml, but "
        "secret_env. Without a secret, newsmon makes one and returns it once.",
        "properties": properties,
    }


def _patch(table: dict[str, Any]) -> dict[str, Any]:
    """Keys to replace: null puts an option back to its default, and [] removes a filter too."""
    properties = {"url": table["properties"]["url"], "topics": table["properties"]["topics"]}
    for key, schema in table["properties"].items():
        if key in FIXED_KEYS or key not in API_KEYS:
            continue
        description = schema.get("description", key)
        if schema.get("type") == "array":
            allowed = {k: v for k, v in schema.items() if k not in ("minItems", "description")}
            removes = "[] or null removes it"
        else:
            allowed = {k: v for k, v in schema.items() if k != "description"}
            removes = "null leaves it out, as if never set"
        properties[key] = {
            "anyOf": [allowed, {"type": "null"}],
            "description": f"{description}; {removes}",
        }
    return {
        "type": "object",
        "title": "SubscriptionPatch",
        "description": "Keys to replace; the result is checked whole. The id stays; the "
        "secret changes only by rotation.",
        "properties": properties,
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
            "description": "defined in subscriptions.toml, the id is taken, or made over the "
            "API and no longer valid for the config (PATCH or DELETE it)",
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


_ID_PARAMETER = [
    {"name": "id", "in": "path", "required": True, "schema": TypeAdapter(Name).json_schema()}
]


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "newsmon subscriptions API", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
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
