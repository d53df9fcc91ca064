"""`guestctl invite` and `guestctl emulator` as a person runs them: real processes, exit codes, files."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulator.testing import EmulatorServer
from tests.support.cli import ROOT, emulator_settings, run_guestctl, unused_port


@pytest.fixture
def env(emulator: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    return emulator_settings(emulator, tmp_path, ROOT / "examples" / "policy.yaml")


def test_plan_of_the_example_changes_nothing_and_exits_1_for_bad_rows(
    emulator: EmulatorServer, env: dict[str, str], tmp_path: Path
) -> None:
    result = run_guestctl("invite", str(ROOT / "examples" / "invitations.csv"), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    plan = json.loads(result.stdout)
    assert plan["counts"] == {"invite": 3, "already-guest": 1, "already-member": 1, "invalid": 3, "blocked-domain": 1}
    assert emulator.control.requests(path="/v1.0/invitations") == []
    assert not (tmp_path / "state.db").exists()


def test_apply_writes_one_result_line_per_row_and_exits_0_when_all_done(
    emulator: EmulatorServer, env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email,groups\nann.lee@fabrikam.com,Finance Partners\nraj@northwindtraders.com,\n")
    result = run_guestctl("invite", str(source), "--apply", "--out", "results.csv", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "results.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert [(r["row"], r["email"], r["outcome"]) for r in lines] == [
        ("1", "ann.lee@fabrikam.com", "invited"),
        ("2", "raj@northwindtraders.com", "invited"),
    ]
    assert all(r["user_id"] for r in lines)
    assert "invited: 2" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("mail\nann@fabrikam.com\n", "unknown column(s) 'mail'", id="unknown-column"),
        pytest.param("", "is empty", id="empty-file"),
    ],
)
def test_unusable_file_exits_2_and_applies_nothing(
    emulator: EmulatorServer, env: dict[str, str], tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(content)
    result = run_guestctl("invite", str(source), "--apply", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert emulator.control.requests() == []


@pytest.mark.parametrize(
    ("args", "guests"),
    [
        pytest.param(["--seed", "demo"], None, id="demo-tenant"),
        pytest.param(["--seed", "3", "--guests", "25", "--members", "5"], 25, id="generated-tenant"),
    ],
)
def test_emulator_command_prints_its_base_url_and_serves_graph(
    tmp_path: Path, args: list[str], guests: int | None
) -> None:
    port = unused_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUESTCTL_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "emulator", "--port", str(port), *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base_url = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert base_url == f"http://127.0.0.1:{port}/v1.0"
        for _ in range(100):
            try:
                response = httpx.get(
                    f"{base_url}/users?$filter=userType eq 'Guest'&$count=true&$top=999",
                    headers={"Authorization": "Bearer any", "ConsistencyLevel": "eventual"},
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.status_code == 200
        if guests is not None:
            assert response.json()["@odata.count"] == guests
        assert httpx.get(f"{base_url}/users").status_code == 401, "a bearer token is required"
    finally:
        process.terminate()
        process.wait(timeout=10)


REQUEST_LINE = re.compile(
    r"\d\d:\d\d:\d\d DEBUG guestctl\.graph: (GET|POST|PATCH|DELETE) http://127\.0\.0\.1:\d+/v1\.0/\S+"
    r"( \S+)* → \d{3} in \d+ ms \(request-id [0-9a-f-]{36}\)"
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["-vv", "invite", "in.csv"], id="before-the-command"),
        pytest.param(["invite", "in.csv", "-vv"], id="after-the-command"),
        pytest.param(["-v", "-v", "invite", "in.csv"], id="twice"),
    ],
)
def test_vv_logs_every_graph_request_once_and_nothing_from_libraries(
    emulator: EmulatorServer, env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "in.csv").write_text("email\nann.lee@fabrikam.com\nraj@northwindtraders.com\n")
    result = run_guestctl(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    logged = [line for line in result.stderr.splitlines() if " DEBUG guestctl.graph: " in line]
    assert logged, result.stderr
    assert all(REQUEST_LINE.fullmatch(line) for line in logged), logged
    sent = [r for r in emulator.control.requests() if not r["batch"]]  # a $batch's inner requests aside
    assert len(logged) == len(sent)
    assert not [line for line in result.stderr.splitlines() if re.search(r" (httpx|httpcore|asyncio)", line)]


def test_v_logs_detail_but_not_each_request(emulator: EmulatorServer, env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("email\nann.lee@fabrikam.com\n")
    quiet = run_guestctl("invite", "in.csv", cwd=tmp_path, env=env)
    verbose = run_guestctl("-v", "invite", "in.csv", cwd=tmp_path, env=env)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert verbose.returncode == 0
    assert " DEBUG " not in verbose.stderr
    assert "HTTP Request" not in verbose.stderr, "httpx's own request log (full URLs) stays off"
