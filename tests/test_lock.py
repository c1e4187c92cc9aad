"""What users install is what the suite ran against: requirements.lock pins every dependency
inside pyproject.toml's ranges, every install path goes through it, and this environment holds
exactly its versions (unless the suite runs on the newest releases: NEWSMON_DEPS=latest)."""

from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.helpers import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
DECLARED = [
    Requirement(line)
    for line in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["test"]]
]


def pinned() -> dict[str, str]:
    """Name -> version of every lock line whose marker holds for this Python."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if not line or line[0] in "# ":
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(default_environment()):
            (spec,) = requirement.specifier
            pins[canonical(requirement.name)] = spec.version
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_pins_every_declared_dependency_inside_its_range():
    pins = pinned()
    for requirement in DECLARED:
        name = canonical(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `bash .ci/lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name} {pins[name]} outside {requirement.specifier}: "
            "run `bash .ci/lock`"
        )


def test_every_install_goes_through_the_lock():
    readme = (REPO / "README.md").read_text()
    assert "pip install -c requirements.lock -e . && .venv/bin/newsmon run" in readme
    test_command = "pip install -c requirements.lock -e '.[test]' && .venv/bin/python -m pytest"
    assert test_command in readme
    assert test_command in (REPO / ".ci" / "run").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "requirements.lock" in dockerfile.split("RUN pip install")[0]  # copied in first
    assert "RUN pip install -c requirements.lock ." in dockerfile


@pytest.mark.skipif(
    os.environ.get("NEWSMON_DEPS") == "latest", reason="the suite runs on the newest releases"
)
def test_this_environment_holds_the_locked_versions():
    different = {
        name: (metadata.version(name), version)
        for name, version in pinned().items()
        if _installed(name) and metadata.version(name) != version
    }
    assert not different, f"installed != locked: {different}; install with -c requirements.lock"


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:  # a dependency of a platform or Python not this one
        return False
    return True
