"""Settings from the environment: NEWSMON_<SECTION>__<KEY> overrides `[section] key` of
newsmon.toml, is checked exactly as the file's value is, and its problems name the variable."""

from __future__ import annotations

import json
import math
import os
import reprlib
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.config import (
    SETTINGS_KEYS,
    ConfigError,
    Problem,
    Settings,
    env_variable,
    load_config,
)
from tests.helpers import REPO, write_config

FIX = "; fix or unset it"
EXAMPLES = settings(
    max_examples=int(os.environ.get("NEWSMON_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Values of each kind a setting takes, in and out of its bounds, and of the other kinds.
texts = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x7f"), max_size=20
)
values = (
    st.integers(-(10**20), 10**20)
    | st.integers(-2, 2000)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-1, 1000)
    | st.booleans()
    | texts
    | st.sampled_from(["https://e.org/websub", "ftp://e.org/", "~", "data", "/var/lib/newsmon"])
    | st.lists(st.integers(-5, 8 * 86400), max_size=4)
    | st.lists(texts, max_size=2)
)


def toml(value: Any) -> str:
    """A value as TOML writes it (JSON's form of these is TOML's, but for inf and nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(value, ensure_ascii=False)


def outcome(directory: Path, environ: dict[str, str]) -> Settings | list[str]:
    """The settings loaded, or each problem as `key: message` with the variable's name for
    the key and the variable's own ending dropped, to compare with the file's."""
    with mock.patch.dict(os.environ, environ):
        try:
            return load_config(directory).settings
        except ConfigError as exc:
            return sorted(_neutral(problem) for problem in exc.problems)


def _neutral(problem: Problem) -> str:
    for section, key, *_ in SETTINGS_KEYS:
        if problem.key == env_variable(section, key):
            return f"{section}.{key}: {problem.message.removesuffix(FIX)}"
    return f"{problem.key}: {problem.message}"


def valid_config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config", feeds=[{"name": "a", "url": "https://e.org/a"}])


setting_values = st.tuples(st.sampled_from(SETTINGS_KEYS), values)


@EXAMPLES
@given(setting=setting_values)
def test_a_variable_is_read_and_checked_as_the_file_would_be(
    tmp_path: Path, setting: tuple[tuple[Any, ...], Any]
) -> None:
    (section, key, _, kind, _), value = setting
    if kind is str and not isinstance(value, str):
        return  # a text setting takes a bare value from a variable: see the test below
    directory = valid_config(tmp_path)
    (directory / "newsmon.toml").write_text(f"[{section}]\n{key} = {toml(value)}\n")
    from_file = outcome(directory, {})
    (directory / "newsmon.toml").write_text("")
    from_variable = outcome(directory, {env_variable(section, key): toml(value)})
    assert from_variable == from_file


@EXAMPLES
@given(interval=st.integers(60, 3600), timeout=st.floats(0.5, 300))
def test_a_variable_wins_over_the_file(tmp_path: Path, interval: int, timeout: float) -> None:
    directory = valid_config(tmp_path)
    (directory / "newsmon.toml").write_text(
        "[poller]\ninterval_seconds = 300\n[delivery]\ntimeout_seconds = 15\n"
    )
    settings = outcome(
        directory,
        {
            "NEWSMON_POLLER__INTERVAL_SECONDS": str(interval),
            "NEWSMON_DELIVERY__TIMEOUT_SECONDS": repr(timeout),
        },
    )
    assert isinstance(settings, Settings)
    assert (settings.poll_interval_seconds, settings.delivery_timeout_seconds) == (
        interval,
        timeout,
    )


def test_text_settings_take_bare_values(tmp_path: Path) -> None:
    directory = valid_config(tmp_path)
    settings = outcome(
        directory,
        {
            "NEWSMON_STORAGE__DATA_DIR": "/var/lib/newsmon",
            "NEWSMON_WEBSUB__CALLBACK_URL": "https://newsmon.example.org/websub",
            "NEWSMON_DELIVERY__RETRY_SCHEDULE_SECONDS": "[0, 5, 60]",
        },
    )
    assert isinstance(settings, Settings)
    assert settings.data_dir == Path("/var/lib/newsmon")
    assert settings.websub_callback_url == "https://newsmon.example.org/websub"
    assert settings.retry_schedule_seconds == (0, 5, 60)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "NEWSMON_POLLER__INTERVAL_SECONDS",
            "soon",
            "environment: NEWSMON_POLLER__INTERVAL_SECONDS: must be int, not str 'soon'; "
            "write a whole number" + FIX,
        ),
        (
            "NEWSMON_DEDUPE__SIMILARITY",
            "2",
            "environment: NEWSMON_DEDUPE__SIMILARITY: must be between 0 (exclusive) and 1" + FIX,
        ),
        (
            "NEWSMON_POLLER__INTERVALSECONDS",
            "120",
            "environment: NEWSMON_POLLER__INTERVALSECONDS: no such setting "
            "(NEWSMON_<SECTION>__<KEY> of newsmon.toml); "
            "did you mean NEWSMON_POLLER__INTERVAL_SECONDS?",
        ),
        (
            "NEWSMON_NOPE__NOTHING",
            "1",
            "environment: NEWSMON_NOPE__NOTHING: no such setting "
            "(NEWSMON_<SECTION>__<KEY> of newsmon.toml); unset it",
        ),
    ],
)
def test_check_names_the_variable_at_fault(variable: str, value: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(REPO / "config")],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [f"  {expected}"]


def test_other_newsmon_variables_are_not_settings(tmp_path: Path) -> None:
    settings = outcome(valid_config(tmp_path), {"NEWSMON_LOG_LEVEL": "debug"})
    assert isinstance(settings, Settings)


DEEP = "[" * 5000 + "]" * 5000
LONG = "9" * 5000
UNREADABLE = [
    (
        "poller",
        "interval_seconds",
        LONG,
        "holds a number of more than 4300 digits; write a smaller number",
    ),
    (
        "delivery",
        "retry_schedule_seconds",
        DEEP,
        "arrays or tables nest too deeply to read; flatten them",
    ),
]


def check(directory: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "check", "--config", str(directory)],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "problem"), UNREADABLE, ids=["long-number", "deep-array"]
)
def test_a_value_python_cannot_hold_is_a_problem_in_the_file_and_the_environment(
    tmp_path: Path, section: str, key: str, value: str, problem: str
) -> None:
    directory = valid_config(tmp_path)
    (directory / "newsmon.toml").write_text(f"[{section}]\n{key} = {value}\n")
    from_file = check(directory, {})
    assert (from_file.returncode, from_file.stderr.splitlines()[1:]) == (
        2,
        [f"  {directory / 'newsmon.toml'}: -: {problem}"],
    )
    (directory / "newsmon.toml").write_text("")
    variable = env_variable(section, key)
    from_variable = check(directory, {variable: value})
    assert (from_variable.returncode, from_variable.stderr.splitlines()[1:]) == (
        2,
        [f"  environment: {variable}: {problem}{FIX}"],
    )
    assert "Traceback" not in from_file.stderr + from_variable.stderr


def test_a_text_setting_takes_any_bare_value(tmp_path: Path) -> None:
    settings = outcome(valid_config(tmp_path), {"NEWSMON_WEBSUB__CALLBACK_URL": DEEP})
    assert isinstance(settings, list)  # judged as the text it is: not a URL
    assert settings == [
        f"websub.callback_url: {reprlib.repr(DEEP)} is not a usable http(s) URL "
        "(it needs http:// or https:// and a host); write https://host/path"
    ]
