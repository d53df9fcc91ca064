"""Kill `guestctl invite --apply` (SIGKILL) at several points, rerun, and check that every valid row was
invited exactly once and got exactly one invitation email — Microsoft's, or our own sendMail."""

from __future__ import annotations

import asyncio
import csv
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from tests.support.cli import GUESTCTL, emulator_settings, guestctl_env, kill_when

ROWS = 40
SENDER = "adele.vance@contoso.com"


def write_inputs(tmp_path: Path, emulator: EmulatorServer, own_email: bool) -> tuple[Path, Path, list[str]]:
    tenant = emulator.tenant
    groups = [g for g in tenant.groups.values() if not g.is_dynamic]
    members = [u for u in tenant.users.values() if u.userType == "Member" and "#EXT#" not in u.userPrincipalName]
    addresses = [f"crash{i}@partner{i % 3}.example" for i in range(ROWS)]
    source = tmp_path / "invite.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "display_name", "groups", "sponsors", "message"])
        for i, address in enumerate(addresses):
            writer.writerow(
                [
                    address,
                    f"Crash {i}",
                    groups[i % len(groups)].displayName,
                    members[i % len(members)].userPrincipalName,
                    "Welcome aboard" if own_email else "",
                ]
            )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"invitations:\n  sender_mailbox: {SENDER}\n"
        "  message_template: 'Hi {display_name}: {message} {redeem_url}'\n"
        if own_email
        else "{}\n"
    )
    return source, policy, addresses


def start_invite(emulator: EmulatorServer, tmp_path: Path, source: Path, policy: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GUESTCTL, "invite", str(source), "--apply", "--json"],
        cwd=tmp_path,
        env=guestctl_env(emulator_settings(emulator, tmp_path, policy)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(5, guests=50, members=20))
    return emulator


@pytest.mark.parametrize(
    ("own_email", "kill_points"),
    [
        pytest.param(
            False,
            [("/v1.0/invitations", 5), ("/v1.0/$batch", 9), ("/v1.0/invitations", 25)],
            id="microsoft-email-killed-at-invite-then-batch-then-invite",
        ),
        pytest.param(
            True,
            [
                ("/v1.0/invitations", 4),
                (f"/v1.0/users/{SENDER}/messages", 9),
                ("/v1.0/$batch", 14),
                (f"/v1.0/users/{SENDER}/messages", 40),
            ],
            id="own-email-killed-at-invite-mail-batch-mail",
        ),
    ],
)
def test_killed_runs_finish_with_each_guest_invited_and_emailed_once(
    tenant: EmulatorServer, tmp_path: Path, own_email: bool, kill_points: list[tuple[str, int]]
) -> None:
    emulator = tenant
    source, policy, addresses = write_inputs(tmp_path, emulator, own_email)
    emulator.control.clear_requests()
    kills = 0
    for path, count in kill_points:
        process = start_invite(emulator, tmp_path, source, policy)
        kills += kill_when(emulator, process, path, count)
    assert kills >= 3, "the runs must really have been killed mid-apply"

    final = start_invite(emulator, tmp_path, source, policy)
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr.decode()[-2000:]

    users = [u for u in emulator.tenant.users.values() if (u.mail or "").lower() in addresses]
    assert Counter(u.mail.lower() for u in users) == Counter(addresses), "one guest object per address"
    assert all(u.userType == "Guest" for u in users)
    microsoft = Counter(m["to"][0].lower() for m in emulator.control.outbox(kind="invitation"))
    ours = Counter(m["to"][0].lower() for m in emulator.control.outbox(kind="mail") if m["to"][0].lower() in addresses)
    if own_email:
        assert microsoft == Counter(), "Microsoft's email is replaced by ours"
        assert ours == Counter(addresses), "exactly one own invitation email per person"
    else:
        assert microsoft == Counter(addresses), "exactly one invitation email per person"
        assert ours == Counter()
    for user in users:
        assert any(user.id in g.members for g in emulator.tenant.groups.values())
        assert len(user.sponsors) == 1
    from shared.store import open_store

    async def audited() -> Counter[tuple[str, str]]:
        async with open_store(str(tmp_path / "state.db")) as store:
            return Counter([(e.action, e.target_id) async for e in store.read_audit()])

    changes = ["guest.invite", "group.add-member", "guest.add-sponsor"]
    if own_email:
        changes.append("guest.invitation-email")
    expected = Counter((action, u.id) for u in users for action in changes)
    assert asyncio.run(audited()) == expected, "every change (invitation, membership, sponsor, email) audited once"
