"""Takes docs/board.png: the live board of a real `newsmon run` with a few stories.

    python docs/board_screenshot.py [--output docs/board.png]

Run from the repository root after the README's test install (selenium), with Debian's
chromium and chromium-driver installed. It starts an embedded Redis, local servers for three
outlets' feeds (the test suite's fixture news), one feed that fails and two webhook
receivers (one of them failing), then `newsmon run` and `newsmon serve`, waits for the
stories and the first delivery retries, and photographs the page in headless chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from redis import Redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the test suite's fixture news and browser set-up

from monitor.ops.redis_server import EmbeddedRedis  # noqa: E402
from tests.helpers import (  # noqa: E402
    RSS,
    SECRET,
    chromium,
    load,
    polled_before,
    serve_locally,
    write_config,
)
from tests.stories import DAILY_ITEMS, ROUND_TWO_LIVEBLOG, WIRE_ITEMS, atom, json_feed, rss  # noqa: E402

PORT = 8765
STORIES_EXPECTED = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "board.png")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newsmon-board-"))
    feeds = serve_locally()
    server = next(feeds)
    server.route("/live.xml", (200, RSS, rss(ROUND_TWO_LIVEBLOG)))
    server.route("/wire.xml", (200, {"content-type": "application/atom+xml"}, atom(WIRE_ITEMS)))
    server.route("/daily.json", (200, {"content-type": "application/json"}, json_feed(DAILY_ITEMS)))
    server.route("/regional.xml", (500, {}, b"upstream error"))
    server.route("/desk", (200, {}, b""))
    server.route("/ops", (503, {}, b""))
    directory = write_config(
        work / "config",
        feeds=[
            {"name": name, "url": server.url_for(path), "interval_seconds": 5}
            for name, path in (
                ("liveblog", "/live.xml"),
                ("wire", "/wire.xml"),
                ("daily", "/daily.json"),
                ("regional", "/regional.xml"),
            )
        ],
        subscriptions=[
            {"id": "newsdesk", "url": server.url_for("/desk"), "topics": ["*"], "secret": SECRET},
            {
                "id": "ops-frontline",
                "url": server.url_for("/ops"),
                "topics": ["frontline"],
                "secret": SECRET,
            },
        ],
    )
    redis = EmbeddedRedis(work / "redis")
    env = {**os.environ, "REDIS_URL": redis.start(), "NEWSMON_ALLOW_PRIVATE_TARGETS": "1"}
    # As if the feeds had been polled before: what they serve is news, not their past.
    polled_before(Redis.from_url(env["REDIS_URL"]), load(directory).feeds)
    command = [sys.executable, "-m", "monitor"]
    log = (work / "newsmon.log").open("wb")
    processes = [
        subprocess.Popen([*command, "run", "--config", str(directory)], env=env, stdout=log),
        subprocess.Popen(
            [*command, "serve", "--config", str(directory), "--port", str(PORT)],
            env=env,
            stdout=log,
        ),
    ]
    browser = chromium(work / "chromium")
    try:
        base = f"http://127.0.0.1:{PORT}"
        wait_for_board(base)
        browser.get(f"{base}/")
        time.sleep(8)  # the page's script has polled ("live"), new rows' highlight has faded
        height = browser.execute_script("return document.documentElement.scrollHeight")
        # The whole page in one picture: a viewport as tall as the page.
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.save_screenshot(str(args.output))
        print(f"wrote {args.output} (1280x{height}); logs in {work}")
    finally:
        browser.quit()
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
        redis.stop()
        feeds.close()


def wait_for_board(base: str, timeout: float = 90) -> None:
    """Until the stories are in and the failing receiver has been retried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            board = httpx.get(f"{base}/board/data.json").json()
        except (httpx.HTTPError, json.JSONDecodeError):
            board = None
        if board and len(board["stories"]) >= STORIES_EXPECTED:
            retried = {s["id"]: s["last_hour"]["retried"] for s in board["subscriptions"]}
            fetched = all(f["health"] != "never_fetched" for f in board["feeds"])
            if retried["ops-frontline"] and fetched:
                return
        time.sleep(1)
    raise SystemExit("the board did not fill in time; see the logs")


if __name__ == "__main__":
    main()
