"""Config validation: every problem named by file and key, with what to do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.core.config import ConfigError, load_config
from monitor.ops.cli import main
from tests.helpers import REPO, SECRET, write_config

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
        (
            [{**GOOD_FEED, "url": "ftp://e.org/f"}],
            [],
            "",
            "feeds.toml",
            'feeds[name="blog"].url',
            "http(s)",
        ),
        ([GOOD_FEED, GOOD_FEED], [], "", "feeds.toml", "feeds[1].name", "unique"),
        (
            [{**GOOD_FEED, "interval_seconds": -5}],
            [],
            "",
            "feeds.toml",
            'feeds[name="blog"].interval_seconds',
            "at least 1 and at most 604800 seconds",
        ),
        (
            [{**GOOD_FEED, "intervall": 5}],
            [],
            "",
            "feeds.toml",
            'feeds[name="blog"].intervall',
            "unknown key",
        ),
        (
            [],
            [{**GOOD_SUB, "topics": ["sport"]}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].topics',
            "unknown topic 'sport'",
        ),
        (
            [],
            [{**GOOD_SUB, "secret": "hunter2"}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].secret',
            "whsec_",
        ),
        (
            [],
            [{**GOOD_SUB, "secret": "whsec_!!!"}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].secret',
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
            'subscriptions[id="ops"].secret_env',
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
        (
            [],
            [],
            "[alerts]\nmax_age_hours = 0\n",
            "newsmon.toml",
            "alerts.max_age_hours",
            "more than 0",
        ),
        (
            [],
            [{**GOOD_SUB, "format": "mattermost"}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].format',
            "unknown format 'mattermost'; write one of 'standard', 'slack'",
        ),
        (
            [],
            [{**GOOD_SUB, "digest_minutes": 0}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].digest_minutes',
            "at least 1 and at most 1440 minutes",
        ),
        (
            [],
            [{**GOOD_SUB, "backfill_hours": -1}],
            "",
            "subscriptions.toml",
            'subscriptions[id="ops"].backfill_hours',
            "0 sends none",
        ),
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
        'subscriptions.toml: subscriptions[id="ops"].topics',
    ):
        assert fragment in result.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(REPO / "config")],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "8 topics" in ok.stdout


def _check(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`newsmon check --config DIRECTORY` in this process: its exit code and its stderr."""
    code = main(["check", "--config", str(directory)])
    return code, capsys.readouterr().err


def _model_with(**changes: object) -> str:
    """The shipped topic_model.json with some fields replaced, as JSON text."""
    model = json.loads((REPO / "config" / "topic_model.json").read_text())
    return json.dumps({**model, **changes})


def _first_weights(value: object) -> dict[str, list[object]]:
    model = json.loads((REPO / "config" / "topic_model.json").read_text())
    first, *_ = model["topics"]
    return {**model["topics"], first: [value, *model["topics"][first][1:]]}


FEED = '[[feeds]]\nname = "blog"\nurl = "https://example.org/feed.xml"\n'
SUB = f'[[subscriptions]]\nid = "ops"\nurl = "https://hooks.example.org/x"\nsecret = "{SECRET}"\n'
TOPIC = '[topics.x]\nthreshold = 2\n[topics.x.terms]\n"war" = 2\n'
DEEP = "[" * 100_000 + "]" * 100_000


