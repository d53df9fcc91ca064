"""Sponsor attestation through the Functions app: the notice's links, GET pages that change nothing, POSTs
that act once, and the next sweep honouring the answer (docs/attestation.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.attestation.tokens import Decision, sign
from shared.config import Policy, load_policy, load_settings
from shared.graph import Graph
from shared.reports.build import build_report
from shared.reports.fetch import read_facts
from shared.reports.weeks import week_of
from shared.stale import ActionKind, plan_sweep
from shared.stale.service import run_plan
from shared.store import Store, open_state
from shared.store.registry import ATTESTATIONS, STALE_GUESTS
from tests.support.functions import bindings, point_at_emulator

SECRET = "attestation-secret-for-tests-0123456789"
BASE = "https://guestctl.example.net"
LINK = re.compile(re.escape(BASE) + r"/api/attest\?token=([A-Za-z0-9_-]+)")


def test_bindings_are_anonymous_get_and_post_on_one_route(functions: dict) -> None:
    for name, method in (("attest_page", "GET"), ("attest_confirm", "POST")):
        (trigger,) = [b for b in bindings(functions, name) if b["type"] == "httpTrigger"]
        assert (trigger["methods"], trigger["route"], trigger["authLevel"]) == ([method], "attest", "ANONYMOUS")


@dataclass
class Scene:
    emulator: EmulatorServer
    graph: Graph
    store: Store
    policy: Policy
    now: datetime


@pytest.fixture
async def scene(
    emulator: EmulatorServer, graph: Graph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Scene]:
    now = datetime.now(UTC)
    emulator.reset(seed_tenant(21, guests=80, members=8, now=now))
    sender = next(u for u in emulator.tenant.users.values() if u.userType == "Member" and u.mail)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        f"invitations:\n  sender_mailbox: {sender.userPrincipalName}\nstale:\n  notify_sponsors: true\n"
        "attestation:\n  keep_days: 90\nsafety:\n  max_actions: 1000\n  max_percent: 100\n"
    )
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_TENANT_ID")
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy_file))
    monkeypatch.setenv("GUESTCTL_ATTESTATION_URL", BASE)
    monkeypatch.setenv("GUESTCTL_ATTESTATION_SECRET", SECRET)
    settings = load_settings()
    async with open_state(settings) as store:
        yield Scene(emulator, graph, store, load_policy(settings.policy), now)


async def sweep(scene: Scene, at: datetime, scan_id: str, *, apply: bool) -> Any:
    plan = await plan_sweep(scene.graph, scene.store, scene.policy, now=at, scan_id=scan_id, tenant_id=None)
    if apply:
        await run_plan(plan, scene.graph, scene.store, scene.policy, tenant_id=None, actor="test", clock=lambda: at)
    return plan


async def get(functions: dict, token: str) -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url=f"/api/attest?token={token}", body=b"", params={"token": token})
    return await functions["attest_page"].get_user_function()(request)


async def post(functions: dict, token: str) -> func.HttpResponse:
    request = func.HttpRequest(
        method="POST",
        url="/api/attest",
        body=f"token={token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    return await functions["attest_confirm"].get_user_function()(request)


async def state(scene: Scene) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Everything an attestation request could change: its records, guestctl's guest records, the audit log,
    and Graph writes (a $batch carries only reads here)."""
    attestations = [(r.partition, r.row, r.data) async for r in scene.store.query(ATTESTATIONS)]
    guests = [(r.row, r.data) async for r in scene.store.query(STALE_GUESTS)]
    audit = [e async for e in scene.store.read_audit()]
    writes = [r for r in scene.emulator.control.requests() if r["method"] != "GET" and "$batch" not in r["path"]]
    return attestations, guests, audit, writes


def page_of(response: func.HttpResponse) -> str:
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = response.get_body().decode()
    assert "<script" not in text
    assert "src=" not in text
    assert "http" not in text.split("</title>")[1], "no external resource"
    return text


