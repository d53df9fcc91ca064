"""Directory lookups for planning, against the emulator: batched, and right."""

from __future__ import annotations

from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.invitations.fetch import fetch_directory
from shared.invitations.rows import InvitationRow


async def test_lookups_find_guests_members_groups_and_sponsors(emulator: EmulatorServer, graph: Graph) -> None:
    tenant = emulator.tenant
    guest = next(u for u in tenant.users.values() if u.userType == "Guest" and u.mail)
    member = next(u for u in tenant.users.values() if u.userType == "Member" and u.mail)
    group = next(iter(tenant.groups.values()))
    rows = [
        InvitationRow(1, guest.mail.upper(), groups=(group.displayName.lower(),), sponsors=(member.userPrincipalName,)),
        InvitationRow(2, member.mail, groups=(group.id,), sponsors=(member.id,)),
        InvitationRow(3, "nobody@fabrikam.example", groups=("No Such Group",)),
        *[InvitationRow(4 + i, f"new{i}@partner.example") for i in range(40)],
    ]
    emulator.control.clear_requests()
    directory = await fetch_directory(graph, rows)

    assert directory.users_by_address[guest.mail.lower()].user_type == "Guest"
    assert directory.users_by_address[member.mail.lower()].id == member.id
    assert "nobody@fabrikam.example" not in directory.users_by_address
    assert [g.id for g in directory.groups_by_key[group.displayName.lower()]] == [group.id]
    assert [g.id for g in directory.groups_by_key[group.id]] == [group.id]
    assert "no such group" not in directory.groups_by_key
    assert directory.sponsors_by_key[member.userPrincipalName.lower()].id == member.id
    assert directory.sponsors_by_key[member.id].id == member.id
    round_trips = [r["path"] for r in emulator.control.requests() if not r["batch"]]
    assert round_trips == ["/v1.0/$batch"], "43 rows need one round trip, not one per row"
