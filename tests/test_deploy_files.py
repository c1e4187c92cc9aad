"""The deployment files run newsmon commands that exist: every command line of the
Dockerfile, compose.yaml, the systemd units and the Procfile is parsed by newsmon's own
command line (nothing is started), the probes they call are routes of `newsmon serve`, and
the example environment file holds only settings newsmon accepts."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from monitor.core import log
from monitor.core.config import load_config
from monitor.ops import cli
from monitor.ops.auth import API_TOKEN_ENV
from monitor.ops.serve import Reloadable
from tests.helpers import REPO

SYSTEMD = REPO / "deploy" / "systemd"
HANDLERS = ("_run", "_poll", "_worker", "_serve", "_check", "_init")
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
NEWSMON_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image") == "newsmon:latest"
}


def dockerfile_commands() -> list[list[str]]:
    lines = (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    (entrypoint,) = [
        json.loads(line.split(None, 1)[1]) for line in lines if line.startswith("ENTRYPOINT")
    ]
    assert entrypoint == ["newsmon"]
    (cmd,) = [json.loads(line.split(None, 1)[1]) for line in lines if line.startswith("CMD")]
    runs = [
        words[words.index("newsmon") + 1 : words.index("&&") if "&&" in words else None]
        for line in lines
        if line.startswith("RUN") and "newsmon" in (words := shlex.split(line))
    ]
    return [cmd, *runs]


def unit_commands() -> list[list[str]]:
    commands = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                binary, *argv = shlex.split(line.removeprefix("ExecStart="))
                assert binary == "/opt/newsmon/bin/newsmon", unit.name
                commands.append(argv)
    return commands


def procfile_commands() -> list[list[str]]:
    text = re.sub(r"\$\{PORT:-(\d+)\}", r"\1", (REPO / "Procfile").read_text())
    return [shlex.split(line.split(":", 1)[1])[1:] for line in text.splitlines() if line]


COMMANDS = {
    **{f"Dockerfile {' '.join(c)}": c for c in dockerfile_commands()},
    **{f"compose {name}": s["command"] for name, s in NEWSMON_SERVICES.items()},
    **{f"unit {' '.join(c)}": c for c in unit_commands()},
    **{f"Procfile {' '.join(c)}": c for c in procfile_commands()},
}


def parsed(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """What `newsmon argv` would run, as newsmon's own command line parses it; the command
    itself does not run."""
    seen = []

    def record(args: argparse.Namespace, config: object) -> int:
        seen.append(args)
        return 0

    for name in HANDLERS:
        monkeypatch.setattr(cli, name, record)
    monkeypatch.setattr(log, "configure", lambda: None)
    monkeypatch.setenv("NEWSMON_CONFIG", str(REPO / "config"))
    assert cli.main(argv) == 0
    (args,) = seen
    return args


@pytest.mark.parametrize("argv", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_command_line_is_one_newsmon_takes(argv, monkeypatch):
    args = parsed(argv, monkeypatch)
    assert args.command == argv[0]


def test_the_roles_are_all_there(monkeypatch):
    for commands in (dockerfile_commands(), unit_commands(), list(NEWSMON_SERVICES.values())):
        assert commands
    roles = {name: s["command"][0] for name, s in NEWSMON_SERVICES.items()}
    assert roles == {"poller": "poll", "worker": "worker", "web": "serve"}
    assert NEWSMON_SERVICES["worker"]["deploy"]["replicas"] == 2
    assert sorted(c[0] for c in unit_commands()) == ["poll", "serve", "worker"]
    assert (SYSTEMD / "newsmon-worker@.service").exists()


def served_routes() -> set[str]:
    return {
        route.path for route in Reloadable(redis.Redis(), load_config(REPO / "config")).app.routes
    }


def test_the_web_healthcheck_probes_a_route_of_serve(monkeypatch):
    web = NEWSMON_SERVICES["web"]
    args = parsed(web["command"], monkeypatch)
    (url,) = re.findall(r"http://[^'\"]+", " ".join(web["healthcheck"]["test"]))
    target = urlsplit(url)
    assert (target.port, target.path) == (args.port, "/readyz")
    routes = served_routes()
    assert target.path in routes and "/livez" in routes
    assert web["ports"] == [f"{args.port}:{args.port}"] and args.host == "0.0.0.0"


def test_serve_help_names_routes_of_serve(monkeypatch, capsys):
    monkeypatch.setenv(API_TOKEN_ENV, "t" * 32)
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    description = capsys.readouterr().out.split("options:")[0]
    named = re.findall(r"(/[\w./]*)[,;) ]", " ".join(description.split()))
    routes = served_routes()
    patterns = {re.sub(r"\{(\w+)(:path)?\}", lambda m: m[1].upper(), path) for path in routes}
    assert {"/", "/livez", "/readyz", "/api/v1"} <= set(named)
    for path in named:  # a route, a route's NAME.json, or the prefix of routes
        known = {path, path.removesuffix(".json")} & patterns
        assert known or any(p.startswith(path + "/") for p in patterns), path


def test_compose_redis_keeps_an_append_only_file_on_a_volume():
    redis_service = COMPOSE["services"]["redis"]
    command = redis_service["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert redis_service["volumes"] == ["redis-data:/data"] and "redis-data" in COMPOSE["volumes"]
    assert COMPOSE["services"]["rq-dashboard"]["profiles"] == ["dashboard"]
    for service in NEWSMON_SERVICES.values():
        assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_units_read_the_example_environment_file():
    for unit in SYSTEMD.glob("*.service"):
        text = unit.read_text()
        assert "EnvironmentFile=/etc/newsmon/newsmon.env" in text, unit.name
        assert re.search(r"^Restart=always$", text, re.M), unit.name
    # Every variable of the example, the commented ones too, is one newsmon accepts.
    example = (SYSTEMD / "newsmon.env.example").read_text()
    variables = dict(
        line.lstrip("# ").split("=", 1)
        for line in example.splitlines()
        if re.match(r"#? ?NEWSMON_\w+=", line)
    )
    assert "NEWSMON_POLLER__INTERVAL_SECONDS" in variables
    settings_only = {k: v for k, v in variables.items() if k != "NEWSMON_CONFIG"}
    with mock.patch.dict("os.environ", settings_only):
        settings = load_config(REPO / "config").settings
    assert variables["NEWSMON_LOG_LEVEL"] in log.LEVELS
    assert variables["NEWSMON_LOG_FORMAT"] in ("json", "console")
    assert settings.poll_interval_seconds == 120
    assert settings.retry_schedule_seconds == (0, 5, 300, 1800)
    assert Path(variables["NEWSMON_CONFIG"]) == Path("/etc/newsmon")


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 4.5  # systemd-analyze's "OK"; its --threshold counts tenths


@pytest.mark.parametrize("unit", sorted(p.name for p in SYSTEMD.glob("*.service")))
def test_every_unit_is_sandboxed_to_an_ok_exposure(unit, tmp_path):
    """`systemd-analyze security` scores each unit file offline (systemd >= 250). Without it
    the test is skipped, saying what to install, except under CI, which must install it."""
    if SYSTEMD_ANALYZE is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing: apt-get install systemd")
        pytest.skip("systemd-analyze missing: apt-get install systemd")
    # A template is analysed as one of its instances, as systemctl would start it.
    path = tmp_path / unit.replace("@.", "@1.")
    shutil.copy(SYSTEMD / unit, path)
    result = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "security",
            "--offline=true",
            f"--threshold={round(MAX_EXPOSURE * 10)}",
            "--no-pager",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert found, result.stdout + result.stderr
    exposure = float(found.group(1))
    assert exposure <= MAX_EXPOSURE and result.returncode == 0, result.stdout[-3000:]


def test_compose_says_which_docker_compose_it_needs():
    """env_file's `path`/`required` form arrived in Docker Compose 2.24: the first lines say
    so, where someone whose compose refuses the file will look."""
    head = (REPO / "compose.yaml").read_text().splitlines()[:3]
    assert "Docker Compose >= 2.24" in head[0]
    assert all(entry.keys() == {"path", "required"} for entry in COMPOSE["x-newsmon"]["env_file"])
