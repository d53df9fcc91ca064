"""`guestctl sweep --apply --plan FILE` with a file edited by hand, and `guestctl restore` with wrong ids.

A plan file is signed with a key held in the state store: an edit, even with the digest recomputed by the
project's own code, is refused whole with exit 3 and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.stale import apply_plan, exemptions_now, plan_sweep
from shared.stale.plan import Plan
from shared.store import open_store
from tests.support.cli import start_guestctl
from tests.support.stale import POLICY_TEXT, UNCAPPED

Body = dict[str, Any]


def redigest(body: Body) -> Body:
    """What someone with the project's code does after an edit: work the digest out again."""
    fields = {k: v for k, v in body.items() if k not in ("digest", "signature")}
    return {**body, "digest": msgspec.convert(fields, Plan).digest()}


def first_of(body: Body, kind: str) -> Body:
    return next(a for a in body["actions"] if a["kind"] == kind)


EDITS: dict[str, tuple[Callable[[Body], object], str]] = {
    "disable-to-delete": (lambda b: first_of(b, "disable").update(kind="delete"), "not signed by this state store"),
    "flag-to-disable": (lambda b: first_of(b, "flag").update(kind="disable"), "not signed by this state store"),
    "created-at-in-the-future": (lambda b: b.update(created_at="2099-01-01T00:00:00Z"), "not signed"),
    "counts-changed": (lambda b: b["counts"].update(active=b["counts"]["active"] + 7), "not signed"),
    "signature-removed": (lambda b: b.pop("signature"), "not signed by this state store"),
}


@pytest.fixture
async def planned(emulator: EmulatorServer, graph: Graph, tmp_path: Path) -> Body:
    """A tenant whose inactive guests guestctl flagged three weeks ago, and `plan.json` to disable them."""
    now = datetime.now(UTC)
    then = now - timedelta(days=21)
    emulator.reset(seed_tenant(8, guests=100, members=10, now=now))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)
    policy = UNCAPPED
    async with open_store(str(tmp_path / "state.db")) as store:
        flags = await plan_sweep(graph, store, policy, now=then, scan_id="setup", tenant_id=None)
        exemptions = await exemptions_now(graph, policy)
        await apply_plan(flags, graph, store, policy, exemptions, actor="setup", clock=lambda: then)
    run = start_guestctl(emulator, tmp_path, "sweep", "--out", "plan.json")
    assert run.wait(timeout=120) == 0, run.stderr.read()  # type: ignore[union-attr]
    body = json.loads((tmp_path / "plan.json").read_text())
    assert {a["kind"] for a in body["actions"]} >= {"flag", "disable"}
    assert body["signature"].startswith("hmac-sha256:")
    return body


def writes(emulator: EmulatorServer) -> list[dict[str, Any]]:
    return [r for r in emulator.control.requests() if r["method"] in ("PATCH", "DELETE", "POST")]


@pytest.mark.parametrize(
    ("edit", "recompute"),
    [*((edit, True) for edit in EDITS), ("disable-to-delete", False)],
    ids=[*(f"{edit}-digest-recomputed" for edit in EDITS), "disable-to-delete-digest-left"],
)
def test_an_edited_plan_file_is_refused_whole_with_exit_3(
    emulator: EmulatorServer, tmp_path: Path, planned: Body, edit: str, recompute: bool
) -> None:
    change, message = EDITS[edit]
    change(planned)
    if recompute:
        planned = redigest(planned)
    else:
        message = "does not match its digest" if "signature" in planned else message
    (tmp_path / "plan.json").write_text(json.dumps(planned))
    emulator.control.clear_requests()

    run = start_guestctl(emulator, tmp_path, "sweep", "--apply", "--plan", "plan.json")
    _, stderr = run.communicate(timeout=120)

    assert run.returncode == 3, stderr
    assert message in stderr
    assert "nothing was changed" in stderr
    assert "Traceback" not in stderr
    assert writes(emulator) == []


def test_the_plan_as_written_applies_and_so_does_its_json_output(
    emulator: EmulatorServer, tmp_path: Path, planned: Body
) -> None:
    emulator.control.clear_requests()
    run = start_guestctl(emulator, tmp_path, "sweep", "--apply", "--plan", "plan.json", "--json")
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    outcomes = {r["outcome"] for r in json.loads(stdout)["results"]}
    assert outcomes == {"done"}
    disabled = [w for w in writes(emulator) if w["method"] == "PATCH"]
    assert len(disabled) == sum(a["kind"] == "disable" for a in planned["actions"])


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"actions": []}', "\ufeff{"],
    ids=["not-json", "a-list", "missing-fields", "bom-and-broken"],
)
def test_a_file_that_is_not_a_plan_is_bad_input_with_exit_2(
    emulator: EmulatorServer, tmp_path: Path, text: str
) -> None:
    emulator.reset(seed_tenant(8, guests=20, members=5, now=datetime.now(UTC)))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)
    (tmp_path / "plan.json").write_text(text)
    run = start_guestctl(emulator, tmp_path, "sweep", "--apply", "--plan", "plan.json")
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, stderr
    assert "not a usable plan" in stderr
    assert "Traceback" not in stderr


def test_restore_names_what_is_wrong_with_the_id(emulator: EmulatorServer, tmp_path: Path) -> None:
    emulator.reset(seed_tenant(8, guests=20, members=5, now=datetime.now(UTC)))
    (tmp_path / "policy.yaml").write_text(POLICY_TEXT)
    member = next(u.id for u in emulator.tenant.users.values() if u.userType == "Member")
    guest = next(u.id for u in emulator.tenant.users.values() if u.userType == "Guest")
    cases = [
        (["--run", "sweep-0123456789abcdef"], 2, "no sweep run sweep-0123456789abcdef is known"),
        (["--run", "last-tuesday"], 2, "is not a sweep, partners, retirement, partners migrate or offboarding run id"),
        (["--user", member], 2, "is not a guest (userType Member)"),
        (["--user", "00000000-0000-0000-0000-000000000000"], 2, "no user 00000000-0000-0000-0000-000000000000"),
        (["--user", "ann@fabrikam.com"], 2, "is not a user id"),
        (["--user", guest], 0, "nothing to undo"),
    ]
    for args, code, message in cases:
        run = start_guestctl(emulator, tmp_path, "restore", *args)
        stdout, stderr = run.communicate(timeout=60)
        assert (run.returncode, message in stdout + stderr) == (code, True), (args, stdout, stderr)
        assert "Traceback" not in stderr
