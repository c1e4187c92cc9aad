"""The poller at scale: 10,000 feeds on 100 local hosts, mostly answering 304.

    python bench/poller.py [--feeds N] [--pollers K] [--changed FRACTION] [--cycles C]

A feed server (its own process, asyncio) answers on 127.0.0.1 ... 127.0.0.100, one host per
100 feeds. Each feed already has an ETag, as after a first cycle; a FRACTION of them have
moved on (200 with 10 new items), the rest answer 304. Every feed is due at once;
K `newsmon poll` processes share them. Prints, for each of C cycles (every feed due at once
again after the first), the time until every feed has been polled once, the CPU time each
poller used (figures that hold when other work shares the machine) and its memory (VmRSS);
then each poller's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from monitor.core import keys
from monitor.ops.redis_server import EmbeddedRedis, connect

HOSTS = 100


def feed_body(feed: int) -> bytes:
    items = "".join(
        f"<item><guid>{feed}-{i}</guid><title>Feed {feed} item {i}: council meets on budget</title>"
        f"<link>https://news-{feed}.example/{i}</link><description>Item {i} of feed {feed}."
        "</description></item>"
        for i in range(10)
    )
    return f'<rss version="2.0"><channel><title>f{feed}</title>{items}</channel></rss>'.encode()


def serve(port: int, changed_every: int, ready: multiprocessing.Event) -> None:
    """Feed i answers 304 to If-None-Match "v1", unless i is a multiple of changed_every."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                feed = int(lines[0].split()[1].rsplit("-", 1)[1])
                fresh = 'if-none-match: "v1"' in (line.lower() for line in lines)
                if fresh and feed % changed_every:
                    writer.write(b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n')
                else:
                    body = feed_body(feed)
                    writer.write(
                        b'HTTP/1.1 200 OK\r\netag: "v2"\r\ncontent-type: application/rss+xml\r\n'
                        + f"content-length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        hosts = [f"127.0.0.{h + 1}" for h in range(HOSTS)]
        server = await asyncio.start_server(handle, host=hosts, port=port, backlog=1024)
        ready.set()
        await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def polled(connection: redis.Redis) -> int:
    """Polls finished so far, by every poller."""
    totals = connection.hmget(
        keys.STATS_TOTAL, "feeds_fetched", "feeds_not_modified", "feeds_failed"
    )
    return sum(int(v or 0) for v in totals)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--pollers", type=int, default=1)
    parser.add_argument("--changed", type=float, default=0.02)
    parser.add_argument("--cycles", type=int, default=1)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    redis_server = EmbeddedRedis(tmp / "redis")
    url = redis_server.start()
    connection = connect(url)
    port = free_port()
    ready = multiprocessing.Event()
    changed_every = max(int(1 / args.changed), 1) if args.changed else args.feeds + 1
    feed_server = multiprocessing.Process(
        target=serve, args=(port, changed_every, ready), daemon=True
    )
    feed_server.start()
    ready.wait(10)

    config_dir = tmp / "config"
    config_dir.mkdir()
    repo_config = Path(__file__).resolve().parent.parent / "config"
    (config_dir / "topics.toml").write_text((repo_config / "topics.toml").read_text())
    (config_dir / "subscriptions.toml").write_text("")
    names = [f"feed-{i}" for i in range(args.feeds)]
    (config_dir / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "http://127.0.0.{i % HOSTS + 1}:{port}/{name}"\n'
            for i, name in enumerate(names)
        )
    )
    # As after a first cycle: every feed has an ETag, and every feed is due now.
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hset(keys.feed_state(name), mapping={"etag": '"v1"', "first_fetched": 1.0})
        pipe.zadd(keys.SCHEDULE, dict.fromkeys(names, 0))
        pipe.execute()

    env = {**os.environ, "REDIS_URL": url, "NEWSMON_ALLOW_PRIVATE_TARGETS": "1"}
    started = time.monotonic()
    pollers = [
        subprocess.Popen(
            [sys.executable, "-m", "monitor", "poll", "--config", str(config_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(args.pollers)
    ]
    cpu_before = [0.0] * len(pollers)
    for cycle in range(1, args.cycles + 1):
        if cycle > 1:  # every feed due again
            started = time.monotonic()
            connection.zadd(keys.SCHEDULE, dict.fromkeys(names, 0))
        while polled(connection) < cycle * args.feeds and time.monotonic() - started < 600:
            time.sleep(0.05)
        seconds = time.monotonic() - started
        cpu = [cpu_seconds(p.pid) for p in pollers]
        print(
            f"cycle {cycle}{' (from process start)' if cycle == 1 else ''}: {seconds:.1f} s, "
            f"{args.feeds / seconds:.0f} feeds/s; poller CPU "
            + ", ".join(
                f"{now - before:.1f} s" for now, before in zip(cpu, cpu_before, strict=True)
            )
            + ", RSS "
            + ", ".join(f"{rss_mib(p.pid, 'VmRSS'):.0f} MiB" for p in pollers)
        )
        cpu_before = cpu
    peaks = [rss_mib(p.pid, "VmHWM") for p in pollers]
    for poller in pollers:
        poller.terminate()
        poller.wait()
    failed = int(connection.hget(keys.STATS_TOTAL, "feeds_failed") or 0)
    enqueued = int(connection.hget(keys.STATS_TOTAL, "entries_enqueued") or 0)
    print(
        f"{args.feeds} feeds on {HOSTS} hosts, {args.pollers} poller(s): {failed} failed, "
        f"{enqueued} new entries enqueued; poller peak RSS "
        + ", ".join(f"{p:.0f} MiB" for p in peaks)
    )
    feed_server.terminate()
    redis_server.stop()


if __name__ == "__main__":
    main()
