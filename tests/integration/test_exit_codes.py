"""docs/cli.md's exit-code table, one failure class a row: `guestctl` as a child process, the code it exits
with, and a single line on stderr naming what went wrong (never a traceback).

To add a row: append a `Case` to CASES (or a test below for a case that needs the engine to set it up).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.graph import Budget, Graph, GraphOptions
from shared.stale import apply_plan, exemptions_now, plan_sweep
from shared.stale.plan import Exemptions, Planner
from shared.store import open_store
from tests.support.cli import GUESTCTL, emulator_settings, guestctl_env, unused_port
from tests.support.scripted_server import Handler, Reply, ScriptedServer, SeenRequest
from tests.support.stale import UNCAPPED

ROOT = Path(__file__).resolve().parents[2]
GOOD_ROWS = "email\nann.lee@fabrikam.com\n"


def no_azure_login(folder: Path) -> dict[str, str]:
    """A workstation without `az login`, offline: DefaultAzureCredential limited to the developer tools
    (no managed-identity probe on the network), none of which is installed or signed in here."""
    empty = folder / "empty-path"
    empty.mkdir(exist_ok=True)
    return {"AZURE_TOKEN_CREDENTIALS": "dev", "HOME": str(folder), "PATH": str(empty)}


@dataclass(frozen=True)
class Case:
    args: list[str]
    code: int
    message: str  # a part of the one error line
    files: dict[str, str] = field(default_factory=dict)  # written into the working folder first
    settings: Callable[[EmulatorServer, Path], dict[str, str]] = lambda emulator, folder: {}


# A well-formed plan with a right digest but no signature: made outside guestctl's CLI.
UNSIGNED_PLAN = Planner(Policy(), datetime.now(UTC), lifecycle={}, exemptions=Exemptions()).finish().to_json()


def on_emulator(emulator: EmulatorServer, folder: Path) -> dict[str, str]:
    return emulator_settings(emulator, folder, ROOT / "examples" / "policy.yaml")


CASES = {
    "usage: unknown option": Case(["invite", "--bogus"], 2, "--bogus (Possible options: --out) — see `guestctl invite"),
    "usage: missing argument": Case(["invite"], 2, "Missing argument"),
    "usage: -v after the command still parsed": Case(["sweep", "-v", "--nope"], 2, "No such option: --nope"),
    "bad policy": Case(
        ["--policy", "policy.yaml", "config", "check"],
        2,
        "stale.inactiv_days: unknown key",
        files={"policy.yaml": "stale:\n  inactiv_days: 30\n"},
    ),
    "unreadable input file": Case(["invite", "missing.csv"], 2, "missing.csv: cannot read: No such file"),
    "partial: one invalid row": Case(
        ["invite", "in.csv"],
        1,
        "",
        files={"in.csv": GOOD_ROWS + "kim+test@fabrikam.com\n"},
        settings=on_emulator,
    ),
    "Graph unreachable": Case(
        ["invite", "in.csv"],
        4,
        "cannot reach Microsoft Graph at 127.0.0.1: could not connect",
        files={"in.csv": GOOD_ROWS},
        settings=lambda emulator, folder: {
            "GUESTCTL_GRAPH_URL": f"http://127.0.0.1:{unused_port()}/v1.0",
            "GUESTCTL_AUTH": "emulator",
            "GUESTCTL_RETRY_BUDGET_SECONDS": "1",
        },
    ),
    "no Azure credential": Case(
        ["invite", "in.csv"],
        4,
        "no Azure credential for Microsoft Graph at 127.0.0.1 (GUESTCTL_AUTH=default)",
        files={"in.csv": GOOD_ROWS},
        settings=lambda emulator, folder: {
            # https to a closed loopback port: nothing could leave the machine even with a token
            "GUESTCTL_GRAPH_URL": f"https://127.0.0.1:{unused_port()}/v1.0",
            "GUESTCTL_AUTH": "default",
            **no_azure_login(folder),
        },
    ),
    "state path cannot be created": Case(
        ["invite", "in.csv", "--apply"],
        2,
        "not-a-folder is not a folder",
        files={"in.csv": GOOD_ROWS, "not-a-folder": "a file\n"},
        settings=lambda emulator, folder: {
            **on_emulator(emulator, folder),
            "GUESTCTL_STATE": str(folder / "not-a-folder" / "state.db"),
        },
    ),
    "state file that is not a database": Case(
        ["invite", "in.csv", "--apply"],
        2,
        "cannot open: file is not a database",
        files={"in.csv": GOOD_ROWS, "notes.db": "not a database\n" * 100},
        settings=lambda emulator, folder: {
            **on_emulator(emulator, folder),
            "GUESTCTL_STATE": str(folder / "notes.db"),
        },
    ),
    "--out in a folder that does not exist": Case(
        ["invite", "in.csv", "--apply", "--out", "no-such-folder/results.csv"],
        2,
        "--out no-such-folder/results.csv: folder no-such-folder does not exist",
        files={"in.csv": GOOD_ROWS},
        settings=on_emulator,
    ),
    "plan file not written by guestctl with this store": Case(
        ["sweep", "--apply", "--plan", "plan.json"],
        3,
        "plan.json: the plan is not signed by this state store",
        files={"plan.json": json.dumps(UNSIGNED_PLAN)},
        settings=on_emulator,
    ),
    "plan file edited, digest left": Case(
        ["sweep", "--apply", "--plan", "plan.json"],
        3,
        "plan.json: the plan was changed after guestctl made it",
        files={"plan.json": json.dumps({**UNSIGNED_PLAN, "guests": 7})},
        settings=on_emulator,
    ),
    "plan file that is not a plan": Case(
        ["sweep", "--apply", "--plan", "plan.json"],
        2,
        "plan.json: not a usable plan",
        files={"plan.json": '{"kind": "disable"}'},
        settings=on_emulator,
    ),
    "restore of a run the store does not know": Case(
        ["restore", "--run", "sweep-0123456789abcdef"],
        2,
        "no sweep run sweep-0123456789abcdef is known to this state store",
        settings=on_emulator,
    ),
    "restore of something that is not a run id": Case(
        ["restore", "--run", "yesterday"],
        2,
        "'yesterday' is not a sweep, partners, retirement, partners migrate or offboarding run id",
        settings=on_emulator,
    ),
}


def run(args: list[str], folder: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = guestctl_env(settings)
    for name in [n for n in env if n.startswith("AZURE_") and n != "AZURE_TOKEN_CREDENTIALS"]:
        del env[name]  # the credential chain must not find a real one
    return subprocess.run([*GUESTCTL, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code == 1:  # partial: the per-row outcome is on stdout, and no error line
        assert result.stderr == ""
        return
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exit_code_and_one_line(case: Case, emulator: EmulatorServer, tmp_path: Path) -> None:
    for name, content in case.files.items():
        (tmp_path / name).write_text(content)
    result = run(case.args, tmp_path, case.settings(emulator, tmp_path))
    assert_one_error_line(result, case.code, case.message)


def test_an_error_quoting_huge_input_stays_one_short_line(emulator: EmulatorServer, tmp_path: Path) -> None:
    """A CSV cell of 200 KB: whatever the parser makes of it, the person gets one line, not the cell."""
    (tmp_path / "big.csv").write_text("email,display_name\nann.lee@fabrikam.com," + "x" * 200_000 + "\n")
    result = run(["invite", "big.csv"], tmp_path, on_emulator(emulator, tmp_path))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr[:2000]
    assert len(result.stderr) < 1_500


async def test_a_plan_over_the_cap_is_refused_whole(emulator: EmulatorServer, tmp_path: Path) -> None:
    """Guests flagged 20 days ago are due to be disabled; more than safety.max_actions of them: exit 3."""
    now = datetime.now(UTC)
    flagged_on = now - timedelta(days=20)
    emulator.reset(seed_tenant(31, guests=120, members=10, now=flagged_on))
    policy = UNCAPPED
    unlimited = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)
    graph = Graph(GraphOptions(base_url=emulator.base_url, auth="emulator", budget=unlimited))
    try:
        async with open_store(str(tmp_path / "state.db")) as store:
            flags = await plan_sweep(graph, store, policy, now=flagged_on, scan_id="f", tenant_id=None)
            exempt = await exemptions_now(graph, policy)
            await apply_plan(flags, graph, store, policy, exempt, actor="t", clock=lambda: flagged_on)
    finally:
        await graph.close()
    assert len(flags.actions) > 1
    emulator.control.set_clock(now)
    (tmp_path / "policy.yaml").write_text("safety:\n  max_actions: 1\n  max_percent: 100\n")
    before = {user.id: user.accountEnabled for user in emulator.tenant.users.values()}

    result = run(["sweep", "--apply"], tmp_path, emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml"))

    assert_one_error_line(result, 3, "the plan was refused")
    assert "safety.max_actions (1)" in result.stderr
    assert {user.id: user.accountEnabled for user in emulator.tenant.users.values()} == before


def test_ctrl_c_exits_130_with_one_line(scripted_server: Callable[[Handler], ScriptedServer], tmp_path: Path) -> None:
    """Ctrl+C while a Graph request is in flight: one line, the shell's code for SIGINT."""
    answer = threading.Event()

    def hang(_: SeenRequest) -> Reply:
        answer.wait(30)
        return Reply(503)

    server = scripted_server(hang)
    (tmp_path / "in.csv").write_text(GOOD_ROWS)
    env = guestctl_env({"GUESTCTL_GRAPH_URL": server.base_url, "GUESTCTL_AUTH": "emulator"})
    process = subprocess.Popen(
        [*GUESTCTL, "invite", "in.csv"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # until the request is in flight
            if server.requests or process.poll() is not None:
                break
            time.sleep(0.05)
        assert server.requests, "guestctl never sent its request"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        answer.set()
        if process.poll() is None:
            process.kill()
    result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_error_line(result, 130, "interrupted")
