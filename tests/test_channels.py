"""Telegram and email through a real worker: a feed's entry arrives at a local Bot API and a
local SMTP server (aiosmtpd), escaped and within its limits; Telegram's retry_after and an
SMTP 4xx are retried, an SMTP 5xx for every recipient dead-lettered; neither the bot's token
nor the mail password is shown."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from dataclasses import replace
from email import message_from_bytes, policy
from html.parser import HTMLParser

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.config import ConfigError
from monitor.core.models import Subscription
from monitor.ops.auth import API_TOKEN_ENV
from monitor.poller.loop import Poller
from tests.helpers import load, make_alerts, polled_before, run_worker, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, Item, rss
from workers.delivery.deadletters import DeadLetters
from workers.delivery.send import Deliverer
from workers.delivery.telegram import TELEGRAM_TEXT, message_text, units

TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
HOSTILE = Item(
    "x", "lb-x", "<b>Tom & Jerry</b> <a href='javascript:x'>", "sum <i>", "https://e.org/a?b=1&c=2"
)
RSS = {"content-type": "application/rss+xml"}
API_TOKEN = "test-token-0123456789-0123456789-0123456789"


def feed(http_server, items):
    http_server.route("/blog.xml", (200, RSS, rss(items)))
    return [{"name": "blog", "url": http_server.url_for("/blog.xml")}]


def poll(connection, directory):
    config = load(directory)
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    return config


# Telegram


class Tags(HTMLParser):
    """The tags of Telegram HTML, and whether anything in it is not well formed."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def telegram_config(tmp_path, http_server, items, schedule="[0, 1, 1]"):
    return write_config(
        tmp_path / "config",
        feeds=feed(http_server, items),
        subscriptions=[
            {
                "id": "tg",
                "format": "telegram",
                "chat_id": -1001234,
                "secret_env": "TG_TOKEN",
                "topics": ["*"],
            }
        ],
        settings=f'[telegram]\napi_url = "{http_server.url}"\n'
        f"[delivery]\ntimeout_seconds = 2\nretry_schedule_seconds = {schedule}\n",
    )


def test_telegram_gets_escaped_html_and_its_retry_after_is_honoured(
    tmp_path, connection, http_server, redis_url, start_process, monkeypatch
):
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    path = f"/bot{TOKEN}/sendMessage"

    def answer(request):
        if len([r for r in http_server.requests if r.path == path]) == 1:
            too_many = {"ok": False, "error_code": 429, "parameters": {"retry_after": 3}}
            return 429, {"content-type": "application/json"}, json.dumps(too_many).encode()
        return 200, {"content-type": "application/json"}, b'{"ok":true,"result":{}}'

    http_server.route(path, answer)
    directory = telegram_config(tmp_path, http_server, [HOSTILE])
    poll(connection, directory)
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    worker.wait_for(lambda: any(e["event"] == "alert.delivered" for e in worker.events()))
    worker.stop()
    first, second = [r for r in http_server.requests if r.path == path]
    assert second.received - first.received >= 3  # the schedule said 1 s; Telegram said 3
    sent = json.loads(second.body)
    assert sent["chat_id"] == -1001234 and sent["parse_mode"] == "HTML"
    assert '<a href="https://e.org/a?b=1&amp;c=2">Tom &amp; Jerry</a>' in sent["text"]
    parsed = Tags()
    parsed.feed(sent["text"])
    assert set(parsed.tags) <= {"b", "a"}
    assert TOKEN not in worker.log_path.read_text()
    assert not any(TOKEN in json.dumps(e) for e in worker.events())


def test_a_refused_telegram_message_is_dead_lettered_and_the_token_never_shown(
    tmp_path, connection, http_server, monkeypatch
):
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    refusal = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    http_server.route(f"/bot{TOKEN}/sendMessage", (400, {}, json.dumps(refusal).encode()))
    config = poll(connection, telegram_config(tmp_path, http_server, ROUND_ONE_LIVEBLOG[:1]))
    run_worker(config, connection)
    (dead,) = DeadLetters(connection, 3600).list()
    assert dead["reason"] == "HTTP 400: Bad Request: chat not found"
    # No server at all: the error quotes the URL, its token masked.
    down = Deliverer(1, 1, replace(config.settings, telegram_api_url="http://127.0.0.1:9"))
    outcome = down.send(config.subscriptions[0], make_alerts(1, "tg")[0])
    assert outcome.status == "retry" and TOKEN.split(":")[1] not in outcome.reason
    assert "123456" not in repr(config.subscriptions[0]) and TOKEN not in repr(config)


hostile = st.text(max_size=40).map(lambda s: s * 200) | st.text(
    st.sampled_from("<>&\"'\U0001f600é\n\x00 ab"), max_size=2000
)


