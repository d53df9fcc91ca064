"""`guestctl sweep` at a terminal-friendly size: a big plan is summarised on screen, complete in --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from tests.support.cli import start_guestctl
from tests.support.stale import POLICY_TEXT


def test_a_big_plan_is_summarised_on_screen_and_complete_in_json(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.reset(seed_tenant(5, guests=400, members=20, now=datetime.now(UTC)))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)

    as_json = start_guestctl(emulator, tmp_path, "sweep", "--json")
    body = json.loads(as_json.communicate(timeout=120)[0])
    flags = [a for a in body["actions"] if a["kind"] == "flag"]
    assert len(flags) > 50, "enough inactive guests to need a summary"
    assert sum(body["counts"].values()) == body["guests"] == 400

    on_screen = start_guestctl(emulator, tmp_path, "sweep")
    text, errors = on_screen.communicate(timeout=120)
    assert on_screen.returncode == 0, errors
    assert f"({len(flags) - 50} more actions not listed; --out FILE or --json has them all)" in text
    assert f"actions: flag: {len(flags)}" in text
    assert not list(tmp_path.glob("*.json")), "planning writes no file unless asked"
