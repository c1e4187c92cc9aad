"""The subscriptions API over real HTTP: `newsmon serve` on 127.0.0.1, the real Redis, real
workers and a real receiver. Every call, every refusal, and what a subscriber sees."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from monitor.core.subscriptions import Record, Subscriptions, SubscriptionStore
from monitor.ops import api, api_routes
from monitor.ops.auth import API_TOKEN_ENV, FailureThrottle
from monitor.ops.root import Root
from tests.helpers import SECRET, load, write_config

TOKEN = "test-token-0123456789-0123456789-0123456789"
FILE_SUBSCRIPTION = {
    "id": "desk",
    "url": "https://hooks.example/desk",
    "topics": ["diplomacy"],
    "secret": SECRET,
}
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw"


@dataclass
class Served:
    url: str
    client: httpx.Client
    config_dir: object

    def call(self, method: str, path: str, **options: object) -> httpx.Response:
        return self.client.request(method, f"{self.url}/api/v1{path}", **options)


@pytest.fixture
def served(tmp_path, serve_url, monkeypatch) -> Iterator[Callable[..., Served]]:
    """`newsmon serve` with the API on (a token set) and one subscription in the file."""
    clients = []

    def begin(
        feeds: list[dict] = (), token: str | None = TOKEN, subscriptions: list[dict] = ()
    ) -> Served:
        if token:
            monkeypatch.setenv(API_TOKEN_ENV, token)
        else:
            monkeypatch.delenv(API_TOKEN_ENV, raising=False)
        directory = write_config(tmp_path / "config", feeds, [FILE_SUBSCRIPTION, *subscriptions])
        client = httpx.Client(headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
        clients.append(client)
        return Served(serve_url(load(directory)), client, directory)

    yield begin
    for client in clients:
        client.close()


def body(**fields: object) -> dict:
    return {"id": "ops", "url": "https://hooks.example/ops", "topics": ["health"], **fields}


# What a subscription shows of the options it was made without (filters and digests not
# set are left out, as a table leaves them out), and of a URL without a credential.
OPTIONS_LEFT_OUT = {"format": "standard", "backfill_hours": 0.0, "url_masked": False}


def test_the_api_is_off_without_a_token_but_the_schemas_are_served(served):
    base = served(token=None).url
    assert httpx.get(f"{base}/api/v1/subscriptions").status_code == 404
    assert httpx.get(f"{base}/openapi.json").status_code == 404
    schema = httpx.get(f"{base}/schemas/alert.created.json")
    assert schema.status_code == 200
    assert schema.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert httpx.get(f"{base}/schemas/nothing.json").status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}, {"authorization": "Basic x"}],
)
def test_a_missing_or_wrong_token_is_a_401(served, headers):
    base = served().url
    for method, path in (("GET", "/subscriptions"), ("POST", "/subscriptions/desk/test")):
        answer = httpx.request(method, f"{base}/api/v1{path}", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "token" in answer.json()["error"]
    # The schemas are the public contract: no token needed.
    assert httpx.get(f"{base}/schemas/alert.updated.json", headers=headers).status_code == 200


def test_create_list_get_update_delete(served, connection):
    server = served()
    made = server.call("POST", "/subscriptions", json=body())
    assert made.status_code == 201
    view = made.json()
    secret = view.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert view == {
        **body(),
        **OPTIONS_LEFT_OUT,
        "source": "api",
        "created": view["created"],
        "updated": view["created"],
    }
    given_secret = server.call("POST", "/subscriptions", json=body(id="ops2", secret=SECRET))
    assert given_secret.status_code == 201 and "secret" not in given_secret.json()

    listed = server.call("GET", "/subscriptions").json()["data"]
    assert [(s["id"], s["source"]) for s in listed] == [
        ("desk", "subscriptions.toml"),
        ("ops", "api"),
        ("ops2", "api"),
    ]
    assert all("secret" not in s and "secrets" not in s for s in listed)
    assert server.call("GET", "/subscriptions/ops").json()["topics"] == ["health"]
    assert server.call("GET", "/subscriptions/desk").json()["source"] == "subscriptions.toml"

    changed = server.call("PATCH", "/subscriptions/ops", json={"topics": ["energy", "health"]})
    assert changed.status_code == 200 and changed.json()["topics"] == ["energy", "health"]
    assert server.call("GET", "/subscriptions/ops").json()["topics"] == ["energy", "health"]
    stored = SubscriptionStore(connection).get("ops")
    assert stored.table["secret"] == [secret]  # a PATCH leaves the secret alone

    again = server.call("POST", "/subscriptions", json=body())
    assert again.status_code == 409 and again.json()["field"] == "id"

    assert server.call("DELETE", "/subscriptions/ops").status_code == 204
    assert server.call("GET", "/subscriptions/ops").status_code == 404
    assert server.call("DELETE", "/subscriptions/ops").status_code == 404
    assert [s["id"] for s in server.call("GET", "/subscriptions").json()["data"]] == [
        "desk",
        "ops2",
    ]
    # Stored as versioned JSON, not a pickle.
    raw = json.loads(connection.hget("newsmon:subscriptions", "ops2"))
    assert raw["v"] == 1 and raw["table"]["id"] == "ops2"


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/subscriptions", body(id="desk")),
        ("PATCH", "/subscriptions/desk", {"topics": ["health"]}),
        ("DELETE", "/subscriptions/desk", None),
        ("POST", "/subscriptions/desk/secret/rotate", None),
    ],
)
def test_a_subscription_of_the_file_cannot_be_changed_over_the_api(
    served, connection, method, path, payload
):
    server = served()
    answer = server.call(method, path, json=payload)
    assert answer.status_code == 409
    assert answer.json()["field"] == "id"
    assert "subscriptions.toml" in answer.json()["error"]
    assert SubscriptionStore(connection).records() == {}
    assert server.call("GET", "/subscriptions/desk").json()["topics"] == ["diplomacy"]


def test_the_file_wins_a_clash_with_a_stored_subscription(served, connection, tmp_path):
    """A subscription made over the API, then added to the file under the same id: the
    file's is the one that counts, and the API will not change it."""
    server = served()
    assert server.call("POST", "/subscriptions", json=body(id="later")).status_code == 201
    clash = {**FILE_SUBSCRIPTION, "id": "later", "topics": ["energy"]}
    directory = write_config(tmp_path / "config2", subscriptions=[FILE_SUBSCRIPTION, clash])
    view = Subscriptions(load(directory), connection).get("later")
    assert view.topics == frozenset({"energy"})


