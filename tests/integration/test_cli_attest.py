"""`guestctl attest grant | list | revoke` as the identity team runs them: real processes, exit codes, audit."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from emulator.testing import EmulatorServer
from shared.attestation.service import grant, revoke
from shared.config import load_settings
from shared.errors import ExitCode, GuestctlError, UnknownItemError
from shared.store import open_store
from tests.support.cli import ROOT, emulator_settings, run_guestctl


async def test_grant_list_revoke(emulator: EmulatorServer, tmp_path: Path) -> None:
    env = emulator_settings(emulator, tmp_path, ROOT / "examples" / "policy.yaml")
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest" and "#EXT#" in u.userPrincipalName)
    until = f"{datetime.now(UTC).date() + timedelta(days=60):%Y-%m-%d}"

    upn = guest.userPrincipalName  # with #EXT#: sent percent-encoded
    granted = run_guestctl("attest", "grant", upn, "--until", until, "--by", "Ida Admin", cwd=tmp_path, env=env)
    assert granted.returncode == 0, granted.stderr
    assert f"until {until} (by Ida Admin)" in granted.stdout
    listed = run_guestctl("attest", "list", "--json", cwd=tmp_path, env=env)
    assert [(k["guest_id"], k["until"], k["by"], k["how"]) for k in json.loads(listed.stdout)] == [
        (guest.id, until, "Ida Admin", "guestctl attest grant")
    ]
    settings = load_settings(graph_url=emulator.base_url, auth="emulator", state=str(tmp_path / "state.db"))
    await revoke(settings, guest.id, by="Ida Admin")
    with pytest.raises(UnknownItemError, match="no attestation for guest") as again:
        await revoke(settings, guest.id, by="Ida Admin")
    assert again.value.exit_code == ExitCode.BAD_INPUT

    async with open_store(str(tmp_path / "state.db")) as store:
        audit = [(e.action, e.actor) async for e in store.read_audit(target_id=guest.id)]
    assert audit == [
        ("attestation.grant", "guestctl attest grant (Ida Admin)"),
        ("attestation.revoke", "guestctl attest revoke (Ida Admin)"),
    ]


@pytest.mark.parametrize(
    ("who", "until", "error"),
    [
        ("Member", date.today() + timedelta(days=30), "is not a guest (userType Member)"),
        ("Guest", date(2020, 1, 1), "must be after today"),
        ("Guest", date.today() + timedelta(days=4000), "more than 3650 days ahead"),
    ],
)
async def test_grant_refuses_what_it_cannot_keep(
    emulator: EmulatorServer, tmp_path: Path, who: str, until: date, error: str
) -> None:
    user = next(u for u in emulator.tenant.users.values() if u.userType == who)
    settings = load_settings(graph_url=emulator.base_url, auth="emulator", state=str(tmp_path / "state.db"))
    with pytest.raises(GuestctlError) as refused:
        await grant(settings, user.id, until, by="Ida Admin")
    assert error in refused.value.message
    assert refused.value.exit_code == ExitCode.BAD_INPUT
