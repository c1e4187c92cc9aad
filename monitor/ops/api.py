"""`/api/v1`: subscriptions over HTTP, for subscribers who cannot edit subscriptions.toml.

Off (every route 404) unless NEWSMON_API_TOKEN is set; then every call needs
`Authorization: Bearer <token>`, and a client that sent too many wrong ones of late is
answered 429 (auth.FailureThrottle). Bodies are JSON objects with the keys of a
[[subscriptions]] table (no `secret_env`), checked by the config's one subscription check, so
a mistake is a 4xx naming the key; a key given twice is a 400, and every number of a request
is read by `request_number`. Subscriptions made here live in Redis; those of
subscriptions.toml are listed too, and win an id clash, but only the file changes them (409).
Updates are PATCH: the keys given replace the stored ones (null, or [] for a filter, removes
one), the result is checked whole. A URL is shown as logs show it, credentials masked.

Also public, token or not: `/openapi.json` (when the API is on) and `/schemas/NAME.json`,
the JSON Schemas of every message type: the contract a receiver codes against.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from monitor.core import keys
from monitor.core.config import SMTP_NEEDED, Problem, check_subscription
from monitor.core.http import refused_url
from monitor.core.models import Format, Subscription
from monitor.core.redact import redact_url
from monitor.core.subscriptions import API_KEYS, Record
from monitor.ops import api_bodies
from monitor.ops.errors import (
    InvalidSubscription,
    OperationError,
    OwnedByFile,
    SubscriptionExists,
    UnknownSubscription,
    UnreadableTime,
)
from monitor.ops.openapi import MESSAGES_LISTED
from monitor.ops.request_body import BodyRefused, read_capped
from monitor.ops.root import Root
from monitor.ops.times import iso_time, parse_since

PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024  # a subscription is well under 1 KiB
BODY_SECONDS = 10  # to send a body once the head is in
MAX_NUMBER_CHARS = 32  # "-1.7976931348623157e+308" has 24; int() of 5000 digits raises
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)
FILTER_KEYS = frozenset({"feeds", "tags", "keywords", "exclude_keywords"})
# What a PATCH may remove (null; [] too for a filter): what a table may leave out.
REMOVABLE_KEYS = API_KEYS - {"id", "topics", "secret"}
UNSIGNED = (Format.TELEGRAM, Format.EMAIL)

log = structlog.get_logger()


class AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: a key or id quoted back from a request
    may hold a lone surrogate, which UTF-8 cannot encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


class ApiError(Exception):
    """A request the API refuses: its status, a message, and the field at fault, if one."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
        self.problems: list[dict[str, str]] = []

    @classmethod
    def refused(cls, exc: OperationError) -> ApiError:
        """What the operator's root refused, as the API says it."""
        if isinstance(exc, UnknownSubscription):
            return cls(404, f"no subscription {exc.subscription_id!r}")
        if isinstance(exc, OwnedByFile | SubscriptionExists | InvalidSubscription):
            return cls(409, str(exc), "id")
        return cls(422, str(exc))

    @classmethod
    def invalid(cls, problems: list[Problem]) -> ApiError:
        error = cls(422, problems[0].message, problems[0].key)
        error.problems = [{"field": p.key, "message": p.message} for p in problems]
        return error

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.problems:
            body["problems"] = self.problems
        return AsciiJSON(body, status_code=self.status, headers=self.headers)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"www-authenticate": "Bearer"} if self.status == 401 else None


def request_number(text: str, field: str) -> int | float:
    """A number as a request writes it (a query or path parameter, a JSON body's value): its
    length bounded before it is converted (int() of thousands of digits raises, or takes
    long), digits ASCII only; an int unless it has a fraction or an exponent. Else a 422
    naming `field`."""
    if len(text) > MAX_NUMBER_CHARS or not NUMBER.fullmatch(text):
        raise ApiError(
            422, f"must be a number of at most {MAX_NUMBER_CHARS} characters, e.g. 50", field
        )
    return int(text) if text.lstrip("-").isdigit() else float(text)


async def json_body(request: Request) -> Any:
    """The body's JSON (None when empty), at most MAX_BODY_BYTES, sent within BODY_SECONDS."""
    try:
        content = await read_capped(request, cap=MAX_BODY_BYTES, seconds=BODY_SECONDS)
    except BodyRefused as exc:
        if exc.status == 413:
            raise ApiError(413, f"a body may have at most {MAX_BODY_BYTES} bytes") from None
        raise ApiError(exc.status, f"the body was {exc.reason}") from None
    if not content:
        return None
    try:
        parsed = json.loads(
            content, object_pairs_hook=_json_object, parse_int=_Number, parse_float=_Number
        )
    except (ValueError, RecursionError) as exc:  # bad UTF-8 is a ValueError too
        raise ApiError(400, f"the body is not JSON ({exc})") from None
    return _numbers(parsed, "body")


