"""Credentials in feed and webhook URLs (user-info, query tokens) never reach a log line or
the CLI's output: the host and path stay, the secret goes."""

from __future__ import annotations

import json
import string
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.log import truncate_text
from monitor.core.models import Format
from monitor.core.redact import redact_text, redact_url, redact_urls
from monitor.poller.loop import Poller
from tests.helpers import (
    SECRET,
    assert_valid_delivery,
    load,
    make_alerts,
    one_subscription_per_format,
    polled_before,
    run_worker,
    schema_validator,
    write_config,
)
from tests.stories import ROUND_ONE_LIVEBLOG, rss
from workers.delivery.formats import body
from workers.delivery.mail import message
from workers.delivery.telegram import message_text

# Secrets are upper case and every other part lower case, so a secret found in the output
# can only have leaked.
secret = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=12).map(
    lambda s: "SECRET" + s
)
word = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
host = st.lists(word, min_size=1, max_size=3).map(".".join)
path = st.lists(word, max_size=3).map(lambda parts: "".join("/" + p for p in parts))


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str]:
    """A URL with credentials in it, and what it must become."""
    scheme, name, route = draw(st.sampled_from(["http", "https"])), draw(host), draw(path)
    netloc = name + (f":{draw(st.integers(1, 65535))}" if draw(st.booleans()) else "")
    userinfo = draw(st.sampled_from(["", "user", "pass", "both"]))
    credentials = {
        "": "",
        "user": draw(secret) + "@",
        "pass": draw(word) + ":" + draw(secret) + "@",
        "both": draw(secret) + ":" + draw(secret) + "@",
    }[userinfo]
    params = draw(st.lists(st.tuples(word, secret), max_size=3))
    query = "&".join(f"{k}={v}" for k, v in params)
    fragment = draw(st.one_of(st.just(""), secret))
    url = (
        f"{scheme}://{credentials}{netloc}{route}"
        + (f"?{query}" if params else "")
        + (f"#{fragment}" if fragment else "")
    )
    expected = (
        f"{scheme}://{'***@' if credentials else ''}{netloc}{route}"
        + ("?" + "&".join(f"{k}=***" for k, _ in params) if params else "")
        + ("#***" if fragment else "")
    )
    return url, expected


@given(urls())
def test_credentials_go_and_the_address_stays(case):
    url, expected = case
    shown = redact_url(url)
    assert shown == expected
    assert "SECRET" not in shown
    before, after = urlsplit(url), urlsplit(shown)
    assert (after.scheme, after.hostname, after.port, after.path) == (
        before.scheme,
        before.hostname,
        before.port,
        before.path,
    )
    assert redact_url(shown) == shown


prose = st.text(st.characters(codec="ascii", exclude_categories=("Lu",)), max_size=20)


@given(st.lists(st.tuples(prose, urls(), st.sampled_from(["'", '"', " ", "<", ">", "\n"]))))
def test_every_url_in_a_message_is_redacted(parts):
    """An error message quoting URLs (an httpx error, a Location) shows each one redacted."""
    text = "".join(f"{before} {url}{after}" for before, (url, _), after in parts)
    shown = redact_text(text)
    assert "SECRET" not in shown
    for before, (_, expected), after in parts:
        assert f"{before} {expected}{after}" in shown


@given(st.text())
def test_any_text_is_shown_without_raising(text):
    assert isinstance(redact_url(text), str)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[::1", "http://[::1"),  # urllib raises on this one
        ("http://u:p@host:99999/x?k", "http://***@host:99999/x?***"),
        ("http://a@b@host/", "http://***@host/"),
        ("https://medium.com/@someone/feed", "https://medium.com/@someone/feed"),
        ("redis://:pw@localhost:6379/0", "redis://***@localhost:6379/0"),
        ("/websub/feed?token=abc&hub.mode=subscribe", "/websub/feed?token=***&hub.mode=***"),
        ("", ""),
        ("not a url", "not a url"),
        # Chat services' incoming webhooks (format = "slack" ...) carry their token in the path.
        ("https://hooks.slack.com/services/T0/B0/SeCrEt", "https://hooks.slack.com/services/***"),
        ("https://discord.com/api/webhooks/12/tok-EN", "https://discord.com/api/webhooks/***"),
        ("https://ptb.discord.com/api/webhooks/12/tok", "https://ptb.discord.com/api/webhooks/***"),
        (
            "https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d",
            "https://acme.webhook.office.com/webhookb2/***",
        ),
        ("https://discord.com/channels/1/2", "https://discord.com/channels/1/2"),
    ],
)
def test_odd_urls(url, shown):
    assert redact_url(url) == shown


def test_the_processor_redacts_url_keys_only():
    event = {
        "event": "subscription.disabled",
        "subscription": "ops",
        "url": "https://hooks.example/in?token=t0psecret",
        "callback": "https://me.example/websub/blog?token=abc",
        "hub": "https://u:p@hub.example/",
        "topic": "https://news.example/feed?key=k",
        "moved_to": "https://u:p@new.example/",
        "disabled_url": "https://hooks.example/in?token=t0psecret",
        "reason": "HTTP 410",
        "count": 3,
    }
    assert redact_urls(None, "warning", dict(event)) == {
        **event,
        "url": "https://hooks.example/in?token=***",
        "callback": "https://me.example/websub/blog?token=***",
        "hub": "https://***@hub.example/",
        "topic": "https://news.example/feed?key=***",
        "moved_to": "https://***@new.example/",
        "disabled_url": "https://hooks.example/in?token=***",
    }


