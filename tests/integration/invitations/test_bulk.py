"""1,000 rows against the emulator: every row's outcome, the tenant afterwards, and a rerun that does nothing.

The expected outcome of each row is decided here, while the rows are generated, not by our planner.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Graph
from shared.invitations import InvitationRow, RowResult, apply_invitations, plan_rows
from shared.store import Store
from tests.support.azurite import sqlite_only
from tests.support.invitations import NOW

POLICY = Policy.model_validate({"invitations": {"denied_domains": ["blocked.example"]}})


@dataclass(frozen=True)
class Case:
    row: InvitationRow
    expected: str  # the apply result we expect for this row


def generate(emulator: EmulatorServer, count: int = 1_000, seed: int = 11) -> list[Case]:
    tenant = emulator.tenant
    rng = random.Random(seed)
    guests = [u for u in tenant.users.values() if u.userType == "Guest" and u.mail]
    members = [u for u in tenant.users.values() if u.userType == "Member" and "#EXT#" not in u.userPrincipalName]
    groups = [g for g in tenant.groups.values() if not g.is_dynamic]
    cases: list[Case] = []
    new_addresses: list[str] = []
    used_existing: set[str] = set()
    for number in range(1, count + 1):
        group = rng.choice(groups)
        sponsor = rng.choice(members)
        roll = rng.random()
        refs = {"groups": (group.displayName,), "sponsors": (sponsor.userPrincipalName,)}
        if roll < 0.05:
            bad = rng.choice([f"bad+{number}@partner.example", f".dot{number}@partner.example", f"x{number}@nodot"])
            cases.append(Case(InvitationRow(number, bad, **refs), "invalid"))
        elif roll < 0.10 and new_addresses:
            twin = rng.choice(new_addresses).upper()
            cases.append(Case(InvitationRow(number, twin, **refs), "invalid"))
        elif roll < 0.15:
            guest = rng.choice(guests)
            expected = "invalid" if guest.mail.lower() in used_existing else "adopted"
            used_existing.add(guest.mail.lower())
            cases.append(Case(InvitationRow(number, guest.mail, **refs), expected))
        elif roll < 0.18:
            member = rng.choice(members)
            expected = "invalid" if member.mail.lower() in used_existing else "skipped-member"
            used_existing.add(member.mail.lower())
            cases.append(Case(InvitationRow(number, member.mail, **refs), expected))
        elif roll < 0.23:
            cases.append(Case(InvitationRow(number, f"p{number}@blocked.example", **refs), "blocked-domain"))
        elif roll < 0.28:
            row = InvitationRow(number, f"g{number}@partner.example", groups=(f"No Such Group {number}",))
            cases.append(Case(row, "invalid"))
        else:
            address = f"new{number}@partner{number % 9}.example"
            new_addresses.append(address)
            cases.append(Case(InvitationRow(number, address, display_name=f"New {number}", **refs), "invited"))
    return cases


async def run(graph: Graph, store: Store, rows: list[InvitationRow]) -> list[RowResult]:
    plan = await plan_rows(rows, graph, POLICY, batch_id="bulk-1", source="bulk.csv", tenant_id="t", now=NOW)
    return await apply_invitations(plan, graph, store, mailer=None, actor="test")


@pytest.fixture
def bigger_tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(5, guests=300, members=60))
    return emulator


@sqlite_only  # 1,000 rows twice: ~1 min more on Azurite; test_limits applies invitations on both
async def test_thousand_rows_each_get_the_right_outcome_once(
    bigger_tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    emulator = bigger_tenant
    cases = generate(emulator)
    rows = [c.row for c in cases]
    guests_before = sum(1 for u in emulator.tenant.users.values() if u.userType == "Guest")

    results = await run(graph, store, rows)

    assert [(r.row, r.result.value) for r in results] == [(c.row.row, c.expected) for c in cases]
    expected = Counter(c.expected for c in cases)
    assert expected["invited"] > 600
    assert min(expected.values()) >= 15, "every kind of row is represented"
    tenant = emulator.tenant
    invited = [c for c in cases if c.expected == "invited"]
    assert sum(1 for u in tenant.users.values() if u.userType == "Guest") == guests_before + len(invited)
    emails = Counter(m["to"][0].lower() for m in emulator.control.outbox(kind="invitation"))
    assert emails == Counter(c.row.email.lower() for c in invited), "one Microsoft invitation email per new guest"
    by_id = {r.row: r for r in results}
    for case in invited + [c for c in cases if c.expected == "adopted"]:
        user = tenant.find_user(by_id[case.row.row].user_id)
        group = next(g for g in tenant.groups.values() if g.displayName == case.row.groups[0])
        assert user.id in group.members
        sponsor = tenant.find_user(case.row.sponsors[0])
        assert sponsor.id in user.sponsors

    emulator.control.clear_requests()
    again = await run(graph, store, rows)
    assert [r.result.value for r in again] == [
        "already-done" if c.expected in ("invited", "adopted") else c.expected for c in cases
    ]
    assert emulator.control.requests(path="/v1.0/invitations", method="POST") == []
    assert len(emulator.control.outbox(kind="invitation")) == len(invited), "the rerun sent nothing"
