"""Ctrl+C during `guestctl sweep` planning: one line says what happened, and the rerun continues the scan."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.stale import PROGRESS_TABLE
from shared.stale.fetch import SCAN_TABLE
from shared.store import open_store
from tests.support.cli import GUESTCTL, emulator_settings, guestctl_env
from tests.support.stale import POLICY_TEXT

# signInActivity pages are paced: one page per 3 s window, so the scan is still running after its first page
SLOW = {"GUESTCTL_SIGN_IN_ACTIVITY_PER_MINUTE": "1", "GUESTCTL_TIME_SCALE": "0.05"}


def user_pages(emulator: EmulatorServer) -> list[str]:
    """The query strings of the guest list pages Graph was asked for, in order."""
    requests = emulator.control.requests(path="/v1.0/users", method="GET")
    return [r["query_string"] for r in requests if r["path"].rstrip("/") == "/v1.0/users"]


async def sweep(emulator: EmulatorServer, tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    env = guestctl_env({**emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml"), **SLOW})
    return await asyncio.create_subprocess_exec(
        *GUESTCTL,
        "sweep",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def first_page_planned(tmp_path: Path) -> None:
    """Wait until the sweep has kept its first page's share of the plan (what a rerun starts from)."""
    deadline = time.monotonic() + 60
    async with open_store(str(tmp_path / "state.db")) as store:
        while time.monotonic() < deadline:
            if [r async for r in store.query(PROGRESS_TABLE, row_prefix="page-")]:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the sweep never finished its first page")


async def test_an_interrupted_sweep_says_so_and_the_rerun_continues_it(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.reset(seed_tenant(12, guests=1_100, members=20, now=datetime.now(UTC)))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)

    first = await sweep(emulator, tmp_path)
    await first_page_planned(tmp_path)
    first.send_signal(signal.SIGINT)
    _, stderr = await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 130
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "interrupted while planning" in lines[0]
    assert "run `guestctl sweep` again to continue it" in lines[0]
    pages_before = len(user_pages(emulator))

    rerun = await sweep(emulator, tmp_path, "--json")
    stdout, stderr = await asyncio.wait_for(rerun.communicate(), 120)
    assert rerun.returncode == 0, stderr
    assert "continuing the sweep interrupted after 500 guests" in stderr.decode()
    plan = json.loads(stdout)
    assert plan["guests"] == sum(plan["counts"].values()) == 1_100
    rerun_pages = user_pages(emulator)[pages_before:]
    assert rerun_pages, "the rerun read the pages it had not planned"
    assert all("skiptoken" in page.lower() for page in rerun_pages), "page 1 was not read again"

    # the finished sweep leaves no progress behind; --fresh with nothing to continue starts a new scan
    async with open_store(str(tmp_path / "state.db")) as store:
        assert [r async for r in store.query(PROGRESS_TABLE)] == []
        cursors = [r async for r in store.query(SCAN_TABLE)]
        assert all(r.data["finished"] for r in cursors)


async def test_fresh_starts_over_and_removes_the_interrupted_scan(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.reset(seed_tenant(12, guests=1_100, members=20, now=datetime.now(UTC)))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)
    first = await sweep(emulator, tmp_path)
    await first_page_planned(tmp_path)
    first.send_signal(signal.SIGINT)
    await asyncio.wait_for(first.communicate(), 60)
    emulator.control.clear_requests()

    fresh = await sweep(emulator, tmp_path, "--fresh", "--json")
    stdout, stderr = await asyncio.wait_for(fresh.communicate(), 120)
    assert fresh.returncode == 0, stderr
    assert "continuing" not in stderr.decode()
    assert json.loads(stdout)["guests"] == 1_100
    assert not any("skiptoken" in page.lower() for page in user_pages(emulator)[:1]), "started from page 1"
    async with open_store(str(tmp_path / "state.db")) as store:
        assert [r async for r in store.query(PROGRESS_TABLE)] == []
