"""Issue 9 §4: whatever the plan accepts, the apply can do; one bad row never blocks the others.

Real msgraph-sdk/httpx against the emulator and a real SQLite store.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Graph
from shared.invitations import apply_invitations, parse_rows, plan_rows
from shared.invitations.apply import ROWS_TABLE
from shared.invitations.plan import InvitationOutcome, InvitationPlan
from shared.store import Store
from tests.support.cli import emulator_settings, run_guestctl
from tests.support.invitations import LONG_ADDRESS, NOW

POLICY = Policy()


async def plan_of(graph: Graph, csv: str, batch_id: str = "limits-1") -> InvitationPlan:
    rows = parse_rows(csv.encode(), name="limits.csv")
    return await plan_rows(rows, graph, POLICY, batch_id=batch_id, source="limits.csv", tenant_id="t", now=NOW)


async def stages(store: Store, batch_id: str) -> dict[str, str]:
    return {r.data["email"]: r.data["stage"] async for r in store.query(ROWS_TABLE, batch_id)}


async def test_overlong_values_are_invalid_at_plan_time_and_the_other_rows_are_invited(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    assert len(LONG_ADDRESS) == 263
    csv = (
        "email,display_name,groups\n"
        "one@partner.example,One,\n"
        f"{LONG_ADDRESS},Long,\n"
        f"two@partner.example,{'N' * 257},\n"
        f"three@partner.example,Three,{'G' * 300}\n"
        "four@partner.example,Four,\n"
    )
    plan = await plan_of(graph, csv)
    assert [(r.row, r.outcome) for r in plan.rows] == [
        (1, InvitationOutcome.INVITE),
        (2, InvitationOutcome.INVALID),
        (3, InvitationOutcome.INVALID),
        (4, InvitationOutcome.INVALID),
        (5, InvitationOutcome.INVITE),
    ]
    assert "email is 263 characters long, the limit is 254" in plan.rows[1].reason
    assert "display_name" in plan.rows[2].reason
    assert "groups" in plan.rows[3].reason

    results = await apply_invitations(plan, graph, store, mailer=None, actor="test")
    assert [(r.row, r.result.value) for r in results] == [
        (1, "invited"),
        (2, "invalid"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invited"),
    ]
    assert await stages(store, "limits-1") == {
        "one@partner.example": "done",
        "four@partner.example": "done",
    }
    assert sorted(m["to"][0] for m in emulator.control.outbox(kind="invitation")) == [
        "four@partner.example",
        "one@partner.example",
    ]


async def test_a_row_the_store_refuses_fails_alone(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    plan = await plan_of(graph, "email\nok1@partner.example\nodd@partner.example\nok2@partner.example\n")
    # A key the store cannot keep, as if a limit had been missed at plan time.
    rows = tuple(replace(r, key="k" * 300) if r.row == 2 else r for r in plan.rows)
    results = await apply_invitations(replace(plan, rows=rows), graph, store, mailer=None, actor="test")
    assert [(r.row, r.result.value, r.transient) for r in results] == [
        (1, "invited", False),
        (2, "failed", False),
        (3, "invited", False),
    ]
    assert "key is 300 characters long, the limit is 255" in results[1].reason
    assert await stages(store, "limits-1") == {
        "ok1@partner.example": "done",
        "ok2@partner.example": "done",
    }


async def test_an_invitation_graph_refuses_is_not_left_inviting(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    plan = await plan_of(graph, "email\nok1@partner.example\nlater@partner.example\n")
    # An address Graph refuses (a + in the user name), as if the plan had missed it.
    rows = tuple(
        replace(r, email="kim+x@partner.example", key="kim+x@partner.example") if r.row == 2 else r for r in plan.rows
    )
    results = await apply_invitations(replace(plan, rows=rows), graph, store, mailer=None, actor="test")
    assert [(r.row, r.result.value, r.transient) for r in results] == [(1, "invited", False), (2, "failed", False)]
    assert "400" in results[1].reason
    assert await stages(store, "limits-1") == {
        "ok1@partner.example": "done",
        "kim+x@partner.example": "new",
    }


def guestctl(emulator: EmulatorServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("{}\n")
    return run_guestctl("invite", *args, cwd=tmp_path, env=emulator_settings(emulator, tmp_path, policy))


async def test_cli_plans_then_applies_a_file_with_an_overlong_address(emulator: EmulatorServer, tmp_path: Path) -> None:
    source = tmp_path / "partners.csv"
    source.write_text(f"email\none@partner.example\n{LONG_ADDRESS}\ntwo@partner.example\n")

    planned = guestctl(emulator, tmp_path, str(source), "--json")
    assert planned.returncode == 1, planned.stderr
    rows = {r["row"]: r for r in json.loads(planned.stdout)["rows"]}
    assert [rows[n]["outcome"] for n in (1, 2, 3)] == ["invite", "invalid", "invite"]
    assert "email is 263 characters long, the limit is 254" in rows[2]["reason"]

    applied = guestctl(emulator, tmp_path, str(source), "--apply", "--json")
    assert applied.returncode == 1, applied.stderr
    assert [r["outcome"] for r in json.loads(applied.stdout)["rows"]] == ["invited", "invalid", "invited"]
    assert "Traceback" not in applied.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('email,display_name\na@partner.example,"Ann\nb@partner.example,B\n', "line 2: a quote opened"),
        pytest.param("email,email\na@partner.example,b@partner.example\n", "column 'email' appears twice"),
    ],
)
async def test_cli_refuses_an_ambiguous_file_in_one_line(
    emulator: EmulatorServer, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "partners.csv"
    source.write_text(content)
    refused = guestctl(emulator, tmp_path, str(source), "--apply")
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert emulator.control.requests(method="POST") == []
