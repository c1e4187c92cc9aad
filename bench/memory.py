"""Worker memory over many entries, and Redis memory per entry in the dedupe window.

    python bench/memory.py [--entries 100000] [--rules-only]

Runs the entries job in this process, batch after batch, as a worker would, and prints the
process's resident memory as it goes: it must level off, not grow with the entries seen.
Alerts are queued (to a subscription of every topic) but not sent.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import structlog
from pipeline import rules_only_flag, synthetic_entries, write_config

from monitor.core.config import load_config
from monitor.core.documents import entry_document
from monitor.ops.redis_server import EmbeddedRedis, connect
from monitor.poller.seen import BATCH_SIZE
from workers import runtime
from workers.jobs import process_entries


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    rules_only_flag(parser)
    args = parser.parse_args()
    count = args.entries
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    tmp = Path(tempfile.mkdtemp(prefix="newsmon-bench-"))
    server = EmbeddedRedis(tmp / "redis")
    connection = connect(server.start())
    config = load_config(write_config(tmp / "config", "http://127.0.0.1:9/", not args.rules_only))
    runtime.install(runtime.Runtime.build(config, connection))
    step = 10_000
    working = 0.0
    for chunk_start in range(0, count, step):
        entries = synthetic_entries(step, seed=chunk_start)
        started = time.perf_counter()
        for start in range(0, step, BATCH_SIZE):
            process_entries([entry_document(e) for e in entries[start : start + BATCH_SIZE]])
        working += time.perf_counter() - started
        connection.delete("rq:queue:newsmon-deliveries")  # the alerts are not the point here
        print(
            f"{chunk_start + step:>7} entries: worker RSS {rss_mib():6.1f} MiB, "
            f"Redis {connection.info('memory')['used_memory'] / 2**20:7.1f} MiB, "
            f"{(chunk_start + step) / working:5.0f} entries/s"
        )
    server.stop()


if __name__ == "__main__":
    main()