def test_a_stored_subscription_the_config_no_longer_allows_says_so_until_fixed(served, connection):
    """Made for a topic topics.toml has since lost: alerted no more, and every call that
    names it says why and what to do, where GET used to deny it and POST to affirm it."""
    SubscriptionStore(connection).create(Record({**body(topics=["sport"]), "secret": [SECRET]}))
    server = served()
    for method, path in (("GET", "/subscriptions/ops"), ("POST", "/subscriptions/ops/test")):
        answer = server.call(method, path)
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == (
            "subscription 'ops' was made over the API and no longer passes the check (topics: "
            "unknown topic 'sport'; known: culture, diplomacy, energy, frontline, health, "
            "humanitarian, migration, politics, or '*'): PATCH it to fix it, or DELETE it"
        )
    fixed = server.call("PATCH", "/subscriptions/ops", json={"topics": ["health"]})
    assert fixed.status_code == 200, fixed.text
    assert server.call("GET", "/subscriptions/ops").json()["topics"] == ["health"]


def test_a_change_that_races_another_runs_again_on_the_new_record(connection):
    """PATCH and rotate read, change and write a record: a write landing in between (another
    call) makes the change run again on what that write left, so neither is lost."""
    store = SubscriptionStore(connection)
    store.create(Record({**body(), "secret": [SECRET]}))
    seen = []

    def change(record: Record) -> Record:
        seen.append(record.table["url"])
        if len(seen) == 1:
            store.update(
                "ops", lambda r: replace(r, table={**r.table, "url": "https://b.example/"})
            )
        return replace(record, table={**record.table, "topics": ["energy"]})

    store.update("ops", change)
    assert seen == ["https://hooks.example/ops", "https://b.example/"]
    final = store.get("ops").table
    assert (final["url"], final["topics"]) == ("https://b.example/", ["energy"])


