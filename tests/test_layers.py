"""The tree is the data flow: its layers hold, and no import hides from them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

PACKAGES = ("monitor", "workers")


def test_the_import_contracts_hold():
    # lint-imports lives beside the interpreter running the tests.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([lint_imports], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node, alias.name) for alias in node.names)
    return found


def _nested_imports(path: Path) -> list[str]:
    """Imports of newsmon's own modules made inside a function: a way to hide a cycle from
    the contracts, which read them like any other."""
    tree = ast.parse(path.read_text(), str(path))
    nested = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node, module in _imports(function):
                if module.split(".")[0] in PACKAGES:
                    nested.append(f"{path.relative_to(REPO)}:{node.lineno} {module}")
    return nested


def test_no_function_imports_a_newsmon_module():
    sources = [p for package in PACKAGES for p in (REPO / package).rglob("*.py")]
    assert [line for path in sources for line in _nested_imports(path)] == []


def test_no_test_module_imports_another():
    """Shared code lives in tests/helpers.py (and tests/stories.py, the fixtures' text);
    fixtures in conftest.py."""
    shared = {"tests.helpers", "tests.stories"}
    offending = []
    for path in sorted((REPO / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node, module in _imports(tree):
            if module.startswith("tests") and module not in shared:
                offending.append(f"{path.name}:{node.lineno} {module}")
    assert offending == []
