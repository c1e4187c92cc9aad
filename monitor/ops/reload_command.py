"""`newsmon reload`: the config folder, validated here first, read again by this host's
running pollers, workers and servers (SIGHUP to each; `newsmon run` passes its own SIGHUP on
to its children). A process on another host is named, for SIGHUP there (`systemctl reload`)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time

from monitor.core import keys
from monitor.core.config import Config
from monitor.ops.redis_server import connect, redis_url
from monitor.ops.stats import HEARTBEAT_FRESH_SECONDS


def reload_processes(args: argparse.Namespace, config: Config) -> int:
    """The config was read and validated to get here: an invalid one never reaches a process."""
    connection = connect(redis_url(config))
    running = {
        (role, name.decode())
        for role in ("poller", "serve")
        for name in connection.zrangebyscore(
            keys.heartbeats(role), time.time() - HEARTBEAT_FRESH_SECONDS, "+inf"
        )
    } | {("worker", name.decode()) for name in connection.smembers(keys.CLAIMING_WORKERS)}
    signalled = 0
    for role, name in sorted(running):
        host, _, pid = name.rpartition(".")
        if host != socket.gethostname() or not pid.isdigit():
            print(f"{role} {name}: on another host; send it SIGHUP there")
            continue
        try:
            os.kill(int(pid), signal.SIGHUP)
        except ProcessLookupError:
            continue  # gone: it reads the config when it starts again
        print(f"{role} {name}: asked to read {config.directory} again")
        signalled += 1
    if not signalled:
        print("no running poller, worker or server on this host")
    return 0
