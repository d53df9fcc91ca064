"""People who already exist under another address are recognised, against the emulator, and never re-invited.

Each row's address is held by exactly one kind of alias: otherMails, a lower-case `smtp:` proxy address, an
email-one-time-passcode identity, a member's proxy address, or two different users at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Graph
from shared.invitations import InvitationRow, apply_invitations, plan_rows
from shared.store import open_store

NOW = datetime(2026, 11, 27, tzinfo=UTC)
POLICY = Policy.model_validate({"invitations": {}})


@pytest.fixture
def people(emulator: EmulatorServer) -> dict[str, str]:
    """Users whose second address is only in one place each; returns name → object id."""
    make = emulator.control.create_user
    return {
        "other": make(
            userType="Guest", mail="olga@fabrikam.example", otherMails=["olga@fabrikam.example", "olga@home.example"]
        )["id"],
        "proxy": make(
            userType="Guest",
            mail="pat@fabrikam.example",
            proxyAddresses=["SMTP:pat@fabrikam.example", "smtp:pat.old@fabrikam.example"],
        )["id"],
        "otp": make(
            userType="Guest",
            mail="ida@fabrikam.example",
            otherMails=["ida@fabrikam.example"],
            identities=[{"signInType": "federated", "issuer": "mail", "issuerAssignedId": "ida@otp.example"}],
        )["id"],
        "member": make(
            userType="Member",
            mail="max@contoso.example",
            proxyAddresses=["SMTP:max@contoso.example", "smtp:maximilian@contoso.example"],
        )["id"],
        "twin-a": make(userType="Guest", mail="tess@twin.example")["id"],
        "twin-b": make(userType="Guest", mail="tess.b@twin.example", otherMails=["tess@twin.example"])["id"],
    }


ROWS = [
    ("olga@home.example", "adopted", "other", "found by its otherMails"),
    ("PAT.OLD@fabrikam.example", "adopted", "proxy", "found by its proxyAddresses"),
    ("ida@otp.example", "adopted", "otp", "found by its identities (mail)"),
    ("maximilian@contoso.example", "skipped-member", "member", "found by its proxyAddresses"),
    ("tess@twin.example", "invalid", None, "held by 2 users"),
    ("fresh@partner.example", "invited", None, "invited"),
]


async def test_aliases_are_recognised_and_never_invited_again(
    emulator: EmulatorServer, people: dict[str, str], graph: Graph, tmp_path: Path
) -> None:
    rows = [InvitationRow(number, email) for number, (email, *_rest) in enumerate(ROWS, start=1)]
    users_before = len(emulator.tenant.users)
    emulator.control.clear_requests()
    emulator.control.clear_outbox()

    plan = await plan_rows(rows, graph, POLICY, batch_id="alias-1", source="aliases.csv", tenant_id="t", now=NOW)
    async with open_store(str(tmp_path / "state.db")) as store:
        results = await apply_invitations(plan, graph, store, mailer=None, actor="test")

    assert [r.result.value for r in results] == [expected for _, expected, _, _ in ROWS]
    for result, planned, (_, _, who, reason) in zip(results, plan.rows, ROWS, strict=True):
        if who is not None:
            assert result.user_id == people[who]
        assert reason in planned.reason or reason in result.reason
    twins = plan.rows[4].reason
    assert people["twin-a"] in twins, "both holders are named"
    assert people["twin-b"] in twins, "both holders are named"

    invitations = emulator.control.requests(path="/v1.0/invitations", method="POST")
    assert [r["body"]["invitedUserEmailAddress"] for r in invitations] == ["fresh@partner.example"]
    assert len(emulator.tenant.users) == users_before + 1, "only the new address became a user"
    assert [m["to"][0] for m in emulator.control.outbox(kind="invitation")] == ["fresh@partner.example"]
    lookups = [r for r in emulator.control.requests() if r["batch"] and r["path"] == "/v1.0/users"]
    assert lookups
    assert all("consistencylevel" not in {k.lower() for k in r["headers"]} for r in lookups), "strongly consistent"
