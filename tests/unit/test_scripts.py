"""scripts/install, scripts/test, scripts/try and scripts/check-infra answer --help and refuse unknown arguments
before doing anything (a person trying `--help` must not get an install)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / script), *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("script", ["install", "test", "try", "check-infra", "package", "check-package"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_usage_and_exits_0(script: str, flag: str) -> None:
    result = run(script, flag)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"Usage: scripts/{script}")
    assert "-h, --help" in result.stdout


@pytest.mark.parametrize("script", ["install", "try", "check-infra"])
def test_an_unknown_argument_is_a_usage_error(script: str) -> None:
    result = run(script, "--bogus", "--help")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"scripts/{script}: unknown argument '--bogus' — see scripts/{script} --help"]


def test_package_refuses_an_unknown_argument_before_building() -> None:
    result = run("package", "--bogus", "x")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("scripts/package: unexpected arguments '--bogus x'")
