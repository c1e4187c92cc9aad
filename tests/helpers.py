"""What test modules share (fixtures live in conftest.py, the fixtures' text in stories.py)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import redis
from jsonschema import Draft202012Validator, FormatChecker
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from monitor.core import keys, queues
from monitor.core.config import Config, load_config
from monitor.core.documents import alert_document, read_entry
from monitor.core.models import Alert, Entry, Feed
from monitor.poller.loop import Poller
from tests.stories import ROUND_ONE_LIVEBLOG, rss
from workers import runtime, worker
from workers.pipeline.normalise import normalise

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks docs' example key
RSS = {"content-type": "application/rss+xml"}
HTML = {"content-type": "text/html; charset=utf-8"}
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# A DOCTYPE whose &e9; is a billion "lol"s, if expanded.
BILLION_LAUGHS = "".join(
    f'<!ENTITY e{i} "{f"&e{i - 1};" * 10 if i else "lol"}">' for i in range(10)
)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received: float = field(default_factory=time.time)


Response = tuple[int, dict[str, str], bytes]


@dataclass
class LocalServer:
    """An HTTP server on 127.0.0.1 whose answers a test sets per path, recording every request."""

    routes: dict[str, Callable[[Request], Response]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def route(self, path: str, answer: Callable[[Request], Response] | Response) -> None:
        self.routes[path] = answer if callable(answer) else (lambda _request: answer)

    def url_for(self, path: str) -> str:
        return self.url + path


def serve_locally() -> Iterator[LocalServer]:
    """A LocalServer, running until the generator is closed (the `http_server` fixture)."""
    state = LocalServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            with lock:
                state.requests.append(request)
            route = state.routes.get(self.path.split("?")[0])
            status, headers, body = route(request) if route else (404, {}, b"not found")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client hanging up early (a size cap, a timeout) is expected here

    server = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def write_config(
    directory: Path, feeds: list[dict] = (), subscriptions: list[dict] = (), settings: str = ""
) -> Path:
    """A config folder with the shipped topics and the given feeds and subscriptions."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("topics.toml", "topic_model.json"):
        shutil.copy(REPO / "config" / name, directory / name)
    (directory / "feeds.toml").write_text(
        "".join(
            "[[feeds]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in feed.items())
            for feed in feeds
        )
    )
    (directory / "subscriptions.toml").write_text(
        "".join(
            "[[subscriptions]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sub.items())
            for sub in subscriptions
        )
    )
    (directory / "newsmon.toml").write_text(settings)
    return directory


def one_subscription_per_format(server: LocalServer, formats: Iterable[str]) -> list[dict]:
    """A subscription to every topic for each format, named after it, delivered to the
    server's path of that name."""
    return [
        {
            "id": name,
            "url": server.url_for(f"/{name}"),
            "topics": ["*"],
            "secret": SECRET,
            "format": name,
        }
        for name in formats
    ]


def queued_entries(connection: redis.Redis) -> list[Entry]:
    """The entries waiting in the workers' queue."""
    jobs = queues.queue(keys.ENTRIES_QUEUE, connection).get_jobs()
    return [read_entry(document) for job in jobs for document in job.args[0]]


def polled_before(connection: redis.Redis, feeds: Iterable[Feed]) -> None:
    """Give these feeds a first fetch in the past, as if an earlier poller had read their
    archive: their next document is news, not their past (which the workers never alert)."""
    with connection.pipeline() as pipe:
        for feed in feeds:
            pipe.hset(keys.feed_state(feed.name), "first_fetched", time.time() - 3600)
        pipe.execute()


def run_worker(config: Config, connection: redis.Redis) -> None:
    """Drain newsmon's queues with a real RQ worker in this process."""
    runtime.install(runtime.Runtime.build(config, connection))
    worker.run(connection, "tests.burst", burst=True)


