"""newsmon's processes: the name each goes by in Redis, and children that do not outlive it."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For Popen(preexec_fn=...): the child gets SIGTERM when its parent dies, however it died.

    newsmon's children run in sessions of their own (so Ctrl-C reaches only the parent, which
    stops them in order); this keeps a parent killed with SIGKILL from leaving them behind.
    Linux only; elsewhere a no-op.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def process_name() -> str:
    """ "<host>.<pid>": how this process signs its heartbeats, claims and leases."""
    return f"{socket.gethostname()}.{os.getpid()}"


def exited_here(name: str) -> bool:
    """True when the process called `name` (see `process_name`) ran on this host and has
    exited."""
    host, _, pid = name.rpartition(".")
    return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
