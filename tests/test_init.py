"""`newsmon init DIR`: the shipped config folder, subscriptions commented out, written into a
folder without overwriting anything."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from monitor.core.config import load_config
from monitor.ops.starter import commented, shipped_files
from tests.helpers import REPO, SECRET

SHIPPED = sorted(p.name for p in (REPO / "config").iterdir() if p.suffix in (".toml", ".json"))


def newsmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60
    )


def test_init_writes_the_shipped_folder_ready_to_check(tmp_path):
    target = tmp_path / "etc" / "newsmon"
    result = newsmon("init", str(target))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == SHIPPED
    for name in SHIPPED:
        if name != "subscriptions.toml":
            assert (target / name).read_bytes() == (REPO / "config" / name).read_bytes(), name
    config = load_config(target)
    assert (len(config.feeds), config.subscriptions) == (
        len(load_config(REPO / "config").feeds),
        (),
    )
    assert newsmon("check", "--config", str(target)).returncode == 0


def test_init_overwrites_nothing(tmp_path):
    (tmp_path / "feeds.toml").write_text("# mine\n")
    result = newsmon("init", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path} already holds feeds.toml;" in result.stderr
    assert (tmp_path / "feeds.toml").read_text() == "# mine\n"
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.toml"]


ACTIVE = f"""# comment stays
[[subscriptions]]
id = "ops"
  url = "https://hooks.example.org/x"

secret = "{SECRET}"
"""
COMMENTED = f"""# comment stays
# [[subscriptions]]
# id = "ops"
#   url = "https://hooks.example.org/x"

# secret = "{SECRET}"
"""


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("", ""),
        ("# only comments\n#\n", "# only comments\n#\n"),
        ("[[subscriptions]]\nid = 'a'", "# [[subscriptions]]\n# id = 'a'"),
        (ACTIVE, COMMENTED),
    ],
)
def test_subscriptions_go_out_commented(toml: str, expected: str):
    assert commented(toml) == expected
    assert tomllib.loads(commented(toml)) == {}


def test_the_package_ships_the_repository_config():
    files = shipped_files()
    assert list(files) == SHIPPED
    assert files["topics.toml"] == (REPO / "config" / "topics.toml").read_bytes()
