"""`guestctl partners discover` as a person runs it: a real process, its files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.testing import EmulatorServer
from shared.errors import ExitCode
from tests.support.cli import ROOT, emulator_settings, run_guestctl
from tests.support.partners import partner_tenant
from tests.support.stale import NOW


def test_discover_writes_json_and_refuses_bad_input(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.reset(partner_tenant(NOW).tenant)
    env = emulator_settings(emulator, tmp_path, ROOT / "examples" / "policy.yaml")
    out = tmp_path / "partners.json"
    shown = run_guestctl("partners", "discover", "--min-guests", "3", "--out", str(out), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "Fabrikam" in shown.stdout
    assert f"written to {out}" in shown.stdout
    written = json.loads(out.read_text())
    assert [p["recommendation"] for p in written["partners"]] == ["migrate", "migrate", "keep guests"]
    assert written["tenant_lookups"] == 6

    emulator.control.clear_requests()
    bad = run_guestctl("partners", "discover", "--min-guests", "0", cwd=tmp_path, env=env)
    assert bad.returncode == int(ExitCode.BAD_INPUT)
    assert "--min-guests" in bad.stderr
    folder = run_guestctl("partners", "discover", "--out", str(tmp_path), cwd=tmp_path, env=env)
    assert folder.returncode == int(ExitCode.BAD_INPUT)
    assert "is a folder" in folder.stderr
    assert emulator.control.requests() == []
