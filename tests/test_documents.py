"""What newsmon keeps in Redis is versioned JSON, readable by the next version of newsmon."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core import documents, keys, queues
from monitor.core.documents import DocumentError, alert_document, read_alert
from monitor.core.models import Alert, Entry
from monitor.poller.loop import Poller
from tests.helpers import blog_config, load, polled_before, run_worker
from tests.stories import ROUND_ONE_LIVEBLOG, rss
from workers.delivery.deadletters import DeadLetters

text = st.text(max_size=40)
moments = st.datetimes(timezones=st.just(UTC))
entries = st.builds(
    Entry,
    id=text,
    feed_name=text,
    feed_url=text,
    key=text,
    title=text,
    link=text,
    summary=text,
    published=st.none() | moments,
    revision=text,
    fetched=st.none() | moments,
    backfilled=st.booleans(),
    text=text,
    story_id=text,
    topics=st.lists(text, max_size=3).map(tuple),
)


def alert_builds(stories: st.SearchStrategy[tuple[Alert, ...]]) -> st.SearchStrategy[Alert]:
    return st.builds(
        Alert,
        id=text,
        subscription_id=text,
        topics=st.lists(text, max_size=3).map(tuple),
        entry=entries,
        created=moments,
        test=st.booleans(),
        stories=stories,
    )


single_alerts = alert_builds(st.just(()))
# Or a digest: an alert listing others.
alerts = single_alerts | alert_builds(st.lists(single_alerts, min_size=1, max_size=3).map(tuple))


@given(alerts)
def test_a_document_written_before_backfill_and_digests_reads_as_neither(alert):
    stored = json.loads(json.dumps(alert_document(alert)))
    del stored["stories"]
    del stored["entry"]["backfilled"]
    old = read_alert(stored)
    assert old.stories == () and old.entry.backfilled is False
    assert old.entry.title == alert.entry.title


@given(alerts)
def test_an_alert_survives_its_json_document(alert):
    stored = json.loads(json.dumps(alert_document(alert)))
    assert stored["v"] == documents.VERSION and read_alert(stored) == alert


@pytest.mark.parametrize(
    "stored, says",
    [
        ({"v": documents.VERSION + 1, "id": "x"}, "written by a newer newsmon"),
        ({"id": "x"}, "not a versioned"),
        (["a", "list"], "not a versioned"),
    ],
)
def test_a_document_it_cannot_read_is_refused_clearly(stored, says):
    with pytest.raises(DocumentError, match=says):
        read_alert(stored)


def setup(tmp_path, connection, http_server, status=200):
    http_server.route(
        "/blog.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG[:2]))
    )
    http_server.route("/hook", (status, {}, b""))
    config = load(blog_config(tmp_path / "config", http_server, "/hook"))
    polled_before(connection, config.feeds)
    Poller(config, connection).poll_feeds(config.feeds)
    return config


def test_jobs_queued_by_this_version_run_on_the_next(
    tmp_path, connection, http_server, monkeypatch
):
    config = setup(tmp_path, connection, http_server)
    (job,) = queues.queue(keys.ENTRIES_QUEUE, connection).get_jobs()
    # RQ compresses a job's data; inside is plain JSON, no pickle.
    function, _, args, _ = json.loads(zlib.decompress(connection.hget(job.key, "data")))
    assert function == queues.PROCESS_JOB and args[0][0]["v"] == documents.VERSION

    monkeypatch.setattr(documents, "VERSION", documents.VERSION + 1)  # the reader moves on
    run_worker(config, connection)
    assert len([r for r in http_server.requests if r.path == "/hook"]) == 2


def test_dead_letters_are_json_and_replay_as_the_same_alert(tmp_path, connection, http_server):
    config = setup(tmp_path, connection, http_server, status=400)
    run_worker(config, connection)
    stored = [json.loads(v) for v in connection.hvals(keys.DEAD_LETTERS)]
    assert len(stored) == 2 and all(record["v"] == documents.VERSION for record in stored)
    dead = DeadLetters(connection, 3600)
    assert dead.count("all") == 2
    taken = dead.take([record["alert_id"] for record in stored])
    assert {a.id for a in taken} == {record["alert_id"] for record in stored}
    assert all(a.created <= datetime.now(UTC) for a in taken)
    assert dead.count("all") == 0 and dead.list() == []