@settings(max_examples=60, deadline=None)
@given(title=hostile, summary=hostile, digest=st.integers(0, 200))
def test_any_telegram_message_is_within_the_limit_and_holds_only_its_own_markup(
    title, summary, digest
):
    alerts = [
        replace(a, entry=replace(a.entry, title=title, summary=summary))
        for a in make_alerts(max(digest, 1))
    ]
    alert = replace(alerts[0], stories=tuple(alerts)) if digest else alerts[0]
    text = message_text(alert)
    assert 0 < units(text) <= TELEGRAM_TEXT
    parsed = Tags()
    parsed.feed(text)
    assert set(parsed.tags) <= {"b", "a"}
    if digest:  # every story is either shown or counted
        shown = text.count("\n\n") - (1 if "more" in text.rsplit("\n\n", 1)[-1] else 0)
        assert shown == digest or text.endswith(f"and {digest - shown} more")


# Email


class Inbox:
    """An aiosmtpd handler: keeps what it receives; refuses a recipient as `refuse` says."""

    def __init__(self, refuse=lambda address, tries: None):
        self.messages: list = []
        self.tries: dict[str, int] = {}
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.tries[address] = self.tries.get(address, 0) + 1
        if refusal := self.refuse(address, self.tries[address]):
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    started = []

    def start(inbox, **options):
        with socket.socket() as probe:  # aiosmtpd takes no port 0
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return controller.port

    yield start
    for controller in started:
        controller.stop()


def email_config(tmp_path, http_server, port, to, smtp="", schedule="[0, 1, 1]"):
    return write_config(
        tmp_path / "config",
        feeds=feed(http_server, [*ROUND_ONE_LIVEBLOG[:1], HOSTILE]),
        subscriptions=[{"id": "mail", "format": "email", "to": to, "topics": ["*"]}],
        settings=f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nfrom = "news@example.org"\n'
        f'security = "none"\n{smtp}'
        f"[delivery]\ntimeout_seconds = 2\nretry_schedule_seconds = {schedule}\n",
    )


def test_an_email_a_story_arrives_as_plain_text_and_escaped_html(
    tmp_path, connection, http_server, smtp_server
):
    inbox = Inbox()
    port = smtp_server(inbox)
    to = ["desk@example.org", "chief@example.org"]
    config = poll(connection, email_config(tmp_path, http_server, port, to))
    run_worker(config, connection)
    assert len(inbox.messages) == 2
    by_subject = {}
    for recipients, raw in inbox.messages:
        assert sorted(recipients) == sorted(to)
        mail = message_from_bytes(raw, policy=policy.default)
        by_subject[mail["subject"]] = mail
        assert mail["from"] == "news@example.org" and mail["message-id"].startswith("<msg_")
    paris = by_subject[f"newsmon: {ROUND_ONE_LIVEBLOG[0].title}"]
    plain = paris.get_body(("plain",)).get_content()
    assert ROUND_ONE_LIVEBLOG[0].link in plain and "diplomacy" in plain
    hostile = next(m for s, m in by_subject.items() if "Tom & Jerry" in s)
    page = hostile.get_body(("html",)).get_content()
    assert '<a href="https://e.org/a?b=1&amp;c=2">Tom &amp; Jerry</a>' in page


def test_an_smtp_4xx_is_retried_and_a_5xx_for_everyone_dead_lettered(
    tmp_path, connection, http_server, smtp_server, redis_url, start_process
):
    busy_once = Inbox(lambda address, tries: "450 Mailbox busy" if tries <= 2 else None)
    port = smtp_server(busy_once)
    directory = email_config(tmp_path, http_server, port, ["desk@example.org"])
    poll(connection, directory)
    worker = start_process("worker", "--config", str(directory), env={"REDIS_URL": redis_url})
    worker.wait_for(lambda: sum(e["event"] == "alert.delivered" for e in worker.events()) == 2)
    worker.stop()
    retried = [e for e in worker.events() if e["event"] == "alert.retry"]
    assert len(retried) == 2 and "450 Mailbox busy" in retried[0]["reason"]
    assert len(busy_once.messages) == 2

    connection.flushdb()
    refused = Inbox(lambda address, tries: "550 No such user")
    port = smtp_server(refused)
    config = poll(connection, email_config(tmp_path / "2", http_server, port, ["a@example.org"]))
    run_worker(config, connection)
    dead = DeadLetters(connection, 3600).list()
    assert len(dead) == 2 and all("550 No such user" in d["reason"] for d in dead)
    assert refused.tries == {"a@example.org": 2} and not refused.messages  # one try each


