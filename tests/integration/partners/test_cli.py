"""`guestctl partners …` as a person or a script runs it: real processes against the emulator, their exit
codes, `--json` output and files, and what the tenant holds afterwards (accept in the partner's tenant, then
migrate, verify, retire and rollback in ours). Bad input runs `cli.main` in process: the same entry point,
without a process start per case."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.testing import EmulatorServer
from shared import cli
from shared.config import Policy
from shared.errors import ExitCode
from shared.graph import Graph
from shared.partners.accept import HomeUser, IdsFile
from shared.partners.retire_service import retire_with
from shared.partners.trust_effects import PARTNERS_PATH
from shared.store import open_store
from tests.support.cli import ROOT, emulator_settings, guestctl_env, run_guestctl
from tests.support.partners import (
    DIRECT_CONNECT_INBOUND,
    FABRIKAM,
    FABRIKAM_PEOPLE,
    SHARED_CHANNEL,
    home_id,
    home_tenant,
    partner_tenant,
)
from tests.support.stale import NOW

NOT_OURS = "aaaaaaaa-0000-4000-8000-0000000000ff"

POLICY = {
    "partners": {
        "tenants": [
            {
                "tenant": FABRIKAM,
                "name": "Fabrikam",
                "inbound": {"users": "all"},
                "channels": {"Project X": "Project X Partners"},
            }
        ]
    },
    "stale": {"disable_after_days": 7, "delete_after_days": 30},
    "safety": {"max_actions": 50, "max_percent": 100},
}


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


def members(emulator: EmulatorServer) -> set[tuple[str, str]]:
    """(home tenant, home object id) of everyone in Project X Partners, as the emulator holds it."""
    return {(m.tenantId, m.userId) for m in emulator.tenant.channels[SHARED_CHANNEL].members.values()}


def enabled(emulator: EmulatorServer, user_ids: list[str]) -> list[bool | None]:
    return [emulator.tenant.users[user_id].accountEnabled for user_id in user_ids]


def graph_writes(emulator: EmulatorServer) -> list[str]:
    """Every request of the emulator's log that could change the tenant (a `$batch` only carries its parts)."""
    return [
        f"{r['method']} {r['path']}"
        for r in emulator.control.requests()
        if r["method"] != "GET" and not r["path"].endswith("/$batch")
    ]


def json_of(shown: subprocess.CompletedProcess[str]) -> Any:
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def refused(shown: subprocess.CompletedProcess[str], code: ExitCode, *words: str) -> None:
    """Exit `code` with one line on stderr naming the problem (`words`), no traceback."""
    assert shown.returncode == int(code), shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1, shown.stderr
    assert all(word in shown.stderr for word in words), shown.stderr


