"""A Redis that would lose newsmon's state (no AOF, or an evicting maxmemory-policy) is named
at the start of every process that uses it, in /readyz and on the board; under
storage.require_durable_redis those processes refuse to start."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from monitor.ops.redis_server import EmbeddedRedis, connect, durability
from tests.helpers import load, write_config

NO_AOF = ("--appendonly", "no")
EVICTING = ("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
NO_CONFIG = ("--rename-command", "CONFIG", "")  # as a managed Redis refuses CONFIG
REQUIRE = {"NEWSMON_STORAGE__REQUIRE_DURABLE_REDIS": "true"}


@pytest.fixture
def redis_with() -> Iterator[Callable[..., str]]:
    """A Redis server of its own, started with extra redis-server options: its URL."""
    started: list[EmbeddedRedis] = []
    # A short folder: a unix socket's path may hold at most 107 bytes.
    with tempfile.TemporaryDirectory(prefix="nm-") as folder:

        def start(*options: str) -> str:
            server = EmbeddedRedis(Path(folder) / str(len(started)), options)
            started.append(server)
            return server.start()

        yield start
        for server in started:
            server.stop()


def test_durable_means_aof_on_and_no_eviction(redis_with):
    assert durability(connect(redis_with())).durable is True
    assert durability(connect(redis_with())).warning() is None

    no_aof = durability(connect(redis_with(*NO_AOF)))
    assert no_aof.durable is False
    (problem,) = no_aof.problems
    assert "appendonly is 'no'" in problem and "CONFIG SET appendonly yes" in problem
    assert "`appendonly yes` in redis.conf" in problem

    evicting = durability(connect(redis_with(*EVICTING)))
    (problem,) = evicting.problems
    assert "maxmemory-policy is 'allkeys-lru'" in problem
    assert "CONFIG SET maxmemory-policy noeviction" in problem

    both = durability(connect(redis_with(*NO_AOF, *EVICTING)))
    assert len(both.problems) == 2 and both.warning().startswith("Redis is not durable: ")

    refused = durability(connect(redis_with(*NO_CONFIG)))
    assert refused.durable is None and "CONFIG GET refused" in refused.warning()

    gone = durability(redis.Redis(host="127.0.0.1", port=1))
    assert gone.durable is None and "unreachable" in gone.warning()


@pytest.mark.parametrize(
    ("options", "event"),
    [(NO_AOF, "redis.not_durable"), (NO_CONFIG, "redis.durability_unchecked")],
)
def test_the_poller_names_what_is_wrong_once_and_goes_on(
    tmp_path, start_process, redis_with, options, event
):
    directory = write_config(tmp_path / "config")
    poll = start_process(
        "poll", "--config", str(directory), env={"REDIS_URL": redis_with(*options)}
    )
    poll.wait_for(lambda: "poller.started" in [e["event"] for e in poll.events()])
    assert poll.stop() == 0
    (warning,) = [e for e in poll.events() if e["event"].startswith("redis.")]
    assert (warning["event"], warning["level"]) == (event, "warning")
    assert warning["redis"].endswith("redis.sock")
    if event == "redis.not_durable":
        assert "CONFIG SET appendonly yes" in warning["problems"][0]


@pytest.mark.parametrize(
    "command", [["poll"], ["worker", "--burst"], ["serve", "--port", "0"], ["run"]]
)
def test_require_durable_redis_refuses_to_start_with_exit_2(
    tmp_path, start_process, redis_with, command
):
    directory = write_config(tmp_path / "config")
    url = redis_with(*NO_AOF)
    process = start_process(*command, "--config", str(directory), env={"REDIS_URL": url, **REQUIRE})
    assert process.finish() == 2
    said = process.log_path.read_text()
    assert "Traceback" not in said
    assert "newsmon: Redis is not durable: appendonly is 'no'" in said
    assert f"{directory / 'newsmon.toml'}: storage.require_durable_redis" in said
    assert "NEWSMON_STORAGE__REQUIRE_DURABLE_REDIS" in said


def test_the_setting_in_newsmon_toml_refuses_too_and_a_durable_redis_passes(
    tmp_path, start_process, redis_with, redis_url
):
    settings = "[storage]\nrequire_durable_redis = true\n"
    directory = write_config(tmp_path / "config", settings=settings)
    assert load(directory).settings.require_durable_redis is True
    refused = start_process(
        "poll", "--config", str(directory), env={"REDIS_URL": redis_with(*EVICTING)}
    )
    assert refused.finish() == 2
    assert "maxmemory-policy is 'allkeys-lru'" in refused.log_path.read_text()

    managed = start_process(
        "poll", "--config", str(directory), env={"REDIS_URL": redis_with(*NO_CONFIG)}
    )
    assert managed.finish() == 2
    assert "could not be checked" in managed.log_path.read_text()

    durable = start_process("poll", "--config", str(directory), env={"REDIS_URL": redis_url})
    durable.wait_for(lambda: "poller.started" in [e["event"] for e in durable.events()])
    assert durable.stop() == 0
    assert not [e for e in durable.events() if e["event"].startswith("redis.")]


def test_readyz_and_the_board_show_it(tmp_path, redis_with, serve_url):
    config = load(write_config(tmp_path / "config"))
    base = serve_url(config, connect(redis_with(*NO_AOF)))
    ready = httpx.get(f"{base}/readyz")
    # Still ready: the operator has not made durability a requirement.
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["ready"], body["redis_durable"]) == (True, False)
    assert "appendonly is 'no'" in body["redis_warning"]

    page = httpx.get(f"{base}/").text
    assert '<p id="redis-warning" class="warning" role="alert">Redis is not durable: ' in page
    data = httpx.get(f"{base}/board/data.json").json()
    assert "CONFIG SET appendonly yes" in data["redis_warning"]

    strict = load(
        write_config(tmp_path / "strict", settings="[storage]\nrequire_durable_redis = true\n")
    )
    ready = httpx.get(f"{serve_url(strict, connect(redis_with(*NO_AOF)))}/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False


def test_a_durable_redis_shows_no_warning(tmp_path, connection, serve_url):
    base = serve_url(load(write_config(tmp_path / "config")))
    assert httpx.get(f"{base}/readyz").json()["redis_durable"] is True
    assert 'class="warning" role="alert" hidden></p>' in httpx.get(f"{base}/").text