@pytest.fixture
def certificate(tmp_path, monkeypatch):
    """A self-signed certificate for 127.0.0.1, which the client trusts (SSL_CERT_FILE)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_email_goes_over_tls_and_logs_in(
    security, tmp_path, connection, http_server, smtp_server, certificate, monkeypatch
):
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret-pw")
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-pw")

    inbox = Inbox()
    tls = {"tls_context": certificate, "require_starttls": True}
    if security == "tls":
        # aiosmtpd offers AUTH only after its own STARTTLS: this connection is TLS from the start.
        tls = {"ssl_context": certificate, "auth_require_tls": False}
    port = smtp_server(inbox, authenticator=authenticate, auth_required=True, **tls)
    smtp = f'security = "{security}"\nusername = "newsmon"\npassword_env = "SMTP_PASSWORD"\n'
    directory = email_config(tmp_path, http_server, port, ["desk@example.org"], smtp)
    text = (directory / "newsmon.toml").read_text().replace('security = "none"\n', "", 1)
    (directory / "newsmon.toml").write_text(text)
    config = poll(connection, directory)
    run_worker(config, connection)
    assert len(inbox.messages) == 2 and set(logins) == {(b"newsmon", b"s3cret-pw")}


# What newsmon check says


def problems(directory) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(directory)
    return [str(p) for p in raised.value.problems]


def test_check_names_each_channel_key_at_fault(tmp_path, monkeypatch):
    monkeypatch.setenv("TG_TOKEN", "not-a-token-but-a-secret")
    subscriptions = [
        {"id": "tg", "format": "telegram", "secret_env": "TG_TOKEN", "topics": ["*"]},
        {
            "id": "tg2",
            "format": "telegram",
            "chat_id": "x y",
            "secret_env": "TG_TOKEN",
            "topics": ["*"],
        },
        {
            "id": "tg3",
            "format": "telegram",
            "chat_id": "@desk_news",
            "secret_env": "NO_VAR",
            "topics": ["*"],
        },
        {
            "id": "tg4",
            "format": "telegram",
            "chat_id": 42,
            "secret_env": "TG_TOKEN",
            "topics": ["*"],
        },
        {"id": "mail", "format": "email", "to": ["not an address"], "topics": ["*"]},
        {
            "id": "mail2",
            "format": "email",
            "to": ["a@example.org"],
            "url": "https://e.org",
            "topics": ["*"],
        },
    ]
    found = "\n".join(problems(write_config(tmp_path / "c", subscriptions=subscriptions)))
    assert "subscriptions[id=\"tg\"].chat_id: is required with format 'telegram'" in found
    assert """subscriptions[id="tg2"].chat_id: 'x y' is not a chat id""" in found
    assert 'tg3"].secret_env: environment variable NO_VAR is not set; export it' in found
    assert 'tg4"].secret_env (TG_TOKEN): does not hold a bot token' in found
    assert """subscriptions[id="mail"].to: 'not an address' is not an email""" in found
    assert "subscriptions[id=\"mail2\"].url: is not used with format 'email'; remove it" in found
    assert "not-a-token" not in found

    good = [{"id": "m", "format": "email", "to": ["a@example.org"], "topics": ["*"]}]
    found = "\n".join(problems(write_config(tmp_path / "d", subscriptions=good)))
    assert "subscriptions[id=\"m\"].format: 'email' needs a mail server" in found
    smtp = '[smtp]\nhost = "mail.example.org"\nusername = "u"\npassword_env = "NO_PW"\n'
    found = "\n".join(problems(write_config(tmp_path / "e", subscriptions=good, settings=smtp)))
    assert "newsmon.toml: smtp.from: is required with host" in found
    assert "smtp.password_env: environment variable NO_PW is not set" in found


def test_a_subscription_repr_never_holds_the_token():
    subscription = Subscription("t", "telegram:1", frozenset("*"), (), bot_token=TOKEN)
    assert TOKEN not in repr(subscription)


def test_the_api_makes_an_email_subscription_and_sends_its_test(
    tmp_path, connection, http_server, smtp_server, serve_url, monkeypatch
):
    monkeypatch.setenv(API_TOKEN_ENV, API_TOKEN)
    inbox = Inbox()
    config = load(email_config(tmp_path, http_server, smtp_server(inbox), ["a@example.org"]))
    api = f"{serve_url(config)}/api/v1"
    auth = {"authorization": f"Bearer {API_TOKEN}"}
    made = httpx.post(
        f"{api}/subscriptions",
        json={"id": "desk", "format": "email", "to": ["desk@example.org"], "topics": ["*"]},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    view = made.json()
    assert view["to"] == ["desk@example.org"] and "url" not in view and "secret" not in view
    telegram = {"id": "tg", "format": "telegram", "chat_id": 1, "topics": ["*"]}
    refused = httpx.post(f"{api}/subscriptions", json=telegram, headers=auth)
    assert refused.status_code == 422 and refused.json()["field"] == "format"
    deadline = time.monotonic() + 10  # each process's view of the API's subscriptions is
    while (test := httpx.post(f"{api}/subscriptions/desk/test", headers=auth)).status_code == 404:
        assert time.monotonic() < deadline  # at most a few seconds stale
        time.sleep(0.2)
    assert test.status_code == 202
    run_worker(config, connection)
    ((_, raw),) = [m for m in inbox.messages if m[0] == ["desk@example.org"]]
    assert message_from_bytes(raw, policy=policy.default)["subject"].startswith("newsmon")
