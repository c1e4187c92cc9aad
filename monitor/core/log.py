"""Logging, configured once at start: structlog, one JSON object per line in production.

Every event has a stable dotted name (`feed.fetched`, `entry.duplicate`, ...) and carries the
ids of what it is about. Lines from libraries that use stdlib logging (RQ) go through the
same renderer, so an operator reads one format.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from monitor.core.redact import redact_urls

# Text a feed or an endpoint controls is cut to this many characters in a log line: enough to
# recognise it, and a hostile feed cannot make one line megabytes long.
TEXT_LIMITS = {"title": 120, "reason": 300, "last_error": 300, "error": 300}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(
    fmt: str | None = None, level: str | None = None, stream: TextIO | None = None
) -> None:
    """Set up structlog and stdlib logging from arguments, else NEWSMON_LOG_FORMAT / _LEVEL,
    writing to `stream` (stdout by default). Raises ValueError, naming the variable, for a
    format or level it does not know."""
    stream = stream or sys.stdout
    fmt = fmt or os.environ.get("NEWSMON_LOG_FORMAT") or ("console" if stream.isatty() else "json")
    level_name = (level or os.environ.get("NEWSMON_LOG_LEVEL") or "info").lower()
    if fmt not in ("json", "console"):
        raise ValueError(f"NEWSMON_LOG_FORMAT={fmt!r}: use 'json' or 'console'")
    if level_name not in LEVELS:
        raise ValueError(f"NEWSMON_LOG_LEVEL={level_name!r}: use one of {', '.join(LEVELS)}")

    shared = [
        structlog.contextvars.merge_contextvars,
        redact_urls,  # after the merge: a URL bound in a context var is a value like any other
        truncate_text,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level_name]),
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level_name])
    # RQ narrates every job and httpx every request at INFO; newsmon logs its own events
    # for those (alert.delivered, feed.fetched ...) with the ids that matter.
    for library in ("rq", "httpx"):
        logging.getLogger(library).setLevel(max(LEVELS[level_name], logging.WARNING))
    logging.captureWarnings(True)  # Python's warnings too, as JSON lines rather than stderr text
    _log_uncaught_exceptions()


def truncate_text(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: each field of TEXT_LIMITS cut to its length, marked with "…"."""
    for key, limit in TEXT_LIMITS.items():
        value = event_dict.get(key)
        if isinstance(value, str) and len(value) > limit:
            event_dict[key] = value[: limit - 1] + "…"
    return event_dict


def _log_uncaught_exceptions() -> None:
    """An exception nothing caught, in any thread, is one JSON line too, not a traceback."""
    log = structlog.get_logger()

    def in_main(kind: type[BaseException], value: BaseException, traceback: object) -> None:
        log.critical("process.crashed", exc_info=(kind, value, traceback))

    def in_thread(args: threading.ExceptHookArgs) -> None:
        thread = args.thread.name if args.thread else None
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.critical("thread.crashed", thread=thread, exc_info=exc_info)

    sys.excepthook = in_main
    threading.excepthook = in_thread
