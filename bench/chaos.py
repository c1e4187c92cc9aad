"""Faults under a real `newsmon run`: what is lost, what arrives twice, how long to recover.

    python bench/chaos.py [--items N] [--scenario NAME ...]

Each scenario starts a fresh `newsmon run --workers 2` (embedded Redis with AOF) on one local
feed and two local receivers (two subscriptions to every entry), publishes N unrelated items
over about ten seconds while the fault is applied, then waits for the deliveries. It prints,
per scenario: messages expected, delivered, lost, delivered twice under different
webhook-ids (a broken guarantee; a repeat under the same webhook-id is the at-least-once
contract and is counted apart), dead-lettered, and seconds to recover (from the end of the
fault to the last expected delivery). The delivery timeout (5 s) and retry schedule
(0, 2, 5, 10, 20, 40 s) are shortened so that a run takes minutes, not hours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline import SECRET, copy_shipped_topics

from monitor.core.models import Entry

REPO = Path(__file__).resolve().parent.parent
PUBLISH_SECONDS = 10.0
WAIT_SECONDS = 120.0
# Headlines are random draws of these words, each with a number of its own: word salads can
# read alike to the sentence encoder, but a swapped number keeps two items apart.
WORDS = (
    "harbour council orchard bridge ledger meadow convoy furnace quarry lantern archive "
    "basalt cellar thistle saddle glacier pylon tannery beacon granary ferry cobalt "
    "willow turbine parish kiln estuary gallery rampart citadel foundry marsh spindle "
    "vineyard causeway boiler canal barracks dune lagoon plateau hamlet mill abbey depot "
    "jetty forge terrace reservoir"
)


@dataclass
class World:
    """The feed and the receivers, served from this process, and what the receivers got."""

    published: int = 0
    items: list[tuple[str, str]] = field(default_factory=list)  # (guid, title)
    mode: dict[str, str] = field(default_factory=lambda: {"/a": "ok", "/b": "ok"})
    received: list[tuple[str, str, str, float]] = field(default_factory=list)  # 2xx only
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self) -> bytes:
        body = "".join(
            f"<item><guid>{guid}</guid><title>{escape(title)}</title>"
            f"<link>https://chaos.example/{guid}</link><description>{escape(title)}.</description>"
            "</item>"
            for guid, title in self.items[: self.published]
        )
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>chaos</title>'
            f"<link>https://chaos.example/</link>{body}</channel></rss>"
        ).encode()


def serve(world: World) -> int:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(200, world.feed(), "application/rss+xml")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            mode = world.mode.get(self.path, "ok")
            if mode == "hang":
                time.sleep(30)
                return
            if mode == "down":
                self._answer(503, b"", "text/plain")
                return
            entry_id = json.loads(body)["data"]["entry"]["id"]
            with world.lock:
                world.received.append(
                    (self.path, entry_id, self.headers["webhook-id"], time.monotonic())
                )
            self._answer(204, b"", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def write_config(directory: Path, port: int) -> Path:
    directory.mkdir(parents=True)
    copy_shipped_topics(directory)
    (directory / "feeds.toml").write_text(
        f'[[feeds]]\nname = "chaos"\nurl = "http://127.0.0.1:{port}/feed.xml"\n'
        "interval_seconds = 1\n"
    )
    (directory / "subscriptions.toml").write_text(
        "".join(
            f'[[subscriptions]]\nid = "{name}"\nurl = "http://127.0.0.1:{port}/{name}"\n'
            f'topics = ["*"]\nsecret = "{SECRET}"\n'
            for name in ("a", "b")
        )
    )
    (directory / "newsmon.toml").write_text(
        f'[storage]\ndata_dir = "{directory.parent / "data"}"\n'
        "[delivery]\ntimeout_seconds = 5\nretry_schedule_seconds = [0, 2, 5, 10, 20, 40]\n"
    )
    return directory


class Run:
    """`newsmon run` in a process group of its own, its JSON log kept for reading pids."""

    def __init__(self, config: Path, log_path: Path):
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["NEWSMON_ALLOW_PRIVATE_TARGETS"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config), "--workers", "2"],
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )

    def events(self) -> list[dict]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def pids(self, name: str) -> list[int]:
        """The current pid of each child whose name starts with `name` ("worker", "poller",
        "redis")."""
        current: dict[str, int] = {}
        for event in self.events():
            if event["event"] == "process.started":
                current[event["process"]] = event["pid"]
            elif event["event"] == "redis.started":
                current["redis"] = event["pid"]
        return [pid for process, pid in current.items() if process.startswith(name)]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)


def signal_some(run: Run, name: str, signals: list[signal.Signals], pause: float = 1.0) -> None:
    pid = random.choice(run.pids(name))
    for number, sent in enumerate(signals):
        if number:
            time.sleep(pause)
        os.kill(pid, sent)


def repeat(times: int, every: float, action: Callable[[Run], None]) -> Callable[[Run, World], None]:
    def fault(run: Run, world: World) -> None:
        for _ in range(times):
            time.sleep(every)
            action(run)

    return fault


def set_mode(paths: tuple[str, ...], mode: str, seconds: float) -> Callable[[Run, World], None]:
    def fault(run: Run, world: World) -> None:
        time.sleep(2)
        for path in paths:
            world.mode[path] = mode
        time.sleep(seconds)
        for path in paths:
            world.mode[path] = "ok"

    return fault


SCENARIOS: dict[str, Callable[[Run, World], None]] = {
    "baseline": lambda run, world: None,
    "kill-worker": repeat(5, 2.0, lambda run: signal_some(run, "worker", [signal.SIGKILL])),
    "stop-kill-worker": repeat(
        3, 3.0, lambda run: signal_some(run, "worker", [signal.SIGSTOP, signal.SIGKILL])
    ),
    "kill-poller": repeat(3, 3.0, lambda run: signal_some(run, "poller", [signal.SIGKILL])),
    "kill-redis": repeat(1, 4.0, lambda run: signal_some(run, "redis", [signal.SIGKILL])),
    "receivers-down": set_mode(("/a", "/b"), "down", 8.0),
    "receiver-hangs": set_mode(("/b",), "hang", 8.0),
}


def scenario(name: str, items: int, tmp: Path) -> dict[str, object]:
    world = World()
    rng = random.Random(name)
    world.items = [
        (f"{name}-{i}", " ".join(rng.sample(WORDS.split(), 9)).capitalize() + f" at post {i}")
        for i in range(items)
    ]
    port = serve(world)
    config = write_config(tmp / name / "config", port)
    run = Run(config, tmp / name / "run.log")
    deadline = time.monotonic() + 60
    while len(run.pids("worker")) < 2 or "worker.started" not in [e["event"] for e in run.events()]:
        assert time.monotonic() < deadline, "newsmon run did not start"
        time.sleep(0.2)
    time.sleep(2)  # the workers load the topic model

    fault = threading.Thread(target=SCENARIOS[name], args=(run, world))
    fault.start()
    started = time.monotonic()
    while world.published < items:  # items appear over PUBLISH_SECONDS
        world.published = min(
            items, int(items * (time.monotonic() - started) / PUBLISH_SECONDS) + 1
        )
        time.sleep(0.05)
    fault.join()
    fault_over = time.monotonic()

    expected = {(path, f"{name}-{i}") for path in ("/a", "/b") for i in range(items)}
    ids = {Entry.make_id("chaos", f"{name}-{i}"): f"{name}-{i}" for i in range(items)}

    def delivered() -> dict[tuple[str, str], set[str]]:
        by_message: dict[tuple[str, str], set[str]] = defaultdict(set)
        with world.lock:
            for path, entry_id, webhook_id, _ in world.received:
                by_message[(path, ids.get(entry_id, entry_id))].add(webhook_id)
        return by_message

    while set(delivered()) < expected and time.monotonic() - fault_over < WAIT_SECONDS:
        time.sleep(0.2)
    last = max((at for *_, at in world.received), default=fault_over)
    dead = subprocess.run(
        [sys.executable, "-m", "monitor", "deliveries", "dead", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
    ).stdout.splitlines()
    run.stop()
    by_message = delivered()
    got = set(by_message) & expected
    lines = run.log_path.read_text(errors="replace").splitlines()
    return {
        "scenario": name,
        "expected": len(expected),
        "delivered": len(got),
        "lost": len(expected - got),
        "twice_new_id": sum(len(ids_) > 1 for ids_ in by_message.values()),
        "repeats_same_id": len(world.received) - sum(len(v) for v in by_message.values()),
        "dead_lettered": len(dead),
        "recover_s": round(max(last - fault_over, 0.0), 1),
        "non_json_lines": sum(not line.startswith("{") for line in lines),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-chaos-"))
    header = (
        f"{'scenario':<17}{'expected':>9}{'delivered':>10}{'lost':>6}{'twice*':>7}"
        f"{'same-id':>8}{'dead':>6}{'recover s':>10}{'non-JSON':>9}"
    )
    print(header)
    for name in args.scenario or list(SCENARIOS):
        r = scenario(name, args.items, tmp)
        print(
            f"{r['scenario']:<17}{r['expected']:>9}{r['delivered']:>10}{r['lost']:>6}"
            f"{r['twice_new_id']:>7}{r['repeats_same_id']:>8}{r['dead_lettered']:>6}"
            f"{r['recover_s']:>10}{r['non_json_lines']:>9}",
            flush=True,
        )
    print("* twice: one message delivered under two different webhook-ids (must be 0)")


if __name__ == "__main__":
    main()
