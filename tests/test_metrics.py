"""Histograms and build info on /metrics: kept in Redis by the poller and the workers, read
at scrape time, and the Grafana dashboard's queries name only metrics /metrics exposes."""

from __future__ import annotations

import json
import math
import re

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor.core import __version__
from monitor.core.histograms import FETCH, HISTOGRAMS, Histogram, distribution
from monitor.poller.loop import Poller
from tests.helpers import REPO, SECRET, load, polled_before, run_worker, write_config
from tests.stories import ROUND_ONE_LIVEBLOG, rss

DASHBOARD = REPO / "deploy" / "grafana" / "newsmon.json"
SMALL = Histogram("small", "", (0.1, 1.0, 10.0))


@pytest.mark.parametrize(
    ("value", "field"),
    [(0.0, "0.1"), (0.1, "0.1"), (0.10001, "1.0"), (1.0, "1.0"), (9.9, "10.0"), (10.5, "+Inf")],
)
def test_an_observation_falls_in_the_first_bucket_that_holds_it(value: float, field: str):
    assert SMALL.field_of(value) == field


def test_distribution_is_cumulative_and_takes_fields_of_other_bounds():
    raw = {b"0.1": b"2", b"10.0": b"1", b"+Inf": b"4", b"0.5": b"3", b"sum": b"12.5"}
    seen = distribution(SMALL, raw)
    assert seen.buckets == [("0.1", 2), ("1.0", 5), ("10.0", 6), ("+Inf", 10)]
    assert (seen.count, seen.sum) == (10, 12.5)


def test_no_observation_yet_is_an_empty_histogram():
    assert distribution(FETCH, {}).buckets[-1] == ("+Inf", 0)


@pytest.fixture
def scraped(tmp_path, connection, http_server, serve_url) -> dict[str, list[Sample]]:
    """A real run: one poll of a feed, a worker draining the queues into a webhook receiver,
    then one scrape of /metrics; its samples by metric family."""
    http_server.route(
        "/feed.xml", (200, {"content-type": "application/rss+xml"}, rss(ROUND_ONE_LIVEBLOG))
    )
    http_server.route("/hook", (204, {}, b""))
    config = load(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "live", "url": http_server.url_for("/feed.xml")}],
            subscriptions=[
                {
                    "id": "all",
                    "url": http_server.url_for("/hook"),
                    "topics": ["*"],
                    "secret": SECRET,
                }
            ],
        )
    )
    polled_before(connection, config.feeds)  # so that the document is news, alerted
    Poller(config, connection).poll_feeds(config.feeds)
    run_worker(config, connection)
    response = httpx.get(f"{serve_url(config)}/metrics")
    assert response.status_code == 200
    return {f.name: f.samples for f in text_string_to_metric_families(response.text)}


def test_a_run_fills_every_histogram_consistently(scraped):
    processed = scraped["newsmon_entries_processed"][0].value
    delivered = scraped["newsmon_alerts_delivered"][0].value
    assert processed == len(ROUND_ONE_LIVEBLOG) and delivered == len(ROUND_ONE_LIVEBLOG)
    expected_counts = {
        "fetch_duration_seconds": 1,
        "entry_processing_seconds": processed,
        "delivery_duration_seconds": delivered,
        "fetch_to_delivery_seconds": delivered,
    }
    for histogram in HISTOGRAMS:
        samples = scraped[f"newsmon_{histogram.name}"]
        buckets = [s for s in samples if s.name.endswith("_bucket")]
        bounds = [float(s.labels["le"]) for s in buckets]
        counts = [s.value for s in buckets]
        assert bounds == [*histogram.bounds, math.inf]
        assert counts == sorted(counts), f"{histogram.name} buckets are not cumulative"
        (count,) = [s.value for s in samples if s.name.endswith("_count")]
        (total,) = [s.value for s in samples if s.name.endswith("_sum")]
        assert count == counts[-1] == expected_counts[histogram.name], histogram.name
        assert total > 0, histogram.name
        # Each observation is at most its bucket's bound, so the sum is at most their sum.
        per_bucket = [c - previous for c, previous in zip(counts, [0, *counts[:-1]], strict=True)]
        if per_bucket[-1] == 0:
            assert total <= sum(b * n for b, n in zip(bounds[:-1], per_bucket[:-1], strict=True))


def test_build_info_names_the_version(scraped):
    (sample,) = scraped["newsmon_build_info"]
    assert (sample.labels, sample.value) == ({"version": __version__}, 1.0)


def test_the_dashboard_queries_only_metrics_that_are_exposed(scraped):
    dashboard = json.loads(DASHBOARD.read_text())
    exposed = {sample.name for samples in scraped.values() for sample in samples}
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) >= 8
    named = {name for query in queries for name in re.findall(r"\bnewsmon_\w+", query)}
    assert named and named <= exposed, sorted(named - exposed)
    for histogram in HISTOGRAMS:
        assert f"newsmon_{histogram.name}_bucket" in named, histogram.name