BAD_BODIES = [
    (body(topics=["sport"]), "topics", "unknown topic 'sport'"),
    (body(topics=[]), "topics", "is empty"),
    (body(topics="health"), "topics", "must be list"),
    (body(url="not a url"), "url", "not a usable http(s) URL"),
    (body(url="ftp://hooks.example/x"), "url", "needs http:// or https://"),
    (body(url="http://127.0.0.1:9/hook"), "url", "non-public address 127.0.0.1"),
    (body(url="http://169.254.169.254/latest"), "url", "non-public address 169.254.169.254"),
    (body(url="http://localhost:8000/"), "url", "non-public address"),
    (body(secret="hunter2"), "secret", "must start with 'whsec_'"),
    (body(secret="whsec_!!!"), "secret", "not valid base64"),
    (body(secret_env="HOOK_SECRET"), "secret_env", "unknown key"),
    (body(colour="red"), "colour", "unknown key"),
    ({"url": "https://hooks.example/x", "topics": ["*"]}, "id", "is required"),
    (body(id="has space"), "id", "must be 1-64 letters"),
]


@pytest.mark.parametrize(("payload", "field", "message"), BAD_BODIES)
def test_bad_input_is_a_422_naming_the_field(served, connection, payload, field, message):
    server = served()
    answer = server.call("POST", "/subscriptions", json=payload)
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert message in answer.json()["error"]
    assert SubscriptionStore(connection).records() == {}


def test_private_targets_are_accepted_when_allowed(served, private_targets):
    server = served()
    answer = server.call("POST", "/subscriptions", json=body(url="http://127.0.0.1:9/hook"))
    assert answer.status_code == 201


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"{not json", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b"", 400, "must be a JSON object"),
        (b"[" * 100_000, 413, "at most"),
        (json.dumps(body(pad="x" * api.MAX_BODY_BYTES)).encode(), 413, "at most"),
    ],
)
def test_a_body_that_is_not_a_json_object_or_too_large_is_refused(served, content, status, message):
    answer = served().call("POST", "/subscriptions", content=content)
    assert answer.status_code == status and message in answer.json()["error"]


def test_a_deeply_nested_body_is_a_400(served):
    content = b"[" * 30_000 + b"]" * 30_000
    assert len(content) <= api.MAX_BODY_BYTES
    answer = served().call("POST", "/subscriptions", content=content)
    assert answer.status_code == 400 and "not JSON" in answer.json()["error"]


def test_a_chunked_body_over_the_cap_is_refused(served):
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    answer = served().call("POST", "/subscriptions", content=chunks())
    assert answer.status_code == 413


def test_a_body_must_arrive_in_time(served, monkeypatch):
    monkeypatch.setattr(api, "BODY_SECONDS", 0.5)
    url = urlsplit(served().url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/subscriptions HTTP/1.1\r\nhost: x\r\n"
            + f"authorization: Bearer {TOKEN}\r\ncontent-length: 100\r\n\r\n".encode()
            + b'{"id": '
        )
        started = time.monotonic()
        answer = b""
        while b"}" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"not sent in 0.5 s" in answer and time.monotonic() - started < 5


