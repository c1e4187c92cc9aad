"""Email (`format = "email"`): one message per alert or digest to the subscription's `to`,
plain text and HTML (feed text escaped) with each story's link, outlet and topics, sent
through newsmon.toml's [smtp] server (STARTTLS, implicit TLS, or neither) with the password
read from the environment.

A 4xx (the server busy, a mailbox over quota), a recipient refused while others were taken,
or no connection is worth retrying through the schedule; the retry goes to every recipient
again, under the same Message-ID, which mail clients take as the same message. A 5xx for
every recipient, or for the message itself, is final, and the message dead-lettered.
"""

from __future__ import annotations

import html
import os
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime

from monitor.core.config import Settings
from monitor.core.models import Alert, Subscription
from workers.delivery.outcome import DeliveryStatus, Outcome, since
from workers.delivery.text import about, cut, heading, linkable, plain, stories, story_title

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SUBJECT = 200
SUMMARY = 2000


def message(alert: Alert, sender: str, to: tuple[str, ...]) -> EmailMessage:
    """The message for `alert`: the same text, and Message-ID, on every retry."""
    told = stories(alert)
    mail = EmailMessage()
    mail["Subject"] = cut(f"{heading(alert)}: {story_title(told[0].entry)}", SUBJECT)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(alert.created)
    mail["Message-ID"] = f"<{alert.id}@newsmon>"
    summaries = not alert.stories
    mail.set_content("\n\n".join(_plain_story(story, summaries) for story in told) + "\n")
    stories_html = "".join(_html_story(story, summaries) for story in told)
    mail.add_alternative(
        f"<!doctype html><html><body><h2>{html.escape(heading(alert))}</h2>"
        f"{stories_html}</body></html>",
        subtype="html",
    )
    return mail


def _plain_story(story: Alert, summary: bool) -> str:
    entry = story.entry
    lines = [story_title(entry), about(story)]
    if linkable(entry.link):
        lines.append(entry.link)
    if summary and entry.summary:
        lines.append(cut(plain(entry.summary), SUMMARY))
    return "\n".join(lines)


def _html_story(story: Alert, summary: bool) -> str:
    entry = story.entry
    title = html.escape(story_title(entry))
    if linkable(entry.link):
        title = f'<a href="{html.escape(entry.link, quote=True)}">{title}</a>'
    parts = [f"<h3>{title}</h3>", f"<p>{html.escape(about(story))}</p>"]
    if summary and entry.summary:
        parts.append(f"<p>{html.escape(cut(plain(entry.summary), SUMMARY))}</p>")
    return "".join(parts)


class Mailer:
    """Sends through [smtp]: one connection per message, so a worker holds none between."""

    def __init__(self, settings: Settings, timeout_seconds: float):
        self.settings = settings
        self.timeout = timeout_seconds

    def send(self, subscription: Subscription, alert: Alert) -> Outcome:
        mail = message(alert, self.settings.smtp_from, subscription.to)
        started = time.monotonic()
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            final = all(code >= 500 for code, _ in exc.recipients.values())
            status = DeliveryStatus.FAILED if final else DeliveryStatus.RETRY
            return Outcome(status, _refused(exc.recipients), duration_ms=since(started))
        except smtplib.SMTPResponseException as exc:
            final = exc.smtp_code >= 500
            status = DeliveryStatus.FAILED if final else DeliveryStatus.RETRY
            reason = f"SMTP {exc.smtp_code}: {_said(exc.smtp_error)}"
            return Outcome(status, reason, duration_ms=since(started))
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"{type(exc).__name__}: {plain(str(exc))[:200]}"
            return Outcome(DeliveryStatus.RETRY, reason, duration_ms=since(started))
        if refused:  # taken for some recipients, not all
            return Outcome(DeliveryStatus.RETRY, _refused(refused), duration_ms=since(started))
        return Outcome(DeliveryStatus.DELIVERED, duration_ms=since(started))

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        security = settings.smtp_security
        port = settings.smtp_port or DEFAULT_PORTS[security]
        context = ssl.create_default_context()
        if security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host, port, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, port, timeout=self.timeout)
        try:
            if security == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_username:
                password = os.environ.get(settings.smtp_password_env, "")
                smtp.login(settings.smtp_username, password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _said(reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return plain(text)[:200]


def _refused(recipients: dict[str, tuple[int, bytes]]) -> str:
    """Which recipients the server refused, and what it said of each."""
    each = [f"{to} ({code} {_said(said)})" for to, (code, said) in sorted(recipients.items())]
    return cut("refused: " + ", ".join(each), 500)