def test_log_lines_and_cli_output_show_no_credentials(
    tmp_path, http_server, start_process, redis_url, connection
):
    http_server.route(
        "/feed.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG))
    )
    feed_url = http_server.url_for("/feed.xml").replace("://", "://reader:pw-FEED-1@")
    hook_url = http_server.url_for("/hook") + "?token=tok-HOOK-2"
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": feed_url + "?key=key-FEED-3"}],
        subscriptions=[{"id": "ops", "url": hook_url, "topics": ["*"], "secret": SECRET}],
    )
    env = {"REDIS_URL": redis_url}
    secrets = ("pw-FEED-1", "tok-HOOK-2", "key-FEED-3")

    polled_before(connection, load(directory).feeds)
    poll = start_process("poll", "--config", str(directory), env=env)
    poll.wait_for(lambda: "feed.fetched" in [e["event"] for e in poll.events()])
    assert poll.stop() == 0
    # Still used, as Basic auth: only what is shown loses them.
    assert http_server.requests[0].headers["authorization"].startswith("Basic ")
    shown = http_server.url_for("/feed.xml").replace("://", "://***@") + "?key=***"
    lines = [e for e in poll.events() if e["event"] in ("feed.fetched", "entry.enqueued")]
    assert len(lines) == 1 + len(ROUND_ONE_LIVEBLOG)
    assert {e["url"] for e in lines} == {shown}
    log_text = poll.log_path.read_text()
    assert not any(s in log_text for s in secrets)

    feeds = start_process("feeds", "--config", str(directory), "--json", env=env)
    assert feeds.finish() == 0
    assert json.loads(feeds.log_path.read_text())["url"] == shown

    listed = start_process("subscriptions", "list", "--config", str(directory), env=env)
    assert listed.finish() == 0
    output = listed.log_path.read_text()
    assert http_server.url_for("/hook") + "?token=***" in output
    assert not any(s in output for s in secrets)


def test_long_text_a_feed_controls_is_cut_in_log_lines():
    event = {"event": "entry.enqueued", "title": "x" * 5000, "reason": "short", "count": 7}
    cut = truncate_text(None, "info", dict(event))
    assert cut["title"] == "x" * 119 + "…"
    assert cut["reason"] == "short" and cut["count"] == 7


FEED_SECRETS = ("pw-FEED-1", "key-FEED-3")


def test_deliveries_carry_the_feed_url_without_its_credentials(tmp_path, http_server, connection):
    http_server.route(
        "/feed.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG))
    )
    feed_url = http_server.url_for("/feed.xml").replace("://", "://reader:pw-FEED-1@")
    formats = [f.value for f in Format if f.webhook]
    for name in formats:
        http_server.route(f"/{name}", (200, {}, b""))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "blog", "url": feed_url + "?apikey=key-FEED-3"}],
            subscriptions=one_subscription_per_format(http_server, formats),
        )
    )
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)

    shown = http_server.url_for("/feed.xml").replace("://", "://***@") + "?apikey=***"
    deliveries = [r for r in http_server.requests if r.method == "POST"]
    assert {r.path for r in deliveries} == {f"/{name}" for name in formats}
    for request in deliveries:
        assert not any(s.encode() in request.body for s in FEED_SECRETS), request.path
    standard = [assert_valid_delivery(r) for r in deliveries if r.path == "/standard"]
    assert len(standard) == len(ROUND_ONE_LIVEBLOG)
    assert {m["data"]["entry"]["feed"]["url"] for m in standard} == {shown}


def test_every_message_type_carries_the_feed_url_redacted_in_every_format():
    feed_url = "https://reader:pw-FEED-1@news.example/feed.xml?apikey=key-FEED-3"
    shown = "https://***@news.example/feed.xml?apikey=***"
    alerts = [replace(a, entry=replace(a.entry, feed_url=feed_url)) for a in make_alerts(3, "s")]
    created = alerts[0]
    messages = {
        "alert.created": created,
        "alert.updated": replace(created, entry=replace(created.entry, revision="r2")),
        "digest.created": replace(created, stories=tuple(alerts)),
        "message.test": replace(created, test=True),
    }
    for message_type, alert in messages.items():
        sent = [body(alert, format_) for format_ in Format if format_.webhook]
        sent += [message_text(alert).encode(), message(alert, "n@e.org", ("d@e.org",)).as_bytes()]
        for each in sent:
            assert not any(s.encode() in each for s in FEED_SECRETS), (message_type, each)
        document = json.loads(body(alert, Format.STANDARD))
        assert document["type"] == message_type
        schema_validator(message_type).validate(document)
        data = document["data"]
        entries = (
            [story["entry"] for story in data["stories"]] if "stories" in data else [data["entry"]]
        )
        assert {entry["feed"]["url"] for entry in entries} == {shown}, message_type