def test_bad_updates_name_their_field(served):
    server = served()
    server.call("POST", "/subscriptions", json=body())
    for payload, field in (
        ({"id": "other"}, "id"),
        ({"secret": SECRET}, "secret"),
        ({"topics": ["sport"]}, "topics"),
        ({"url": "http://10.0.0.1/x"}, "url"),
        ({"colour": "red"}, "colour"),
    ):
        answer = server.call("PATCH", "/subscriptions/ops", json=payload)
        assert answer.status_code == 422 and answer.json()["field"] == field, payload
    assert server.call("GET", "/subscriptions/ops").json() | {"created": 0, "updated": 0} == {
        **body(),
        **OPTIONS_LEFT_OUT,
        "source": "api",
        "created": 0,
        "updated": 0,
    }
    assert server.call("PATCH", "/subscriptions/nobody", json={}).status_code == 404
    for payload, field in (({"messages": "some"}, "messages"), ({"since": "soon"}, "since")):
        answer = server.call("POST", "/subscriptions/ops/replay", json=payload)
        assert answer.status_code == 422 and answer.json()["field"] == field
    answer = server.call("POST", "/subscriptions/ops/replay", json={"messages": "all"})
    assert answer.status_code == 422 and answer.json()["field"] == "since"
    for limit in ("0", "²", "1e3"):  # "²" is a digit to str.isdigit, not to int()
        answer = server.call("GET", "/subscriptions/ops/messages", params={"limit": limit})
        assert answer.status_code == 422 and answer.json()["field"] == "limit", limit
    answer = server.call("POST", "/subscriptions/ops/secret/rotate", json={"secret": "nope"})
    assert answer.status_code == 422 and answer.json()["field"] == "secret"


def test_openapi_lists_every_route_and_body(served, connection):
    server = served()
    document = server.client.get(f"{server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    served_routes = {
        (route.path.removeprefix("/api/v1"), method.lower())
        for route in api_routes.routes(
            Root.build(load(server.config_dir), connection), FailureThrottle()
        )
        if route.path.startswith("/api/v1")
        for method in route.methods - {"HEAD"}
    }
    listed = {
        (path, method)
        for path, operations in document["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert listed == served_routes
    for path, method in listed:
        operation = document["paths"][path][method]
        if method in ("post", "patch") and not path.endswith("/test"):
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema["$ref"].split("/")[-1] in document["components"]["schemas"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(codec=None)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["id", "url", "topics", "secret", "secret_env", "\ud800", "x"])
BODIES = st.one_of(
    JSON_VALUES,
    st.dictionaries(KEYS, JSON_VALUES, max_size=5),
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=70) | st.just("ops"),
            "url": st.text(max_size=40) | st.just("https://hooks.example/x"),
            "topics": st.lists(st.sampled_from(["health", "*", "sport", ""]), max_size=3),
            "secret": st.text(max_size=60) | st.just(SECRET),
        },
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=BODIES, path=st.sampled_from(["", "/ops", "/ops/secret/rotate", "/ops/replay"]))
def test_no_body_is_a_500(served_once, payload, path):
    server = served_once
    method = "PATCH" if path == "/ops" else "POST"
    content = json.dumps(payload, allow_nan=True).encode()
    answer = server.call(method, f"/subscriptions{path}", content=content)
    assert answer.status_code < 500, answer.text
    assert "error" in answer.json() or answer.status_code in (200, 201, 202)


@pytest.fixture
def served_once(served) -> Served:
    server = served()
    server.call("POST", "/subscriptions", json=body())
    return server


def test_the_options_of_subscriptions_toml_are_the_apis_too(served):
    """One check serves the file and the API: a format, filters, a digest and the feeds' past
    are accepted as in subscriptions.toml, tags resolved to the feeds that carry them, and
    the same mistakes refused naming their key."""
    server = served(feeds=[{"name": "wire", "url": "https://wire.example/rss", "tags": ["ua"]}])
    options = {
        "format": "slack",
        "tags": ["ua"],
        "keywords": ["Zaporizhzhia"],
        "exclude_keywords": ["markets"],
        "digest_minutes": 30,
        "backfill_hours": 6,
    }
    made = server.call("POST", "/subscriptions", json=body(**options, secret=SECRET))
    assert made.status_code == 201
    view = made.json()
    assert view["format"] == "slack" and view["tags"] == ["ua"] and "feeds" not in view
    assert view["keywords"] == ["Zaporizhzhia"] and view["exclude_keywords"] == ["markets"]
    assert (view["digest_minutes"], view["backfill_hours"]) == (30, 6)
    for key, value in (("format", "pigeon"), ("tags", ["nowhere"]), ("digest_minutes", 0)):
        refused = server.call("POST", "/subscriptions", json=body(id="other", **{key: value}))
        assert refused.status_code == 422 and refused.json()["field"] == key, key


