"""Delivery throughput, and a healthy endpoint's latency while another endpoint hangs.

    python bench/deliveries.py [--alerts N] [--seconds S] [--workers W] [--timeout T]

1. N signed deliveries through RQ, drained by one worker process, to a local receiver.
2. For S seconds, 10 alerts/s to each of two subscriptions, W `newsmon worker` processes
   (default 2): one endpoint answers at once, the other accepts and never answers within
   the T s delivery timeout (default 15, the shipped setting). Prints the healthy endpoint's
   enqueue-to-receipt latency (p50/p95/p99) and what the hanging one cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog
from pipeline import SECRET, copy_shipped_topics, start_workers, stop_workers
from receiver import arrivals
from receiver import start as start_receiver

from monitor.core.config import load_config
from monitor.core.models import Alert, Entry
from monitor.ops.redis_server import EmbeddedRedis, connect
from workers import runtime, worker
from workers.delivery.schedule import schedule_deliveries


def alerts(count: int, subscription_id: str, offset: int = 0) -> list[Alert]:
    now = datetime.now(UTC)
    return [
        Alert(
            id=Alert.make_id(f"e{i}", subscription_id),
            subscription_id=subscription_id,
            topics=("frontline",),
            entry=Entry(
                id=f"e{i}",
                feed_name="bench",
                feed_url="https://bench.example/feed",
                key=f"k{i}",
                title=f"Headline {i}",
                link=f"https://bench.example/{i}",
                summary="A short summary of the item.",
                story_id=f"st_e{i}",
            ),
            created=now,
        )
        for i in range(offset, offset + count)
    ]


def write_config(directory: Path, port: int, timeout: float) -> Path:
    directory.mkdir()
    copy_shipped_topics(directory)
    (directory / "feeds.toml").write_text("")
    (directory / "newsmon.toml").write_text(
        f"[delivery]\ntimeout_seconds = {timeout}\nmax_in_flight = 4\n"
    )
    (directory / "subscriptions.toml").write_text(
        "".join(
            f'[[subscriptions]]\nid = "{sid}"\nurl = "http://127.0.0.1:{port}/{sid}"\n'
            f'topics = ["*"]\nsecret = "{SECRET}"\n'
            for sid in ("fast", "hang")
        )
    )
    return directory


def main() -> None:
    os.environ.setdefault("NEWSMON_ALLOW_PRIVATE_TARGETS", "1")  # the receivers are local
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args()

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    url = server.start()
    log_path = tmp / "arrivals.log"
    receiver, port = start_receiver(log_path)
    config_dir = write_config(tmp / "config", port, args.timeout)
    connection = connect(url)
    rt = runtime.Runtime.build(load_config(config_dir), connection)
    runtime.install(rt)

    schedule_deliveries(
        rt.connection,
        rt.config.settings,
        {"fast": alerts(args.alerts, "fast")},
        attempt=1,
        delay_seconds=0,
    )
    started = time.perf_counter()
    worker.run(connection, "bench.burst", burst=True)
    delivered = len(arrivals(log_path, "/fast"))
    rate = delivered / (time.perf_counter() - started)
    print(f"signed deliveries, one worker process, healthy receiver: {rate:8.0f} /s ({delivered})")

    connection.flushdb()
    log_path.write_text("")
    processes = start_workers(config_dir, url, args.workers)
    time.sleep(3)
    sent: dict[str, float] = {}
    offset = 0
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:  # 10 alerts/s to each endpoint
        batch = {sid: alerts(1, sid, offset) for sid in ("fast", "hang")}
        for alert in batch["fast"]:
            sent[alert.id] = time.time()
        schedule_deliveries(rt.connection, rt.config.settings, batch, attempt=1, delay_seconds=0)
        offset += 1
        time.sleep(0.1)
    time.sleep(3)
    stop_workers(processes)
    received = arrivals(log_path, "/fast")
    hang_requests = len(arrivals(log_path, "/hang"))
    latencies = sorted((received[i][0] - t) * 1000 for i, t in sent.items() if i in received)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"healthy endpoint while another hangs, {args.workers} workers, {args.timeout:g} s "
        f"timeout: {len(latencies)}/{len(sent)} delivered, "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms; "
        f"the hanging endpoint got {hang_requests} requests in {args.seconds} s"
    )
    receiver.terminate()
    server.stop()


if __name__ == "__main__":
    main()
