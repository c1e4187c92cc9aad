"""Signatures verify with the Standard Webhooks library, and only when nothing was changed."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from monitor.core.models import Alert, Entry
from tests.helpers import SECRET
from workers.delivery.formats import standard as alert_body
from workers.delivery.signing import new_secret, signed_headers

ALERT = Alert(
    id="msg_1",
    subscription_id="ops",
    topics=("diplomacy",),
    entry=Entry(
        id="e1",
        feed_name="blog",
        feed_url="https://e.org/f",
        key="k",
        title="Title",
        link="https://e.org/1",
        summary="Summary",
        published=datetime(2025, 1, 28, 9, 58, tzinfo=UTC),
        story_id="st_e1",
    ),
    created=datetime(2025, 1, 28, 10, 0, 3, tzinfo=UTC),
)


def test_body_matches_the_documented_shape():
    payload = Webhook(SECRET).verify(
        alert_body(ALERT), signed_headers((SECRET,), ALERT.id, int(time.time()), alert_body(ALERT))
    )
    assert payload == {
        "type": "alert.created",
        "timestamp": "2025-01-28T10:00:03Z",
        "data": {
            "alert_id": "msg_1",
            "subscription_id": "ops",
            "topics": ["diplomacy"],
            "story_id": "st_e1",
            "entry": {
                "id": "e1",
                "title": "Title",
                "link": "https://e.org/1",
                "summary": "Summary",
                "published": "2025-01-28T09:58:00Z",
                "feed": {"name": "blog", "url": "https://e.org/f"},
            },
        },
    }


@pytest.mark.parametrize("tamper", ["body", "timestamp", "stale", "secret", "id"])
def test_tampered_deliveries_fail_verification(tamper):
    body, now = alert_body(ALERT), int(time.time())
    headers = signed_headers((SECRET,), ALERT.id, now - 3600 if tamper == "stale" else now, body)
    secret = new_secret() if tamper == "secret" else SECRET
    if tamper == "body":
        body = body.replace(b"Title", b"Tit1e")
    if tamper == "timestamp":
        headers["webhook-timestamp"] = str(now + 1)
    if tamper == "id":
        headers["webhook-id"] = "msg_2"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_every_secret_signs_so_receivers_can_rotate():
    old, new = SECRET, new_secret()
    body = alert_body(ALERT)
    headers = signed_headers((old, new), ALERT.id, int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
