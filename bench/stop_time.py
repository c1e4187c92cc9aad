"""How long `newsmon worker` and `newsmon run` take to stop on SIGTERM, idle and busy.

    python bench/stop_time.py [--tries 10] [--busy-cores 1]

Each try starts the command, waits until its worker is registered with RQ and listening for
RQ's commands (the moment an idle worker waits longest), sends SIGTERM and times the exit.
Every try runs twice: on a quiet machine, and with `--busy-cores` processes spinning on the
CPU (a laptop with a browser open). Prints the times per command and load: min, median, max.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from pipeline import write_config

from monitor.ops.redis_server import EmbeddedRedis, connect

REPO = Path(__file__).resolve().parent.parent
LISTENING_SECONDS = 60.0


@contextmanager
def busy(cores: int):
    spinners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def listening_workers(redis_url: str) -> int:
    """Workers subscribed to RQ's command channel: their listener thread, which used to hold
    a stop for a minute, is up."""
    client = connect(redis_url)
    try:
        return len(client.pubsub_channels("rq:pubsub:*"))
    except redis.ConnectionError:  # `newsmon run`'s Redis is not up yet
        return 0
    finally:
        client.close()


def stop_seconds(args: list[str], env: dict[str, str], redis_url: str) -> float:
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        cwd=REPO,
    )
    deadline = time.monotonic() + LISTENING_SECONDS
    while listening_workers(redis_url) < 1:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"{args[0]}: no worker came up")
        time.sleep(0.05)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait()
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--busy-cores", type=int, default=1)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = write_config(root / "config", "http://127.0.0.1:9/unused")
        server = EmbeddedRedis(root / "redis")
        redis_url = server.start()
        data_dir = root / "run-data"
        commands = {
            "worker": (["worker", "--config", str(config)], {"REDIS_URL": redis_url}, redis_url),
            "run": (
                ["run", "--config", str(config), "--workers", "2"],
                {"NEWSMON_STORAGE__DATA_DIR": str(data_dir)},
                f"unix://{data_dir / 'redis' / 'redis.sock'}",
            ),
        }
        try:
            for load, cores in (("idle", 0), ("busy", options.busy_cores)):
                with busy(cores):
                    for name, (args, env, url) in commands.items():
                        times = [stop_seconds(args, env, url) for _ in range(options.tries)]
                        print(
                            f"{name:7} {load}: {len(times)} stops, min {min(times):.2f} s, "
                            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s",
                            flush=True,
                        )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
