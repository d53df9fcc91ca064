"""Test modules do not import each other (nor a conftest): what several share lives in tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def imported_test_modules(source: str) -> list[str]:
    """The modules under tests/ that `source` imports, other than tests.support.*."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.ImportFrom):  # relative: from .test_x import y, from . import conftest
            names = [f".{node.module or ''}", *(f".{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            local = parts[0] in ("tests", "") and parts[1:2] != ["support"]
            if local and any(part.startswith("test_") or part == "conftest" for part in parts[1:]):
                found.append(name)
                break
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("from tests.integration.stale.test_crash import guestctl", True, id="from-test-module"),
        pytest.param("import tests.unit.test_cli", True, id="import-test-module"),
        pytest.param("from tests.integration.stale import test_crash", True, id="from-package-import-test-module"),
        pytest.param("from tests.emulator.conftest import NOW", True, id="from-conftest"),
        pytest.param("from .test_plan import honest", True, id="relative"),
        pytest.param("from tests.support.stale import NOW", False, id="support"),
        pytest.param("from tests.support.cli import run_guestctl", False, id="support-cli"),
        pytest.param("from shared.stale import plan_sweep", False, id="project-code"),
        pytest.param("import pytest", False, id="third-party"),
    ],
)
def test_the_check_tells_test_modules_from_support(source: str, expected: bool) -> None:
    assert bool(imported_test_modules(source)) is expected


def test_no_test_module_imports_another() -> None:
    offenders = {
        str(path.relative_to(TESTS.parent)): names
        for path in sorted(TESTS.rglob("*.py"))
        if "support" not in path.relative_to(TESTS).parts
        and (names := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "move what they share into tests/support/"
