"""Each job's ids ride on its own log lines and on no other: a real RQ worker runs the jobs of
two polls, one after another in this process, as `newsmon worker` does."""

from __future__ import annotations

from collections import defaultdict

import structlog
from structlog.contextvars import get_contextvars, merge_contextvars

from monitor.poller.loop import Poller
from tests.helpers import RSS, blog_config, load, polled_before, run_worker
from tests.stories import ROUND_ONE_LIVEBLOG, rss

# The keys of each event, as its JSON line has them (the renderer adds level and timestamp).
KEYS = {
    "entry.classified": {"job_id", "entry_id", "feed", "story_id", "topics", "title"},
    "alert.enqueued": {
        *("job_id", "alert_id", "subscription", "entry_id", "story_id", "topics", "digest"),
    },
    "alert.delivered": {
        "job_id",
        "subscription",
        "attempt",
        "alert_id",
        "entry_id",
        "http_status",
        "duration_ms",
    },
}


def test_no_job_leaves_its_ids_on_the_next_jobs_lines(tmp_path, connection, http_server):
    http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:2])))
    http_server.route("/hook", (204, {}, b""))
    config = load(blog_config(tmp_path / "config", http_server, "/hook"))
    polled_before(connection, config.feeds)
    poller = Poller(config, connection)
    with structlog.testing.capture_logs(processors=[merge_contextvars]) as logs:
        poller.poll_feeds(config.feeds)
        run_worker(config, connection)  # entries, then their deliveries
        http_server.route("/blog.xml", (200, RSS, rss(ROUND_ONE_LIVEBLOG[:4])))
        poller.poll_feeds(config.feeds)
        run_worker(config, connection)  # the same again, after a delivery job ran

    assert get_contextvars() == {}
    events = [e["event"] for e in logs]
    assert events.count("entry.classified") == 4 and events.count("alert.delivered") == 4
    for line in logs:
        if line["event"] in KEYS:
            assert set(line) - {"event", "log_level"} == KEYS[line["event"]], line
        else:
            assert "job_id" not in line, line  # the poller's and the worker's, between jobs
    jobs_of = defaultdict(set)  # job id -> what its lines are about
    for line in logs:
        if "job_id" in line:
            jobs_of[line["job_id"]].add(line["event"].split(".")[0])
    assert len(jobs_of) == 4 and None not in jobs_of  # two entry jobs, two delivery jobs
    assert sorted(map(sorted, jobs_of.values())) == [
        ["alert"],
        ["alert"],
        ["alert", "entry"],
        ["alert", "entry"],
    ]