def test_wrong_tokens_are_throttled_per_client(served):
    """Guesses are few a minute: after FailureThrottle's failures a client is answered 429
    with Retry-After, even with the right token (or a guess would still be tested); another
    address is still heard, and wrong board tokens count towards the same budget."""
    server = served()
    for _ in range(FailureThrottle().failures - 1):
        wrong = httpx.get(f"{server.url}/api/v1/subscriptions", headers={"authorization": "x"})
        assert wrong.status_code == 401
    assert httpx.get(f"{server.url}/board/data.json").status_code == 401
    for answer in (
        httpx.get(f"{server.url}/api/v1/subscriptions"),
        server.call("GET", "/subscriptions"),
    ):
        assert answer.status_code == 429
        assert 0 < int(answer.headers["retry-after"]) <= 60
        assert "too many wrong tokens" in answer.json()["error"]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, headers=server.client.headers) as elsewhere:
        assert elsewhere.get(f"{server.url}/api/v1/subscriptions").status_code == 200


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (b'{"id": "ops", "id": "other", "url": "https://hooks.example/x", "topics": ["*"]}', "id"),
        (
            b'{"id": "ops", "url": "https://a.example/", "topics": ["*"], "x": {"a": 1, "a": 2}}',
            "a",
        ),
        (b'{"topics": ["*"], "topics": ["health"]}', "topics"),
    ],
)
def test_a_key_given_twice_is_a_400_naming_it(served, connection, content, key):
    """json keeps the last of two equal keys, where a proxy or a log reader may keep the
    first: such a body means two things, and is refused at any depth."""
    server = served()
    server.call("POST", "/subscriptions", json=body())
    for method, path in (("POST", "/subscriptions"), ("PATCH", "/subscriptions/ops")):
        answer = server.call(method, path, content=content)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == key and "given twice" in answer.json()["error"]
    assert list(SubscriptionStore(connection).records()) == ["ops"]


def test_a_number_too_long_to_read_is_a_422_naming_its_field(served):
    """int() of thousands of digits raises (or takes long): every number of a request is
    read by one helper that bounds its length first, in a query, a body, a list."""
    server = served()
    server.call("POST", "/subscriptions", json=body())
    digits = "9" * 5000
    answer = server.call("GET", "/subscriptions/ops/messages", params={"limit": digits})
    assert answer.status_code == 422 and answer.json()["field"] == "limit"
    assert f"at most {api.MAX_NUMBER_CHARS} characters" in answer.json()["error"]
    for key, value in (("digest_minutes", digits), ("topics", f"[{digits}]"), ("x", "1e" + digits)):
        content = f'{{"id": "big", "url": "https://hooks.example/x", "{key}": {value}}}'
        answer = server.call("POST", "/subscriptions", content=content.encode())
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == key
    # Numbers of a sane length are read as before.
    listed = server.call("GET", "/subscriptions/ops/messages", params={"limit": "1000"})
    assert listed.status_code == 200
    made = server.call("POST", "/subscriptions", json=body(id="d", digest_minutes=30))
    assert made.status_code == 201 and made.json()["digest_minutes"] == 30


CHAT_URL = "https://hooks.slack.com/services/T0001/B0002/tokenXYZ123secret"


