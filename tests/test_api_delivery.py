"""What a subscriber made over the API receives: alerts from a real worker that was never
restarted, test messages, rotated secrets, its message log and replays, and the receiver of
docs/subscribing.md run on a real delivery. Every delivery is checked against the published
schemas."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import httpx
import pytest
from jsonschema import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from monitor.core import keys
from monitor.core.subscriptions import REFRESH_SECONDS, SubscriptionStore
from monitor.ops.auth import API_TOKEN_ENV
from monitor.poller.loop import Poller
from tests.helpers import (
    REPO,
    RSS,
    SECRET,
    assert_valid_delivery,
    load,
    polled_before,
    run_worker,
    schema_validator,
    write_config,
)
from tests.stories import ROUND_ONE_LIVEBLOG, rss

TOKEN = "test-token-0123456789-0123456789-0123456789"


@pytest.fixture
def setup(tmp_path, http_server, serve_url, monkeypatch, connection):
    """A feed at /blog.xml (polled before, so what it serves is news), a receiver at /hook,
    no subscription in the file, and `newsmon serve` with the API on; returns (config, API
    base URL, an authorised client)."""
    monkeypatch.setenv(API_TOKEN_ENV, TOKEN)
    http_server.route("/hook", (200, {}, b""))
    directory = write_config(
        tmp_path / "config", feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml")}]
    )
    config = load(directory)
    polled_before(connection, config.feeds)
    client = httpx.Client(headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    yield config, serve_url(config) + "/api/v1", client
    client.close()


def hooks(http_server, path: str = "/hook") -> list:
    return [r for r in http_server.requests if r.path == path]


def create(client, api: str, http_server, path: str = "/hook", **fields: object) -> dict:
    answer = client.post(
        f"{api}/subscriptions",
        json={"id": "ops", "url": http_server.url_for(path), "topics": ["*"], **fields},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_subscription_made_over_the_api_gets_alerts_from_a_running_worker(
    setup, http_server, connection, redis_url, start_process
):
    config, api, client = setup
    worker = start_process(
        "worker", "--config", str(config.directory), env={"REDIS_URL": redis_url}
    )
    poller = Poller(config, connection)
    processed = lambda: sum(e["event"] == "entry.classified" for e in worker.events())  # noqa: E731

    # Round one, before the subscription exists: the worker reads its view of subscriptions.
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:2])))
    poller.poll_feeds(config.feeds)
    worker.wait_for(lambda: processed() == 2)
    assert hooks(http_server) == []

    created_at = time.monotonic()
    secret = create(client, api, http_server)["secret"]
    time.sleep(REFRESH_SECONDS)  # the longest the worker may keep its view
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:4])))
    poller.poll_feeds(config.feeds)
    worker.wait_for(lambda: len(hooks(http_server)) == 2, timeout=10)
    assert time.monotonic() - created_at < 5 + 3  # seen within 5 s; the rest is delivery
    received = [Webhook(secret).verify(r.body, r.headers) for r in hooks(http_server)]
    assert {m["data"]["entry"]["link"] for m in received} == {
        item.link for item in ROUND_ONE_LIVEBLOG[2:4]
    }
    assert {m["data"]["subscription_id"] for m in received} == {"ops"}

    test = client.post(f"{api}/subscriptions/ops/test")
    assert test.status_code == 202
    worker.wait_for(lambda: len(hooks(http_server)) == 3)
    sample = hooks(http_server)[-1]
    assert sample.headers["webhook-id"] == test.json()["message_id"]
    assert Webhook(secret).verify(sample.body, sample.headers)["type"] == "message.test"

    # The worker records an attempt once the receiver has answered: wait for the record.
    listed = lambda: client.get(f"{api}/subscriptions/ops/messages").json()["data"]  # noqa: E731
    worker.wait_for(lambda: all(m["attempts"] for m in listed()) and len(listed()) == 3)
    messages = listed()
    assert messages[0]["id"] == test.json()["message_id"]  # newest first
    assert {m["id"] for m in messages} == {r.headers["webhook-id"] for r in hooks(http_server)}
    for message in messages:
        (attempt,) = message["attempts"]
        assert attempt["status"] == "delivered" and attempt["http_status"] == 200
        assert attempt["duration_ms"] > 0 and attempt["error"] is None

    # Deleted: the worker stops alerting it, again without a restart.
    assert client.delete(f"{api}/subscriptions/ops").status_code == 204
    time.sleep(REFRESH_SECONDS)
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG)))
    poller.poll_feeds(config.feeds)
    worker.wait_for(lambda: processed() == len(ROUND_ONE_LIVEBLOG))
    assert worker.stop() == 0  # lets the job in hand finish
    assert sum(e["event"] == "alert.enqueued" for e in worker.events()) == 2  # round two's
    assert len(hooks(http_server)) == 3
    for request in hooks(http_server):
        assert_valid_delivery(request)


def test_a_rotated_secret_signs_beside_the_new_one_until_it_expires(setup, http_server, connection):
    config, api, client = setup
    create(client, api, http_server, secret=SECRET)
    rotated = client.post(f"{api}/subscriptions/ops/secret/rotate")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != SECRET
    until = rotated.json()["old_secrets_sign_until"]
    assert (
        abs(
            time.mktime(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ"))
            - time.mktime(time.gmtime(time.time() + 86400))
        )
        < 60
    )

    assert client.post(f"{api}/subscriptions/ops/test").status_code == 202
    run_worker(config, connection)
    during = hooks(http_server)[-1]
    assert len(during.headers["webhook-signature"].split()) == 2
    for secret in (SECRET, new_secret):  # a receiver on either secret accepts it
        assert Webhook(secret).verify(during.body, during.headers)["type"] == "message.test"

    # A day later (the record aged, as time would): only the new secret signs.
    store = SubscriptionStore(connection)
    store.update("ops", lambda r: replace(r, retiring=tuple((s, 1.0) for s, _ in r.retiring)))
    assert client.post(f"{api}/subscriptions/ops/test").status_code == 202
    run_worker(config, connection)
    after = hooks(http_server)[-1]
    assert len(after.headers["webhook-signature"].split()) == 1
    assert Webhook(new_secret).verify(after.body, after.headers)["type"] == "message.test"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(after.body, after.headers)

    # A second rotation to a secret of the caller's choice.
    chosen = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw"
    again = client.post(f"{api}/subscriptions/ops/secret/rotate", json={"secret": chosen})
    assert again.json()["secret"] == chosen
    assert [s for s, _ in store.get("ops").retiring] == [new_secret]
    for request in hooks(http_server):
        assert_valid_delivery(request)


def test_messages_show_each_attempt_and_dead_letters_replay(setup, http_server, connection):
    config, api, client = setup
    http_server.route("/hook", (400, {}, b"no"))
    create(client, api, http_server)
    sent = client.post(f"{api}/subscriptions/ops/test").json()["message_id"]
    run_worker(config, connection)
    (message,) = client.get(f"{api}/subscriptions/ops/messages").json()["data"]
    assert (message["id"], message["type"]) == (sent, "message.test")
    (attempt,) = message["attempts"]
    assert (attempt["status"], attempt["http_status"], attempt["error"]) == (
        "failed",
        400,
        "HTTP 400",
    )

    http_server.route("/hook", (200, {}, b""))
    replayed = client.post(f"{api}/subscriptions/ops/replay")
    assert replayed.status_code == 202 and replayed.json() == {"queued": 1}
    run_worker(config, connection)
    assert [r.headers["webhook-id"] for r in hooks(http_server)] == [sent, sent]
    (message,) = client.get(f"{api}/subscriptions/ops/messages").json()["data"]
    assert [a["status"] for a in message["attempts"]] == ["failed", "delivered"]
    assert client.post(f"{api}/subscriptions/ops/replay").json() == {"queued": 0}

    # Everything since a time, delivered or not, again under the same webhook-id.
    everything = client.post(
        f"{api}/subscriptions/ops/replay", json={"messages": "all", "since": "1h"}
    )
    assert everything.json() == {"queued": 1}
    run_worker(config, connection)
    assert [r.headers["webhook-id"] for r in hooks(http_server)] == [sent] * 3
    future = client.post(
        f"{api}/subscriptions/ops/replay", json={"messages": "all", "since": "2100-01-01T00:00Z"}
    )
    assert future.json() == {"queued": 0}


def test_the_documented_receiver_verifies_and_parses_a_real_delivery(
    setup, http_server, connection, monkeypatch, capsys
):
    config, api, client = setup
    secret = create(client, api, http_server)["secret"]
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:1])))
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    (delivery,) = hooks(http_server)

    page = (REPO / "docs" / "subscribing.md").read_text()
    snippet = re.search(r"<!-- receiver:.*?-->\n```python\n(.*?)```", page, re.S)[1]
    assert len(snippet.strip().splitlines()) <= 15
    monkeypatch.setenv("NEWSMON_WEBHOOK_SECRET", secret)
    namespace: dict = {}
    exec(compile(snippet, "docs/subscribing.md", "exec"), namespace)
    status, message = namespace["receive"](delivery.body, delivery.headers)
    assert status == 204 and message["data"]["entry"]["title"] == ROUND_ONE_LIVEBLOG[0].title
    assert ROUND_ONE_LIVEBLOG[0].link in capsys.readouterr().out
    forged = delivery.body.replace(b"alert.created", b"alert.updated")
    assert namespace["receive"](forged, delivery.headers) == (400, None)


def test_the_schemas_refuse_what_breaks_the_contract(setup, http_server, connection):
    config, api, client = setup
    create(client, api, http_server)
    client.post(f"{api}/subscriptions/ops/test")
    run_worker(config, connection)
    message = assert_valid_delivery(hooks(http_server)[0])
    broken = json.loads(json.dumps(message))
    del broken["data"]["entry"]["link"]
    with pytest.raises(ValidationError):
        schema_validator("message.test").validate(broken)
    with pytest.raises(ValidationError):
        schema_validator("alert.created").validate(message)  # the type is part of the contract
    with pytest.raises(ValidationError):
        schema_validator("message.test").validate({**message, "timestamp": "yesterday"})


def test_the_operator_commands_see_api_subscriptions(
    setup, http_server, connection, redis_url, start_process
):
    config, api, client = setup
    http_server.route("/hook", (400, {}, b"no"))
    create(client, api, http_server)
    sent = client.post(f"{api}/subscriptions/ops/test").json()["message_id"]
    run_worker(config, connection)
    env = {"REDIS_URL": redis_url}
    directory = str(config.directory)

    listed = start_process("subscriptions", "list", "--config", directory, env=env)
    assert listed.finish() == 0 and "ops" in listed.log_path.read_text()
    stats = start_process("stats", "--config", directory, "--json", env=env)
    assert stats.finish() == 0
    assert json.loads(stats.log_path.read_text())["subscriptions"]["ops"]["dead_letters"] == 1

    http_server.route("/hook", (200, {}, b""))
    replay = start_process(
        "deliveries", "replay", "--config", directory, "--subscription", "ops", env=env
    )
    assert replay.finish() == 0 and "replaying 1 alert\n" in replay.log_path.read_text()
    run_worker(config, connection)
    assert [r.headers["webhook-id"] for r in hooks(http_server)] == [sent, sent]


def test_a_digest_or_backfill_asked_for_over_the_api_is_honoured(setup, http_server, connection):
    """The options of a subscription made over the API count as those of the file's: its
    alerts wait for its digest, and a backfill one gets the feed's past."""
    config, api, client = setup
    create(client, api, http_server, digest_minutes=15)
    create(client, api, http_server, path="/past", id="past", backfill_hours=48)
    http_server.route("/past", (200, {}, b""))
    connection.delete(keys.feed_state("blog"))  # never fetched: its first document is its past
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:2])))
    poller = Poller(config, connection)
    poller.poll_feeds(config.feeds)
    run_worker(config, connection)
    assert len(hooks(http_server, "/past")) == 2

    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:4])))
    poller.poll_feeds(config.feeds)
    run_worker(config, connection)
    assert len(hooks(http_server, "/past")) == 4
    assert hooks(http_server) == []  # held for the digest
    assert connection.hlen(keys.digest_pending("ops")) == 2


def test_a_deleted_subscription_leaves_no_digest_behind(setup, http_server, connection):
    """What waited for its digest goes with it: a subscription made later under the same id
    starts afresh, and no digest is sent to a subscription that is gone."""
    config, api, client = setup
    create(client, api, http_server, digest_minutes=15)
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:2])))
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    assert connection.hlen(keys.digest_pending("ops")) == 2
    assert client.delete(f"{api}/subscriptions/ops").status_code == 204
    assert connection.exists(keys.digest_pending("ops")) == 0
    assert connection.zscore(keys.DIGESTS_DUE, "ops") is None
