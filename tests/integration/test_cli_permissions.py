"""`guestctl permissions check`: a deployed identity's Graph app roles against the enabled capabilities."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.testing import EmulatorServer
from shared.errors import ExitCode
from shared.graph import Graph
from shared.permissions import APP_ROLE_IDS, GRAPH_APP_ID, check_permissions, required_permissions
from tests.support.cli import ROOT, emulator_settings, run_guestctl

CLIENT_ID = "6c1a4b52-3d1e-4f0e-9a7b-2f8d5e9c0a11"


def identity_with(emulator: EmulatorServer, permissions: set[str]) -> None:
    graph_sp = emulator.tenant.service_principal_by_app_id(GRAPH_APP_ID)
    assert graph_sp is not None
    identity = emulator.control.add_service_principal(CLIENT_ID, "guestctl-identity")
    for name in sorted(permissions):
        emulator.control.assign_app_role(identity["id"], graph_sp["id"], "Microsoft Graph", APP_ROLE_IDS[name])


async def test_exactly_the_needed_permissions_pass(emulator: EmulatorServer, graph: Graph) -> None:
    identity_with(emulator, set(required_permissions(["sweeps", "reports"])))
    result = await check_permissions(graph, CLIENT_ID, ["sweeps", "reports"])
    assert result.ok
    assert result.missing == []
    assert result.excessive == []
    assert result.id_mismatches == {}
    assert result.granted == required_permissions(["sweeps", "reports"])


def test_cli_reports_missing_and_excessive_and_refuses_unknown_capabilities(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    needed = set(required_permissions(["reports"]))
    identity_with(emulator, (needed - {"Mail.Send"}) | {"Policy.ReadWrite.CrossTenantAccess"})
    env = {**emulator_settings(emulator, tmp_path, ROOT / "examples" / "policy.yaml"), "GUESTCTL_CLIENT_ID": CLIENT_ID}

    checked = run_guestctl("permissions", "check", "--capability", "reports", "--json", cwd=tmp_path, env=env)
    assert checked.returncode == ExitCode.PARTIAL, checked.stderr
    report = json.loads(checked.stdout)
    assert (report["ok"], report["missing"], report["excessive"]) == (
        False,
        ["Mail.Send"],
        ["Policy.ReadWrite.CrossTenantAccess"],
    )

    unknown = run_guestctl("permissions", "check", "--capability", "everything", cwd=tmp_path, env=env)
    assert unknown.returncode == ExitCode.BAD_INPUT
    assert "unknown capability 'everything'" in unknown.stderr
