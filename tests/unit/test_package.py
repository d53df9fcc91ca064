"""scripts/package: the deployment zip is byte-identical across builds and holds the app and its pinned
runtime requirements only (scripts/check-package, run by scripts/test, proves it imports in a clean venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package(out: Path, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "package"), "-o", str(out)], capture_output=True, text=True, timeout=60
    )


def test_two_builds_are_byte_identical_and_hold_the_app_only(tmp_path: Path) -> None:
    first, second = package(tmp_path / "a.zip"), package(tmp_path / "b.zip")
    assert (first.returncode, first.stderr, second.returncode) == (0, "", 0)
    assert f"{(tmp_path / 'a.zip').stat().st_size:,} bytes" in first.stdout
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()

    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert names == sorted(names)
    assert {"function_app.py", "host.json", "requirements.txt", "functions/stale.py", "shared/config.py"} <= set(names)
    assert {name.split("/")[0] for name in names} == {
        "function_app.py",
        "host.json",
        "requirements.txt",
        "functions",
        "shared",
    }
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    requirements = zipfile.ZipFile(tmp_path / "a.zip").read("requirements.txt").decode()
    pinned = {line.split("==")[0] for line in requirements.splitlines() if "==" in line}
    assert "azure-functions" in pinned
    assert not pinned & {"pytest", "ruff", "hypothesis", "starlette", "uvicorn", "azure-storage-queue"}


def test_an_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "package", root / "scripts" / "package")
    for name in ("function_app.py", "host.json"):
        shutil.copy(ROOT / name, root / name)
    (root / "functions").mkdir()
    (root / "shared").mkdir()
    (root / "requirements.txt").write_text("azure-functions==1.26.0\nmsgraph-sdk>=1.65\n")

    result = package(tmp_path / "out.zip", root)

    assert result.returncode == 1
    assert result.stderr.strip().startswith("scripts/package: requirements.txt line 2 'msgraph-sdk>=1.65' is not")
    assert not (tmp_path / "out.zip").exists()


def test_a_policy_ships_as_policy_yaml_and_a_missing_one_is_a_usage_error(tmp_path: Path) -> None:
    shipped = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "package"),
            "-o",
            str(tmp_path / "p.zip"),
            "--policy",
            str(ROOT / "examples" / "policy.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shipped.returncode == 0, shipped.stderr
    assert zipfile.ZipFile(tmp_path / "p.zip").read("policy.yaml") == (ROOT / "examples" / "policy.yaml").read_bytes()

    missing = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package"), "-o", str(tmp_path / "q.zip"), "--policy", "nope.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith("scripts/package: --policy nope.yaml: no such file")
    assert not (tmp_path / "q.zip").exists()