class _Number(str):
    """A JSON number's text, as json.loads found it: converted by request_number once the key
    it is under is known, so a refusal names that key."""


def _numbers(value: Any, field: str) -> Any:
    """`value` with every _Number in it (in lists too) read by request_number as `field`."""
    if isinstance(value, _Number):
        return request_number(value, field)
    if isinstance(value, list):
        return [_numbers(item, field) for item in value]
    return value


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object of the body (at any depth), refused when it gives a key twice: json
    keeps the last, where another reader of the same body might keep the first."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ApiError(400, f"the key {key!r} is given twice; give it once", key)
        found[key] = _numbers(value, key)
    return found


def _object(body: Any, *, required: bool = True) -> dict[str, Any]:
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class Api:
    """The handlers: each takes the request and its parsed body, returns (status, JSON)."""

    def __init__(self, root: Root):
        self.root = root
        self.topic_names = {topic.name for topic in root.config.topics}
        self.feeds = root.config.feeds
        self.from_file = {s.id for s in root.config.subscriptions}

    def list(self, request: Request, body: None) -> tuple[int, Any]:
        records = self.root.store.records()
        every_subscription = self.root.subscriptions.all()
        return 200, {"data": [self._view(s, records.get(s.id)) for s in every_subscription]}

    def get(self, request: Request, body: None) -> tuple[int, Any]:
        subscription = self._subscription(request)
        return 200, self._view(subscription, self.root.store.get(subscription.id))

    def create(self, request: Request, body: Any) -> tuple[int, Any]:
        table = dict(_object(body))
        # A webhook's deliveries are signed: without a secret given, newsmon makes one.
        made_secret = "secret" not in table and table.get("format") not in UNSIGNED
        if made_secret:
            table["secret"] = self.root.new_secret()
        subscription = self._checked(table)
        if subscription.format.webhook:
            table["secret"] = list(subscription.secrets)
        record = Record(table)
        self.root.create(record)
        log.info("subscription.created", subscription=subscription.id, url=subscription.url)
        view = self._view(subscription, record)
        if made_secret:  # shown this once; never again
            view["secret"] = subscription.secrets[0]
        return 201, view

    def update(self, request: Request, body: Any) -> tuple[int, Any]:
        changes = _object(body)
        removed = {
            key
            for key, value in changes.items()
            if key in REMOVABLE_KEYS and (value is None or (key in FILTER_KEYS and value == []))
        }
        if "secret" in changes:
            raise ApiError(
                422,
                f"change it with POST {PREFIX}/subscriptions/{{id}}/secret/rotate",
                "secret",
            )

        checked: list[Subscription] = []  # what the change made, for the answer

        def change(record: Record) -> Record:
            if changes.get("id", record.id) != record.id:
                raise ApiError(422, "cannot change; create a subscription under the new id", "id")
            url = record.table.get("url", "")
            if changes.get("url") == redact_url(url) != url:
                raise ApiError(
                    422,
                    "is the URL as shown, its credentials masked; send the whole URL, "
                    "or leave url out to keep it",
                    "url",
                )
            table = {k: v for k, v in {**record.table, **changes}.items() if k not in removed}
            checked[:] = [self._checked(table)]
            return dataclasses.replace(record, table=table, updated=time.time())

        updated = self.root.change(request.path_params["id"], change)
        log.info("subscription.updated", subscription=updated.id, keys=sorted(changes))
        return 200, self._view(checked[0], updated)

    def delete(self, request: Request, body: None) -> tuple[int, Any]:
        sub_id = request.path_params["id"]
        self.root.delete(sub_id)
        log.info("subscription.deleted", subscription=sub_id)
        return 204, None

    def rotate(self, request: Request, body: Any) -> tuple[int, Any]:
        """A new secret signs from now on; the old ones sign beside it for a day more."""
        given = _object(body, required=False)
        if unknown := sorted(set(given) - api_bodies.Rotate.__optional_keys__):
            raise ApiError(422, "unknown key; expected only: secret", unknown[0])
        new = given.get("secret", self.root.new_secret())
        rotated, until = self.root.rotate_secret(
            request.path_params["id"],
            lambda table: self._checked({**table, "secret": new}).secrets,
        )
        log.info("subscription.rotated", subscription=rotated.id, old_secrets_until=iso_time(until))
        secret = rotated.table["secret"][0]
        return 200, {"secret": secret, "old_secrets_sign_until": iso_time(until)}

    def test(self, request: Request, body: Any) -> tuple[int, Any]:
        """A `message.test` through the delivery queue, as any alert goes."""
        subscription = self._subscription(request)
        _object(body, required=False)
        alert = self.root.send_test(subscription.id)
        return 202, {"message_id": alert.id, "type": alert.type}

    def messages(self, request: Request, body: None) -> tuple[int, Any]:
        subscription = self._subscription(request)
        limit = request_number(request.query_params.get("limit", str(MESSAGES_LISTED)), "limit")
        if not isinstance(limit, int) or not 1 <= limit <= keys.MESSAGES_KEPT:
            raise ApiError(422, f"must be a whole number from 1 to {keys.MESSAGES_KEPT}", "limit")
        messages = self.root.recent_messages(subscription.id, limit)
        for message in messages:
            message["created"] = iso_time(message["created"])
            for attempt in message["attempts"]:
                attempt["at"] = iso_time(attempt["at"])
        return 200, {"data": messages}

    def replay(self, request: Request, body: Any) -> tuple[int, Any]:
        """Dead letters again (all, or those that died since a time), or every message first
        sent since a time (`"messages": "all"`), each under its own webhook-id."""
        subscription = self._subscription(request)
        given = _object(body, required=False)
        if unknown := sorted(set(given) - api_bodies.Replay.__optional_keys__):
            raise ApiError(422, "unknown key; expected: since, messages", unknown[0])
        which = given.get("messages", "dead")
        if which not in ("dead", "all"):
            raise ApiError(422, 'must be "dead" or "all"', "messages")
        since = _since(given.get("since"))
        if which == "dead":
            queued, _ = self.root.replay([], subscription.id, since)
        elif since is None:
            raise ApiError(422, 'is required with "messages": "all"', "since")
        else:
            queued = self.root.replay_sent(subscription.id, since)
        log.info("deliveries.replayed", subscription=subscription.id, alerts=queued, which=which)
        return 202, {"queued": queued}

    def _checked(self, table: dict[str, Any]) -> Subscription:
        """The subscription `table` describes, or a 422 naming the field: the config's own
        check, then the SSRF guard on the URL's host."""
        subscription, problems = check_subscription(
            table, self.topic_names, self.feeds, source="request body", keys=API_KEYS
        )
        if subscription is None:
            raise ApiError.invalid(problems)
        if subscription.format.webhook and (refused := refused_url(subscription.url)):
            raise ApiError(422, refused, "url")
        if subscription.format is Format.EMAIL and not self.root.config.settings.smtp_host:
            raise ApiError(422, SMTP_NEEDED, "format")
        return subscription

    def _subscription(self, request: Request) -> Subscription:
        return self.root.subscription(request.path_params["id"])

    def _view(self, subscription: Subscription, record: Record | None) -> api_bodies.Subscription:
        """A subscription as the API shows it: as it was written (tags as tags), without its
        secrets, its URL masked as logs mask it (a chat service's token is in the path), and
        the options not set left out, as the table leaves them out."""
        view: api_bodies.Subscription = {
            "id": subscription.id,
            "topics": sorted(subscription.topics),
            "format": subscription.format.value,
        }
        if subscription.format.webhook:
            view["url"] = redact_url(subscription.url)
            view["url_masked"] = view["url"] != subscription.url
        if subscription.chat_id:
            view["chat_id"] = subscription.chat_id
        if subscription.to:
            view["to"] = list(subscription.to)
        filters = {
            "feeds": sorted(subscription.feed_names),
            "tags": sorted(subscription.tags),
            "keywords": list(subscription.keywords),
            "exclude_keywords": list(subscription.exclude_keywords),
        }
        view.update((name, values) for name, values in filters.items() if values)
        if subscription.digest_minutes:
            view["digest_minutes"] = subscription.digest_minutes
        view["backfill_hours"] = subscription.backfill_hours
        from_file = subscription.id in self.from_file
        view["source"] = "subscriptions.toml" if from_file else "api"
        if record and not from_file:
            view["created"], view["updated"] = iso_time(record.created), iso_time(record.updated)
        return view


def _since(value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(422, "must be a string: an ISO time or a duration (30m, 2h, 7d)", "since")
    try:
        return parse_since(value)
    except (UnreadableTime, OverflowError, ValueError) as exc:
        raise ApiError(422, str(exc) or "unreadable time", "since") from None
