"""Child processes that do not outlive newsmon."""

from __future__ import annotations

import ctypes
import signal
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