def test_urls_are_shown_with_their_credentials_masked(served):
    """subscriptions.toml is the operator's: a Slack, Discord or Teams URL holds its token in
    the path, another URL may hold one in its query or user-info. The API masks them as
    logs and `newsmon subscriptions list` do."""
    chat = {**FILE_SUBSCRIPTION, "id": "chat", "url": CHAT_URL, "format": "slack"}
    server = served(subscriptions=[chat])
    made = server.call("POST", "/subscriptions", json=body(url="https://u:pw@hooks.example/x?k=v"))
    assert made.status_code == 201
    listed = server.call("GET", "/subscriptions")
    assert "tokenXYZ123secret" not in listed.text and "pw@" not in listed.text
    views = {view["id"]: view for view in listed.json()["data"]}
    assert (views["chat"]["url"], views["chat"]["url_masked"]) == (
        "https://hooks.slack.com/services/***",
        True,
    )
    assert views["ops"]["url"] == "https://***@hooks.example/x?k=***"
    assert (views["desk"]["url"], views["desk"]["url_masked"]) == (FILE_SUBSCRIPTION["url"], False)
    assert server.call("GET", "/subscriptions/chat").json()["url"] == views["chat"]["url"]
    # A view sent back whole keeps the URL, rather than storing the mask.
    masked = server.call("PATCH", "/subscriptions/ops", json={"url": views["ops"]["url"]})
    assert masked.status_code == 422 and masked.json()["field"] == "url"
    assert "masked" in masked.json()["error"]


GAZETTE = {"name": "gazette", "url": "https://gazette.example/rss", "tags": ["regional"]}


def test_a_subscription_reads_back_as_it_was_made(served):
    """Tags stay tags (not the feeds they name today), and a filter or a digest can be
    removed again by a PATCH of null, or [] for a filter."""
    server = served(feeds=[GAZETTE, {"name": "wire", "url": "https://wire.example/rss"}])
    options = {"tags": ["regional"], "keywords": ["flood"], "digest_minutes": 30}
    made = server.call("POST", "/subscriptions", json=body(**options))
    assert made.status_code == 201
    for view in (made.json(), server.call("GET", "/subscriptions/ops").json()):
        assert view["tags"] == ["regional"] and "feeds" not in view
    changed = server.call("PATCH", "/subscriptions/ops", json={"feeds": ["wire"]})
    assert (changed.json()["feeds"], changed.json()["tags"]) == (["wire"], ["regional"])

    for removal in ({"tags": []}, {"keywords": None, "digest_minutes": None}, {"feeds": None}):
        answer = server.call("PATCH", "/subscriptions/ops", json=removal)
        assert answer.status_code == 200, answer.text
        assert not set(removal) & set(answer.json()), removal
    view = server.call("GET", "/subscriptions/ops").json()
    assert view | {"created": 0, "updated": 0} == {
        **body(),
        **OPTIONS_LEFT_OUT,
        "source": "api",
        "created": 0,
        "updated": 0,
    }
    # The id, URL and topics are not options: null there is still a mistake.
    for key in ("url", "topics"):
        answer = server.call("PATCH", "/subscriptions/ops", json={key: None})
        assert answer.status_code == 422 and answer.json()["field"] == key


# The whole API against its own document: schemathesis generates requests from
# /openapi.json, sends them to a real `newsmon serve` on the real Redis, and checks that each
# answer is one the document states (status, content type, headers, body) and none a 500.
CONFORMANCE_EXAMPLES = 200  # about 5 s
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_every_answer_conforms_to_the_openapi_document(served, private_targets):
    """Generated calls of every operation, valid by the document and not (private targets
    allowed, so no generated webhook URL waits on a DNS lookup); the file's subscription and
    one made over the API, with a credential in its URL, are there to be read and changed."""
    server = served()
    made = server.call("POST", "/subscriptions", json=body(url="https://hooks.example/ops?t=1"))
    assert made.status_code == 201
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    calls = schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=CONFORMANCE_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=calls)
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(
            base_url=f"{server.url}/api/v1",
            headers={"authorization": f"Bearer {TOKEN}"},
            checks=CONFORMANCE,
        )

    conforms()