def newsmon(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real `newsmon` command, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def load(directory: Path) -> Config:
    return load_config(directory)


class Process:
    """A newsmon command run as a real child process, its JSON log lines kept for assertions."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self.log_file = log_path.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "monitor", *args],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            cwd=REPO,
        )

    def events(self) -> list[dict]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out; log:\n{self.log_path.read_text(errors='replace')[-3000:]}"
                )
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"exited {self.popen.returncode}; log:\n"
                    f"{self.log_path.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager sends it; returns the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process to exit on its own; returns the exit code."""
        code = self.popen.wait(timeout=timeout)
        self.log_file.close()
        return code


def make_poller(
    tmp_path: Path,
    connection: redis.Redis,
    http_server: LocalServer,
    *paths: str,
    settings: str = "",
) -> Poller:
    """A poller of one feed per path of `http_server`, each named after its path."""
    feeds = [
        {"name": path.strip("/").replace(".", "-"), "url": http_server.url_for(path)}
        for path in paths
    ]
    return Poller(
        load(write_config(tmp_path / "config", feeds=feeds, settings=settings)), connection
    )


def blog_config(
    directory: Path,
    http_server: LocalServer,
    hook: str = "/hook",
    settings: str = "",
    **feed: object,
) -> Path:
    """A config folder: the feed "blog" at /blog.xml of `http_server` (with `feed`'s options),
    and the subscription "all" to every topic at `hook`."""
    return write_config(
        directory,
        feeds=[{"name": "blog", "url": http_server.url_for("/blog.xml"), **feed}],
        subscriptions=[
            {"id": "all", "url": http_server.url_for(hook), "topics": ["*"], "secret": SECRET}
        ],
        settings=settings,
    )


def news_after_the_first_poll(document: bytes) -> Callable[[Request], Response]:
    """A feed's answers: an empty first document (a feed's first is its past, never alerted),
    then `document`, as news."""
    polls = itertools.count()

    def answer(_request: Request) -> Response:
        return (200, RSS, rss([]) if next(polls) == 0 else document)

    return answer


def run_config(tmp_path: Path, http_server: LocalServer) -> Path:
    """A config folder: one live blog polled every second, one subscription to everything."""
    http_server.route("/blog.xml", news_after_the_first_poll(rss(ROUND_ONE_LIVEBLOG)))
    http_server.route("/hook", (200, {}, b""))
    settings = f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
    return blog_config(tmp_path / "config", http_server, settings=settings, interval_seconds=1)


def documents(alerts: list[Alert]) -> list[dict]:
    """Alerts as a delivery job carries them."""
    return [alert_document(alert) for alert in alerts]


def normalised_entry(
    *, feed: str, key: str, title: str, summary: str = "", link: str = ""
) -> Entry:
    """An entry of `feed` as the workers hold it after the normalise step."""
    return normalise(
        Entry(
            id=Entry.make_id(feed, key),
            feed_name=feed,
            feed_url=f"https://{feed}.example/feed",
            key=key,
            title=title,
            link=link,
            summary=summary,
        )
    )


def make_alerts(count: int, subscription_id: str = "hook", offset: int = 0) -> list[Alert]:
    """`count` alerts for one subscription, each about an entry of its own."""
    now = datetime.now(UTC)
    return [
        Alert(
            id=Alert.make_id(f"e{i}", subscription_id),
            subscription_id=subscription_id,
            topics=("frontline",),
            entry=Entry(
                id=f"e{i}",
                feed_name="blog",
                feed_url="https://e.org/f",
                key=f"k{i}",
                title=f"Title {i}",
                link=f"https://e.org/{i}",
                summary="Summary",
                story_id=f"st_e{i}",
            ),
            created=now,
        )
        for i in range(offset, offset + count)
    ]


def chromium(profile: Path) -> webdriver.Chrome:
    """Debian's headless chromium, driven by its chromedriver; nothing is downloaded. The
    flags keep it from calling out (refused on a closed network, slow where open)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise RuntimeError(
            f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
            "(.ci/run does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def own_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # UDP: picks a route, sends nothing
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def schema_validator(message_type: str) -> Draft202012Validator:
    """The validator of a message type's published JSON Schema (workers/delivery/schemas/)."""
    path = resources.files("workers.delivery") / "schemas" / f"{message_type}.json"
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def assert_valid_delivery(request: Request) -> dict:
    """The delivery's body, after checking it against the schema its `type` names: the
    published contract holds for every delivery a test receives."""
    message = json.loads(request.body)
    schema_validator(message["type"]).validate(message)
    return message