def digest_of(scene: Scene, mail: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """guest id → (keep token, let-go token), from the notice's lines, matched by the guest's address."""
    found = {}
    for block in mail["body"].split("\n- ")[1:]:
        keep, let_go = LINK.findall(block)[:2]
        address = block.split("<", 1)[1].split(">", 1)[0]
        (guest,) = [u.id for u in scene.emulator.tenant.users.values() if address in (u.mail, u.userPrincipalName)]
        found[guest] = (keep, let_go)
    return found


async def test_the_loop_from_notice_to_the_next_sweep(functions: dict, scene: Scene) -> None:
    await sweep(scene, scene.now, "first", apply=True)
    mails = scene.emulator.control.outbox(kind="mail")
    mail = next(m for m in mails if len(digest_of(scene, m)) >= 2)
    digest = digest_of(scene, mail)
    assert "Keep all: " in mail["body"]
    assert "Let go all: " in mail["body"]
    (kept, let_go, *_) = sorted(digest)
    sponsor = next(u for u in scene.emulator.tenant.users.values() if u.mail == mail["to"][0])

    # GET (a mail scanner, a link preview, the sponsor): a page naming guest and action; nothing changes
    before = await state(scene)
    for token in (*digest[kept], *LINK.findall(mail["body"].split("All of them:")[1])):
        response = await get(functions, token)
        assert response.status_code == 200
        assert 'method="post"' in page_of(response)
        assert token in page_of(response)
    assert "Keep " in page_of(await get(functions, digest[kept][0]))
    assert scene.emulator.tenant.users[kept].mail in page_of(await get(functions, digest[kept][0]))
    assert await state(scene) == before, "GET changed nothing"

    # POST keep: recorded with the sponsor's name, once
    response = await post(functions, digest[kept][0])
    assert (response.status_code, "Kept" in page_of(response)) == (200, True)
    again = await post(functions, digest[kept][0])
    assert (again.status_code, "already used" in page_of(again)) == (409, True)
    audit = [e async for e in scene.store.read_audit(target_id=kept)]
    names = [e.action for e in audit if e.action.startswith("attestation.")]
    assert names == ["attestation.keep", "attestation.refused"]

    # POST let go for another guest
    assert (await post(functions, digest[let_go][1])).status_code == 200

    # The next sweep: the kept guest is un-flagged as exempt, with the sponsor's name; the let-go one disabled
    # now, though the flag's 14 days are not over
    plan = await sweep(scene, scene.now + timedelta(days=1), "second", apply=False)
    actions = {a.target_id: a for a in plan.actions}
    until = (scene.now + timedelta(days=90)).date()
    assert actions[kept].kind is ActionKind.UNFLAG
    assert actions[kept].reason == f"exempt: kept by {sponsor.displayName} until {until:%Y-%m-%d}"
    assert actions[let_go].kind is ActionKind.DISABLE
    assert actions[let_go].reason.startswith(f"let go by {sponsor.displayName} on ")
    others = set(digest) - {kept, let_go}
    assert not {a.kind for t, a in actions.items() if t in others} & {ActionKind.DISABLE, ActionKind.UNFLAG}

    # The weekly report of the week the links expired: every other sponsor with a notice did not answer
    disable_at = scene.now + timedelta(days=14)
    facts = await read_facts(scene.store, None, scene.policy, week_of(disable_at), disable_at + timedelta(seconds=1))
    listed = {a.subject: a for a in build_report(facts, scene.policy).attention if a.kind == "sponsor-no-answer"}
    silent = {m["to"][0]: len(digest_of(scene, m)) for m in mails if m["to"][0] != sponsor.mail}
    assert silent, "the tenant has sponsors who did not answer"
    assert {s: int(a.detail.split()[0]) for s, a in listed.items()} == silent
    assert {a.at for a in listed.values()} == {scene.now}


async def test_refused_tokens_change_nothing(functions: dict, scene: Scene) -> None:
    users = scene.emulator.tenant.users
    guest = next(u for u in users.values() if u.userType == "Guest" and len(u.sponsors) == 1)
    (sponsor_id,) = guest.sponsors
    later = scene.now + timedelta(days=14)

    def token(*, expires: datetime = later, secret: str = SECRET, guest_id: str = guest.id) -> str:
        return sign(Decision.KEEP, guest_id=guest_id, sponsor_id=sponsor_id, expires=expires, secret=secret.encode())

    before = await state(scene)
    cases = [
        (token(expires=scene.now - timedelta(minutes=1)), 410, "expired"),
        (token(secret="another secret, long enough to be one......"), 403, "not valid"),
        (token()[:-3], 400, "incomplete"),
    ]
    for text, status, words in cases:
        for send in (get, post):
            response = await send(functions, text)
            assert (response.status_code, words in page_of(response)) == (status, True), (send.__name__, words)
    assert (await state(scene))[:2] == before[:2]
    assert (await state(scene))[3] == before[3]

    # the sponsor was replaced since the notice: refused, nothing recorded, the link still unused
    guest.sponsors = tuple(u.id for u in users.values() if u.userType == "Member" and u.id != sponsor_id)[:1]
    response = await post(functions, token())
    assert (response.status_code, "no longer" in page_of(response)) == (403, True)
    # a guest deleted since: refused
    assert (await post(functions, token(guest_id="00000000-0000-4000-8000-000000000001"))).status_code == 404
    attestations, guests, audit, writes = await state(scene)
    assert (attestations, guests, writes) == (*before[:2], before[3])
    refusals = [e.reason for e in audit if e.action == "attestation.refused"]
    assert refusals == [
        "keep refused: expired",
        "keep refused: you are no longer a sponsor of this guest",
        "keep refused: the guest account no longer exists",
    ], "genuine tokens' refusals are audited; forged and cut ones are not (anyone can send them)"
