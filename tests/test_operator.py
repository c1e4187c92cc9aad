"""`newsmon stats`, `/healthz` and `/metrics` against a running `newsmon run`."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from tests.helpers import REPO, SECRET, run_config, write_config
from tests.stories import ROUND_ONE_LIVEBLOG


def test_stats_healthz_and_metrics_of_a_running_monitor(
    tmp_path, http_server, start_process, monkeypatch
):
    monkeypatch.delenv("REDIS_URL", raising=False)
    http_server.route("/broken.xml", (500, {}, b""))
    directory = run_config(tmp_path, http_server)
    feeds = directory / "feeds.toml"
    feeds.write_text(
        feeds.read_text()
        + f'[[feeds]]\nname = "broken"\nurl = "{http_server.url_for("/broken.xml")}"\n'
        + "interval_seconds = 1\n"
    )
    run = start_process("run", "--config", str(directory), "--workers", "1")
    run.wait_for(
        lambda: sum(r.path == "/hook" for r in http_server.requests) == len(ROUND_ONE_LIVEBLOG)
    )
    run.wait_for(lambda: "feed.failed" in [e["event"] for e in run.events()])
    serve = start_process("serve", "--config", str(directory), "--port", "0")
    serve.wait_for(lambda: "serve.started" in [e["event"] for e in serve.events()])
    port = next(e["port"] for e in serve.events() if e["event"] == "serve.started")
    base = f"http://127.0.0.1:{port}"

    health = httpx.get(f"{base}/healthz")
    assert health.status_code == 200, health.text
    assert health.json() == {
        "healthy": True,
        "redis": "ok",
        "poller": "ok",
        "workers": "ok",
        "worker_count": 1,
    }

    stats = start_process("stats", "--config", str(directory), "--json")
    assert stats.finish() == 0
    snap = json.loads(stats.log_path.read_text())
    assert snap["totals"]["entries_processed"] == len(ROUND_ONE_LIVEBLOG)
    assert snap["totals"]["alerts_delivered"] == len(ROUND_ONE_LIVEBLOG)
    assert snap["subscriptions"]["all"]["status"] == "ok"
    assert snap["subscriptions"]["all"]["delivered"] == len(ROUND_ONE_LIVEBLOG)
    assert snap["feeds"]["healthy"] == 1 and snap["feeds"]["failing"] == 1
    assert snap["feeds"]["failing_feeds"][0]["last_error"] == "HTTP 500 Internal Server Error"
    assert (snap["workers"], snap["pollers"]) == (1, 1), snap
    # Five in the last 4 to 5 minutes.
    assert 1 <= snap["per_minute"]["alerts_delivered"] <= len(ROUND_ONE_LIVEBLOG) / 4

    text = start_process("stats", "--config", str(directory))
    assert text.finish() == 0
    assert "subscription all" in text.log_path.read_text()

    metrics = httpx.get(f"{base}/metrics").text
    assert f"newsmon_alerts_delivered_total {len(ROUND_ONE_LIVEBLOG)}.0" in metrics
    assert (
        'newsmon_subscription_alerts_total{outcome="delivered",subscription="all"} 5.0' in metrics
    )
    assert 'newsmon_feeds{state="failing"} 1.0' in metrics
    assert 'newsmon_queue_jobs{queue="newsmon-entries",state="queued"} 0.0' in metrics
    assert "newsmon_workers 1.0" in metrics

    assert run.stop() == 0
    down = httpx.get(f"{base}/healthz")
    assert down.status_code == 503 and down.json()["healthy"] is False
    assert serve.stop() == 0


def test_operator_commands_never_load_the_encoder(tmp_path, connection, redis_url, monkeypatch):
    """`subscriptions`, `deliveries`, `feeds` and `stats` read Redis only: none of them may
    build a worker's runtime, whose encoder costs ~190 MiB and a hash check to load."""
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": "https://news.example/feed.xml"}],
        subscriptions=[
            {"id": "ops", "url": "https://hooks.example/in", "topics": ["*"], "secret": SECRET}
        ],
    )
    monkeypatch.setenv("REDIS_URL", redis_url)
    commands = [
        ["subscriptions", "list"],
        ["deliveries", "dead"],
        ["feeds", "--json"],
        ["stats", "--json"],
    ]
    script = (
        "import sys, json; from monitor.ops.cli import main; "
        f"codes = [main([*c, '--config', {str(directory)!r}]) for c in {commands!r}]; "
        "print(json.dumps([codes, 'onnxruntime' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    codes, encoder_loaded = json.loads(result.stdout.splitlines()[-1])
    assert codes == [0, 0, 0, 0]
    assert encoder_loaded is False
