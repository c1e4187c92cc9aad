"""Config validation: every problem named by file and key, with what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitor.config import ConfigError, load_config
from tests.conftest import REPO, SECRET, write_config

GOOD_FEED = {"name": "blog", "url": "https://example.org/feed.xml"}
GOOD_SUB = {
    "id": "ops",
    "url": "https://hooks.example.org/x",
    "topics": ["diplomacy"],
    "secret": SECRET,
}


def test_shipped_config_is_valid():
    config = load_config(REPO / "config")
    assert {t.name for t in config.topics} == {
        "diplomacy",
        "frontline",
        "health",
        "humanitarian",
        "politics",
        "energy",
        "migration",
        "culture",
    }
    assert config.feeds and config.settings.retry_schedule_seconds[0] == 0


@pytest.mark.parametrize(
    ("feeds", "subscriptions", "settings", "file", "key", "says"),
    [
        ([{"url": "https://e.org/f"}], [], "", "feeds.toml", "feeds[0].name", "required"),
        ([{**GOOD_FEED, "url": "ftp://e.org/f"}], [], "", "feeds.toml", "feeds[0].url", "http(s)"),
        ([GOOD_FEED, GOOD_FEED], [], "", "feeds.toml", "feeds[1].name", "unique"),
        (
            [{**GOOD_FEED, "interval_seconds": -5}],
            [],
            "",
            "feeds.toml",
            "feeds[0].interval_seconds",
            "greater than 0",
        ),
        (
            [{**GOOD_FEED, "intervall": 5}],
            [],
            "",
            "feeds.toml",
            "feeds[0].intervall",
            "unknown key",
        ),
        (
            [],
            [{**GOOD_SUB, "topics": ["sport"]}],
            "",
            "subscriptions.toml",
            "subscriptions[0].topics",
            "unknown topic 'sport'",
        ),
        (
            [],
            [{**GOOD_SUB, "secret": "hunter2"}],
            "",
            "subscriptions.toml",
            "subscriptions[0].secret",
            "whsec_",
        ),
        (
            [],
            [{**GOOD_SUB, "secret": "whsec_!!!"}],
            "",
            "subscriptions.toml",
            "subscriptions[0].secret",
            "base64",
        ),
        (
            [],
            [
                {k: v for k, v in GOOD_SUB.items() if k != "secret"}
                | {"secret_env": "NO_SUCH_VAR_X"}
            ],
            "",
            "subscriptions.toml",
            "subscriptions[0].secret_env",
            "NO_SUCH_VAR_X is not set",
        ),
        ([], [], "[dedupe]\nsimilarity = 3\n", "newsmon.toml", "dedupe.similarity", "between 0"),
        (
            [],
            [],
            "[delivery]\nretry_schedule_seconds = []\n",
            "newsmon.toml",
            "delivery.retry_schedule_seconds",
            "non-empty list",
        ),
        ([], [], "[poller\n", "newsmon.toml", "-", "not valid TOML"),
        (
            [],
            [],
            "[poller]\nmin_interval_seconds = 600\n",
            "newsmon.toml",
            "poller",
            "min_interval_seconds <= interval_seconds",
        ),
        ([], [], '[websub]\ncallback_url = "ws"\n', "newsmon.toml", "websub.callback_url", "http"),
    ],
)
def test_each_problem_names_file_key_and_fix(
    tmp_path, feeds, subscriptions, settings, file, key, says
):
    directory = write_config(tmp_path, feeds, subscriptions, settings)
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    problems = caught.value.problems
    assert any(p.file.endswith(file) and p.key == key and says in p.message for p in problems), (
        problems
    )


def test_check_lists_every_problem_and_exits_2(tmp_path):
    directory = write_config(tmp_path, [{"url": "nope"}], [{**GOOD_SUB, "topics": ["sport"]}])
    (directory / "topics.toml").write_text(
        '[topics.x]\nthreshold = "high"\n[topics.x.terms]\nwar = "a"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(directory)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    for fragment in (
        "feeds.toml: feeds[0].name",
        "feeds.toml: feeds[0].url",
        "topics.toml: topics.x.threshold",
        "topics.toml: topics.x.terms.war",
        "subscriptions.toml: subscriptions[0].topics",
    ):
        assert fragment in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(REPO / "config")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "8 topics" in ok.stdout