# (file written, its text, file named, key named, what the message says)
MALFORMED = [
    # Tracebacks before: urlsplit, hashing a list, the parsers' recursion, float(10**400).
    ("feeds.toml", '[[feeds]]\nname = "a"\nurl = "http://[::1/feed"\n', "feeds.toml",
     'feeds[name="a"].url', "Invalid IPv6 URL"),
    ("subscriptions.toml", SUB + "topics = [[1]]\n", "subscriptions.toml",
     'subscriptions[id="ops"].topics', "list of strings"),
    ("subscriptions.toml", SUB + "topics = [{ a = 1 }]\n", "subscriptions.toml",
     'subscriptions[id="ops"].topics', "list of strings"),
    ("newsmon.toml", f"x = {DEEP}\n", "newsmon.toml", "-", "nest too deeply"),
    ("feeds.toml", f"x = {DEEP}\n", "feeds.toml", "-", "nest too deeply"),
    ("topic_model.json", DEEP, "topic_model.json", "-", "nest too deeply"),
    ("topic_model.json", _model_with(topics=_first_weights(10**400)), "topic_model.json",
     "topics.diplomacy", "each from -1000 to 1000"),
    ("newsmon.toml", '[storage]\ndata_dir = "~no-such-user-x/data"\n', "newsmon.toml",
     "storage.data_dir", "no such user"),
    # Accepted before, and then broke a worker or the poller.
    ("newsmon.toml", "[delivery]\ntimeout_seconds = inf\n", "newsmon.toml",
     "delivery.timeout_seconds", "at most 300 seconds"),
    ("newsmon.toml", "[delivery]\ntimeout_seconds = nan\n", "newsmon.toml",
     "delivery.timeout_seconds", "at most 300 seconds"),
    ("newsmon.toml", "[poller]\ntimeout_seconds = 1e9\n", "newsmon.toml",
     "poller.timeout_seconds", "at most 300 seconds"),
    ("newsmon.toml", "[dedupe]\nwindow_hours = inf\n", "newsmon.toml",
     "dedupe.window_hours", "at most 720 hours (30 days)"),
    ("newsmon.toml", "[dedupe]\nwindow_hours = 0.0001\n", "newsmon.toml",
     "dedupe.window_hours", "at least 0.01"),
    ("newsmon.toml", "[delivery]\nretry_schedule_seconds = [0, 100000000000000000]\n",
     "newsmon.toml", "delivery.retry_schedule_seconds", "604800 (7 days)"),
    ("newsmon.toml", "[delivery]\nretry_schedule_seconds = [" + "0, " * 101 + "]\n",
     "newsmon.toml", "delivery.retry_schedule_seconds", "at most 100"),
    ("newsmon.toml", "[delivery]\ndisable_after_hours = inf\n", "newsmon.toml",
     "delivery.disable_after_hours", "at most 720 hours"),
    ("newsmon.toml", "[delivery]\ndead_letter_days = 1e300\n", "newsmon.toml",
     "delivery.dead_letter_days", "at most 365 days"),
    ("newsmon.toml", "[delivery]\nmax_in_flight = 1000000\n", "newsmon.toml",
     "delivery.max_in_flight", "at most 100"),
    ("newsmon.toml", "[poller]\nconcurrency = 10000000000\n", "newsmon.toml",
     "poller.concurrency", "at most 1000"),
    ("newsmon.toml", "[poller]\nper_host = 100000\n", "newsmon.toml",
     "poller.per_host", "at most 100"),
    ("newsmon.toml", "[poller]\nseen_per_feed = 10000000000000\n", "newsmon.toml",
     "poller.seen_per_feed", "at most 1000000"),
    ("newsmon.toml", "[poller]\nmax_body_bytes = 100000000000000\n", "newsmon.toml",
     "poller.max_body_bytes", "1 GiB"),
    ("newsmon.toml", "[poller]\nmax_interval_seconds = 99999999999999999999\n", "newsmon.toml",
     "poller.max_interval_seconds", "7 days"),
    ("newsmon.toml", '[storage]\ndata_dir = "a\\u0000b"\n', "newsmon.toml",
     "storage.data_dir", "NUL"),
    ("newsmon.toml", '[websub]\ncallback_url = "https://e.org:99999/websub"\n', "newsmon.toml",
     "websub.callback_url", "Port out of range"),
    ("feeds.toml", '[[feeds]]\nname = "a"\nurl = "http://e.org:99999/feed"\n', "feeds.toml",
     'feeds[name="a"].url', "Port out of range"),
    ("feeds.toml", '[[feeds]]\nname = "a"\nurl = "http://exa mple.org/feed"\n', "feeds.toml",
     'feeds[name="a"].url', "spaces"),
    ("feeds.toml", FEED + "interval_seconds = 100000000000000000000\n", "feeds.toml",
     'feeds[name="blog"].interval_seconds', "7 days"),
    ("feeds.toml", '[[feeds]]\nname = "blog\\n"\nurl = "https://e.org/f"\n', "feeds.toml",
     "feeds[0].name", "1-64 letters"),
    ("subscriptions.toml", SUB.replace("hooks.example.org", "\u2603.-") + 'topics = ["*"]\n',
     "subscriptions.toml", 'subscriptions[id="ops"].url', "IDNA"),
    ("topics.toml", TOPIC + '"peace" = inf\n', "topics.toml", "topics.x.terms.peace",
     "at most 1000"),
    ("topics.toml", TOPIC + '"!!!" = 1\n', "topics.toml", "topics.x.terms", "has no words"),
    ("topics.toml", TOPIC.replace("threshold = 2", 'threshold = 2\nignore = ["--"]'),
     "topics.toml", "topics.x.ignore", "has no words"),
    ("topics.toml", TOPIC.replace("threshold = 2", "threshold = inf"), "topics.toml",
     "topics.x.threshold", "at most 1000"),
    ("topic_model.json", _model_with(topics=_first_weights(float("inf"))), "topic_model.json",
     "topics.diplomacy", "each from -1000 to 1000"),
    # A key no bare name can show is quoted, control characters escaped.
    ("newsmon.toml", '"" = 1\n', "newsmon.toml", '""', "unknown key"),
    ("newsmon.toml", '"\\u001b[2J" = 1\n', "newsmon.toml", '"\\u001b[2J"', "unknown key"),
    # A key of an earlier release says what replaced it.
    ("newsmon.toml", "[dedupe]\nstory_similarity = 0.45\n", "newsmon.toml",
     "dedupe.story_similarity", "replaced by story_probability"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "file", "key", "says"),
    MALFORMED,
    ids=[f"{file} {key} {says}" for _, _, file, key, says in MALFORMED],
)
def test_malformed_config_exits_2_naming_file_key_and_fix(
    tmp_path, capsys, name, text, file, key, says
):
    directory = write_config(tmp_path, [GOOD_FEED], [GOOD_SUB])
    (directory / name).write_text(text)
    code, err = _check(directory, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{file}: {key}: " in err and says in err, err


@pytest.mark.parametrize(
    "name", ["newsmon.toml", "feeds.toml", "topics.toml", "subscriptions.toml", "topic_model.json"]
)
def test_a_config_file_that_is_a_folder_or_a_socket_is_named(tmp_path, capsys, monkeypatch, name):
    directory = write_config(tmp_path / "folder", [GOOD_FEED], [GOOD_SUB])
    (directory / name).unlink()
    (directory / name).mkdir()
    code, err = _check(directory, capsys)
    assert code == 2 and f"{name}: -: is a folder, not a file" in err, err

    directory = write_config(tmp_path / "socket", [GOOD_FEED], [GOOD_SUB])
    (directory / name).unlink()
    monkeypatch.chdir(directory)  # a unix socket's path is short: bind it by its own name
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(name)
        code, err = _check(directory, capsys)
    assert code == 2 and f"{name}: -: is not a regular file" in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
@pytest.mark.parametrize("name", ["feeds.toml", "topic_model.json"])
def test_an_unreadable_config_file_is_named(tmp_path, capsys, name):
    directory = write_config(tmp_path, [GOOD_FEED], [GOOD_SUB])
    (directory / name).chmod(0)
    code, err = _check(directory, capsys)
    assert code == 2 and f"{name}: -: cannot be read" in err, err


@pytest.mark.parametrize(
    "name", ["newsmon.toml", "feeds.toml", "topics.toml", "subscriptions.toml", "topic_model.json"]
)
def test_a_config_file_not_in_utf8_is_named(tmp_path, capsys, name):
    directory = write_config(tmp_path, [GOOD_FEED], [GOOD_SUB])
    (directory / name).write_bytes('x = "caf\xe9"\n'.encode("latin-1"))
    code, err = _check(directory, capsys)
    assert code == 2 and f"{name}: -: not UTF-8 text" in err, err


def test_a_subscription_is_named_by_its_id_and_a_mistyped_url_shown_whole(tmp_path, capsys):
    typo = "htps://desk:s3cr3t-pass@hooks.example.org/services/newsroom/desk/incoming?key=s3cr3t"
    no_id = {k: v for k, v in GOOD_SUB.items() if k != "id"}
    directory = write_config(
        tmp_path, [GOOD_FEED], [{**GOOD_SUB, "id": "desk", "url": typo}, no_id]
    )
    code, err = _check(directory, capsys)
    assert code == 2, err
    shown = "htps://***@hooks.example.org/services/newsroom/desk/incoming?key=***"
    assert (
        f'subscriptions.toml: subscriptions[id="desk"].url: "{shown}" is not a usable '
        "http(s) URL (it needs http:// or https:// and a host)"
    ) in err
    assert "s3cr3t" not in err
    # Without an id (or with one another subscription shares), its place names it.
    assert "subscriptions.toml: subscriptions[1].id: is required" in err