async def test_accept_migrate_verify_retire_and_rollback(
    emulator: EmulatorServer, graph: Graph, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)  # guestctl runs on the real clock
    ours = partner_tenant(now)
    fabrikam = ours.guests["fabrikam"]  # f0..f9, f.other, f.admin (FABRIKAM_PEOPLE's order)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    (tmp_path / "theirs").mkdir()
    theirs = {**emulator_settings(emulator, tmp_path / "theirs", policy), "GUESTCTL_TENANT_ID": FABRIKAM}
    env = emulator_settings(emulator, tmp_path, policy)

    # Fabrikam's admin, in their tenant: outbound for us only, and the id file of their 11 people.
    emulator.reset(home_tenant(now))
    accepted = json_of(
        run_guestctl("partners", "accept", "--resource-tenant", ours.tenant.id, "--users", "all",
                     "--out", "ids.json", "--apply", "--json", cwd=tmp_path, env=theirs)
    )  # fmt: skip
    assert (accepted["resource_tenant"], accepted["action"], accepted["users"]) == (ours.tenant.id, "create", 11)
    assert [a["outcome"] for a in accepted["applied"]] == ["done"]
    assert accepted["run_id"].startswith("partners-")
    assert set(accepted) == {"run_id", "resource_tenant", "action", "changes", "applied", "users"}  # as documented
    outbound = emulator.tenant.policy_partners[ours.tenant.id]["b2bDirectConnectOutbound"]
    assert outbound["usersAndGroups"]["targets"] == [{"target": "AllUsers", "targetType": "user"}]
    ids = json.loads((tmp_path / "ids.json").read_text())
    assert (ids["tenant_id"], ids["resource_tenant"], ids["outbound_applied"]) == (FABRIKAM, ours.tenant.id, True)
    assert {u["id"] for u in ids["users"]} == {home_id(m) for m in FABRIKAM_PEOPLE if not m.startswith("f9@")}

    # Our tenant, our inbound allowed for Fabrikam: a plan changes nothing; --apply adds the 9 Teams-only people.
    emulator.reset(ours.tenant)
    await graph.request("POST", PARTNERS_PATH, json_body={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND})
    before = members(emulator)
    emulator.control.clear_requests()
    planned = json_of(run_guestctl("partners", "migrate", "--ids", "ids.json", "--json", cwd=tmp_path, env=env))
    assert set(planned) == {
        *("created_at", "partner_tenant", "partner", "run_id", "people", "creates", "actions", "counts"),
        *("guests", "refused", "notes"),
    }  # as documented
    assert (planned["creates"], planned["refused"]) == ([], None)
    assert set(planned["people"][0]) == {"guest_id", "mail", "home_id", "status", "reason", "channels"}
    assert set(planned["actions"][0]) == {
        "guest_id",
        "mail",
        "tenant_id",
        "home_id",
        "team_id",
        "channel_id",
        "channel",
    }
    assert planned["counts"] == {"keeps guest account": 2, "add": 9, "no home id": 1}
    assert {(a["guest_id"], a["home_id"]) for a in planned["actions"]} == {
        (fabrikam[n], home_id(FABRIKAM_PEOPLE[n])) for n in range(9)
    }
    assert "results" not in planned
    assert graph_writes(emulator) == []
    migrated = json_of(
        run_guestctl("partners", "migrate", "--ids", "ids.json", "--apply", "--json", cwd=tmp_path, env=env)
    )
    assert migrated["run_id"] == planned["run_id"]
    assert migrated["outcomes"] == {"add done": 9}
    assert {"mail", "outcome", "detail"} <= set(migrated["results"][0])
    added = {(FABRIKAM, home_id(FABRIKAM_PEOPLE[n])) for n in range(9)}
    assert members(emulator) == before | added

    # f2 and f3 are seen signing in through direct connect; f4 fails (our side does not trust their MFA).
    for mail, error in (("f2@fabrikam.com", 0), ("f3@fabrikam.com", 0), ("f4@fabrikam.com", 90071)):
        at = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        emulator.control.sign_in(home_id(mail), at=at, crossTenantAccessType="b2bDirectConnect",
                                 homeTenantId=FABRIKAM, success=not error, errorCode=error)  # fmt: skip
    verified = json_of(run_guestctl("partners", "verify", "--days", "7", "--json", cwd=tmp_path, env=env))
    assert set(verified) == {"generated_at", "since", "days", "entries", "sign_in_log", "partners", "notes"}
    assert verified["sign_in_log"] is True
    first = verified["partners"][0]
    counts = {"direct_connect", "guest", "direct_connect_failed", "guest_failed", "mfa", "errors"}
    assert set(first) == {"tenant_id", "name", "configured", "days", "people", *counts}
    assert set(first["people"][0]) == {
        "person",
        "user_id",
        "name",
        "first_direct_connect",
        "last_direct_connect",
        *counts,
    }
    assert (first["tenant_id"], first["name"], first["configured"]) == (FABRIKAM, "Fabrikam", True)
    assert (first["direct_connect"], first["direct_connect_failed"], first["errors"]) == (3, 1, {"90071": 1})
    people = {p["person"]: p for p in first["people"]}
    yesterday = str((now - timedelta(days=1)).date())
    assert people["f2@fabrikam.com"]["last_direct_connect"] == yesterday
    assert people["f4@fabrikam.com"]["last_direct_connect"] is None

    # Retirement: flagged a week ago (in process, on a clock a week back; same state file), disabled now.
    async with open_store(str(tmp_path / "state.db")) as store:
        await retire_with(graph, store, Policy.model_validate(POLICY), tenant_id=None, apply=True,
                          clock=lambda: now - timedelta(days=8))  # fmt: skip
    retire_plan = tmp_path / "retire.json"
    plan = json_of(run_guestctl("partners", "retire", "--plan", str(retire_plan), "--json", cwd=tmp_path, env=env))
    assert [(a["action"], a["target_id"]) for a in plan["actions"]] == [
        ("disable", fabrikam[2]),
        ("disable", fabrikam[3]),
    ]
    assert (plan["applied"], plan["refused"], plan["results"]) == (False, None, [])
    assert set(plan) == {"plan_id", "run_id", "guests", "candidates", "kept", "refused", "notes", "actions", "applied",
                         "outcomes", "results"}  # fmt: skip

    emulator.control.clear_requests()  # a plan edited after guestctl wrote it: refused whole, nothing written
    edited = tmp_path / "edited.json"
    body = json.loads(retire_plan.read_text())
    body["actions"] = body["actions"][:1]
    edited.write_text(json.dumps(body))
    refused(run_guestctl("partners", "retire", "--apply", "--plan", str(edited), cwd=tmp_path, env=env),
            ExitCode.REFUSED, str(edited))  # fmt: skip
    assert graph_writes(emulator) == []
    retired = json_of(
        run_guestctl("partners", "retire", "--apply", "--plan", str(retire_plan), "--json", cwd=tmp_path, env=env)
    )
    assert (retired["applied"], retired["outcomes"], retired["run_id"]) == (
        True, {"disable done": 2}, f"retire-{plan['plan_id']}"
    )  # fmt: skip
    assert enabled(emulator, fabrikam) == [True, True, False, False, *[True] * 8]

    # Rollback, each run by its id: the accounts enabled again, the memberships removed.
    undone = run_guestctl("partners", "rollback", "--run", retired["run_id"], cwd=tmp_path, env=env)
    assert undone.returncode == 0, undone.stderr
    assert undone.stdout.splitlines()[-1] == "done: 2"
    assert enabled(emulator, fabrikam) == [True] * 12
    removed = run_guestctl("partners", "rollback", "--run", migrated["run_id"], cwd=tmp_path, env=env)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[-1] == "done: 9"
    assert members(emulator) == before


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        pytest.param(
            ["accept", "--resource-tenant", FABRIKAM, "--group", "x" * 300, "--out", "ids.json"],
            ExitCode.BAD_INPUT,
            f"--group '{'x' * 80}': not an object id",
            id="accept-group-not-an-id",
        ),
        pytest.param(
            ["migrate", "--ids", "missing.json"],
            ExitCode.BAD_INPUT,
            "missing.json: cannot read the id file",
            id="migrate-missing-ids",
        ),
        pytest.param(
            ["migrate", "--ids", "theirs.json", "--apply"],
            ExitCode.REFUSED,
            f"the id file is for tenant {NOT_OURS}, not ours",
            id="migrate-ids-for-another-tenant",
        ),
        pytest.param(["verify", "--days", "31"], ExitCode.BAD_INPUT, "--days", id="verify-days-out-of-range"),
        pytest.param(
            ["rollback", "--run", "retire-0123456789abcdef"],
            ExitCode.BAD_INPUT,
            "no retirement run retire-0123456789abcdef is known to this state store",
            id="rollback-unknown-run",
        ),
    ],
)
def test_bad_input_is_one_line_with_the_documented_exit_code_and_no_graph_write(
    emulator: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: ExitCode,
    words: str,
) -> None:
    """In process (cli.main, as the console script runs it): a child process each would cost the CI 1-2 s."""
    ours = partner_tenant(NOW).tenant
    emulator.reset(ours)
    settings = {**emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml"), "GUESTCTL_TENANT_ID": ours.id}
    for name, value in guestctl_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    made = IdsFile(
        FABRIKAM, NOT_OURS, NOW, {"users": "all"}, True, (HomeUser(home_id(FABRIKAM_PEOPLE[0]), None, None),)
    )
    (tmp_path / "theirs.json").write_text(json.dumps(made.to_json()))
    emulator.control.clear_requests()
    monkeypatch.setattr("sys.argv", ["guestctl", "partners", *args])

    with pytest.raises(SystemExit) as exited:
        cli.main()

    assert exited.value.code == int(code)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert words in lines[0]
    assert "x" * 81 not in lines[0]  # a value is quoted, not echoed whole
    assert not (tmp_path / "ids.json").exists()
    assert graph_writes(emulator) == []
