"""Chaos (docs/reliability.md#chaos): the real flows against the emulator with Graph faults on, compared with
a fault-free run of the same inputs on an identical fresh tenant.

Each flow runs in-process through the service functions the CLI and the Functions app call, with our real
Graph client (pacer, retry, a short `GUESTCTL_GRAPH_TIMEOUT_SECONDS`) over HTTP and a SQLite store. A run
that ends with failures is run again, as the CLI's exit code asks an operator (or the queue a worker) to;
the number of runs is printed. Invariants: the final tenant and store state (ids, times and run ids
normalised) equal the fault-free run's; every invitation email and mail was sent exactly as often as
without faults (no duplicates, none lost).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.seed import seed_tenant
from emulator.tenant import Tenant
from emulator.testing import EmulatorServer
from shared.config import Policy
from shared.core.restore import happened
from shared.errors import ExitCode, GuestctlError
from shared.graph import Graph, GraphOptions, RetryPolicy
from shared.store import Store, open_store
from shared.store.registry import TABLES
from tests.reliability.figures import Figures, profile
from tests.support.graph import UNLIMITED

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SHORT = profile() == "short"
# The client's GUESTCTL_GRAPH_TIMEOUT_SECONDS in the chaos runs (a timeout costs that much); the emulator holds a
# `timeout` fault's answer twice as long, so the client always gives up first.
TIMEOUT_SECONDS = 0.5
MAX_RUNS = 10 if SHORT else 60  # still failing after this many runs: actions were lost
# The mix. Retry-After values are scaled (the emulator's time_scale) so a 429 costs 10 ms, not 1 s.
RATES = {"rate_429": 0.10, "rate_503": 0.05, "reset_rate": 0.02, "timeout_rate": 0.02, "drop_rate": 0.01}
# Short: small tenants make 100-300 requests a flow, too few for 1-2% to hit every kind; so those are raised.
SHORT_RATES = {**RATES, "reset_rate": 0.05, "timeout_rate": 0.04, "drop_rate": 0.04}
KINDS = ("429", "503", "reset", "timeout", "drop")

Memo = dict[str, Any]  # what one flow's runs keep between them (a plan made once, the stage reached)
Drive = Callable[[Graph, Store, Memo], Awaitable[bool]]  # one run; True when it finished without failures
Prepare = Callable[[EmulatorServer, Graph, Store], Awaitable[None]]  # fault-free setup before the runs


def chaos_graph(emulator: EmulatorServer) -> Graph:
    return Graph(
        GraphOptions(
            base_url=emulator.base_url,
            auth="emulator",
            budget=UNLIMITED,
            retry=RetryPolicy(budget_seconds=60, backoff_base=0.05),  # no Retry-After: 50 ms, 100 ms, …
            timeout_seconds=TIMEOUT_SECONDS,
        )
    )


# ---- normalised state ---------------------------------------------------------------------------------------
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX = re.compile(r"[0-9a-f]{12,}")
TOKEN = re.compile(r"\$(delta|skip)token=[^&\"' ]+")  # opaque: encodes the server's own state


def labels(tenant: Tenant) -> dict[str, str]:
    """Object id → a name that is the same in both runs (mail/UPN, group name)."""
    named = {u.id: f"user:{(u.mail or u.userPrincipalName).lower()}" for u in tenant.users.values()}
    named |= {d.user.id: f"user:{(d.user.mail or d.user.userPrincipalName).lower()}" for d in tenant.deleted.values()}
    named |= {g.id: f"group:{g.displayName}" for g in tenant.groups.values()}
    named |= {t.tenant_id: f"tenant:{t.display_name}" for t in tenant.external_tenants.values()}
    return named


def normalise(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {normalise(k, names): normalise(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, names) for v in value]
    if isinstance(value, str):
        text = TOKEN.sub(r"$\1token=<token>", value)
        text = UUID.sub(lambda m: names.get(m.group(0).lower(), "<id>"), text)
        return HEX.sub("<hex>", TIME.sub("<time>", text))
    return value


def tenant_state(tenant: Tenant) -> dict[str, Any]:
    names = labels(tenant)
    users = {
        names[u.id]: {
            "userType": u.userType,
            "accountEnabled": u.accountEnabled,
            "externalUserState": u.externalUserState,
            "displayName": u.displayName,
            "groups": sorted(g.displayName for g in tenant.groups.values() if u.id in g.members),
            "sponsors": sorted(names.get(s, s) for s in u.sponsors),
        }
        for u in tenant.users.values()
    }
    deleted = sorted(names[d.user.id] for d in tenant.deleted.values())
    partners = normalise(tenant.policy_partners, names)
    sent = Counter(f"{m['kind']} → {m['to'][0].lower()}" for m in tenant.outbox)
    return {"users": users, "deleted": deleted, "partners": partners, "sent": dict(sent)}


async def store_state(store: Store, names: dict[str, str]) -> dict[str, Any]:
    rows = {}
    for table in sorted(TABLES):
        if table in ("audit", "leases", "pacing"):
            continue
        async for record in store.query(table):
            key = normalise(f"{table}/{record.partition}/{record.row}", names)
            # `attempts` counts runs that worked on the record: more under faults by design
            rows[key] = normalise({k: v for k, v in record.data.items() if k != "attempts"}, names)
    # each change audited exactly once; its details may say it was confirmed after a lost answer. An attempt
    # Graph refused (a fault) is an entry and its `.failed`: compared is what went through, as restore sees it.
    standing = happened([e async for e in store.read_audit()])  # what restore would undo
    return {"rows": rows, "audit": dict(Counter(normalise(f"{e.action} {e.target_id}", names) for e in standing))}


# ---- one flow, twice -------------------------------------------------------------------------------------------
async def run_flow(
    emulator: EmulatorServer,
    tmp_path: Path,
    make_tenant: Callable[[], Tenant],
    drive: Drive,
    faults: dict | None,
    prepare: Prepare | None,
) -> tuple[dict[str, Any], Counter[str], int]:
    emulator.reset(make_tenant(), limits={"time_scale": 0.01})
    graph = chaos_graph(emulator)
    folder = tmp_path / ("chaos" if faults else "clean")
    folder.mkdir()
    runs = 0
    memo: Memo = {}
    try:
        async with open_store(str(folder / "state.db")) as store:
            if prepare is not None:
                await prepare(emulator, graph, store)
            if faults:
                emulator.control.set_faults(**faults, timeout_ms=2000 * TIMEOUT_SECONDS)
            while runs < MAX_RUNS:
                runs += 1
                try:
                    if await drive(graph, store, memo):
                        break
                except GuestctlError as error:  # the run stopped (exit 4, a queue message handed back): run again
                    if error.exit_code != ExitCode.UNAVAILABLE:
                        raise
            kinds = Counter(f["kind"] for f in emulator.control.injected_faults())
            emulator.state.faults.configure({})
            names = labels(emulator.tenant)
            state = {"tenant": tenant_state(emulator.tenant), "store": await store_state(store, names)}
    finally:
        await graph.close()
    return state, kinds, runs


# Differences that say how a result came about under faults, not what it is (the tenant state and the emails
# are compared exactly):
TOLERATED = (
    # an action a lost answer left unconfirmed, found done by the rerun
    re.compile(r"/detail: .* → done by the interrupted run$"),
)


def differences(clean: Any, chaos: Any, where: str = "") -> list[str]:
    if isinstance(clean, dict) and isinstance(chaos, dict):
        found = []
        for key in sorted(set(clean) | set(chaos), key=str):
            if key not in chaos:
                found.append(f"{where}/{key}: missing under faults")
            elif key not in clean:
                found.append(f"{where}/{key}: only under faults: {str(chaos[key])[:200]}")
            else:
                found += differences(clean[key], chaos[key], f"{where}/{key}")
        return found
    return [] if clean == chaos else [f"{where}: {str(clean)[:200]} → {str(chaos)[:200]}"]


async def check(
    flow: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    figures: Figures,
    make_tenant: Callable[[], Tenant],
    drive: Drive,
    seed: int,
    prepare: Prepare | None = None,
) -> None:
    rates = SHORT_RATES if SHORT else RATES
    clean, _, clean_runs = await run_flow(emulator, tmp_path, make_tenant, drive, None, prepare)
    chaos, kinds, runs = await run_flow(emulator, tmp_path, make_tenant, drive, {"seed": seed, **rates}, prepare)
    found = differences(clean, chaos)
    violations = [v for v in found if not any(t.search(v) for t in TOLERATED)]
    tolerated = len(found) - len(violations)
    if clean["tenant"] == tenant_state(make_tenant()):
        violations.append("the fault-free run changed nothing in the tenant: the flow tests nothing")
    if clean_runs != 1:
        violations.append(f"the fault-free run needed {clean_runs} runs")
    if runs == MAX_RUNS:
        violations.append(f"still failing after {MAX_RUNS} runs under faults")
    injected = sum(kinds.values())
    figures.add(flow, chaos_faults=injected, violations=len(violations))
    counts = ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS)
    outcome = f"{runs} run(s), {tolerated} tolerated difference(s), {len(violations)} violation(s)"
    print(f"\nchaos {flow}: {injected} faults ({counts}); {outcome}")
    assert violations == [], "\n".join(sorted(violations, key=lambda v: "audit" in v)[:12])
    missing = [kind for kind in KINDS if not kinds[kind]]
    if missing:  # which requests draw a fault depends on the order concurrent requests arrive in
        print(f"chaos {flow}: no {', '.join(missing)} fault this time")
    # Full: hundreds of requests a flow, so every kind is drawn; short (CI) must not fail on the draw's luck.
    assert SHORT or not missing, f"no {', '.join(missing)} fault was injected: raise the rates or change the seed"


# ---- the flows -------------------------------------------------------------------------------------------------
async def test_invitations(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    from shared.invitations import InvitationRow, apply_invitations, plan_rows
    from shared.invitations.apply import Mailer

    def tenant() -> Tenant:
        return seed_tenant(31, guests=20, members=15, now=NOW)  # the invited guests are extra

    sample = tenant()
    groups = sorted(g.displayName for g in sample.groups.values() if not g.is_dynamic)
    members = sorted(
        (u for u in sample.users.values() if u.userType == "Member" and u.mail and "#EXT#" not in u.userPrincipalName),
        key=lambda u: u.userPrincipalName,
    )
    sender = members[0].mail
    own = Policy.model_validate(
        {"invitations": {"sender_mailbox": sender, "message_template": "Hi {display_name}: {message} {redeem_url}"}}
    )
    rows = [
        InvitationRow(
            i + 1,
            f"chaos{i}@partner{i % 3}.example",
            display_name=f"Chaos {i}",
            groups=(groups[i % len(groups)],),
            sponsors=(members[i % len(members)].userPrincipalName,),
            message="Welcome" if i % 2 else "",
        )
        for i in range(12 if SHORT else 300)
    ]

    async def drive(graph: Graph, store: Store, memo: Memo) -> bool:
        plan = await plan_rows(rows, graph, own, batch_id="chaos-1", source="chaos.csv", tenant_id="t", now=NOW)
        results = await apply_invitations(plan, graph, store, mailer=Mailer(sender), actor="chaos")
        return all(r.result.value != "failed" for r in results)

    await check("invitations", emulator, tmp_path, figures, tenant, drive, seed=1)


async def test_sweep(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    """Flagged three weeks ago (fault-free); now planned once and applied until nothing fails: disables,
    unflags, sponsor notices."""
    from datetime import timedelta

    from shared.stale import apply_plan, exemptions_now, plan_sweep
    from shared.stale.apply import Outcome
    from shared.stale.service import run_plan
    from tests.support.stale import UNCAPPED

    then = NOW - timedelta(days=21)

    def tenant() -> Tenant:
        return seed_tenant(4, guests=40 if SHORT else 400, members=10 if SHORT else 40, now=NOW)

    async def flag(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
        flags = await plan_sweep(graph, store, UNCAPPED, now=then, scan_id="setup", tenant_id=None)
        exemptions = await exemptions_now(graph, UNCAPPED)
        await apply_plan(flags, graph, store, UNCAPPED, exemptions, actor="setup", clock=lambda: then)

    async def drive(graph: Graph, store: Store, memo: Memo) -> bool:
        if "plan" not in memo:
            memo["plan"] = await plan_sweep(graph, store, UNCAPPED, now=NOW, scan_id="chaos", tenant_id=None)
        run = await run_plan(memo["plan"], graph, store, UNCAPPED, tenant_id=None, actor="chaos", clock=lambda: NOW)
        return all(r.outcome is not Outcome.FAILED for r in run.results)

    await check("sweep", emulator, tmp_path, figures, tenant, drive, seed=2, prepare=flag)


async def test_redemptions(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    """Guests invited 3½ days ago (fault-free, tracked, one full sync); then some redeem, one is deleted,
    and the notification's work runs (a delta round) followed by the due reminders, until nothing fails."""
    from datetime import timedelta

    from shared.redemptions.effects import track_invited
    from shared.redemptions.service import remind_with, request_sync_with, sync_with

    count = 20 if SHORT else 200
    sender = "adele.vance@contoso.com"  # our own email: exactly once (Microsoft's is at most once, see the docs)
    own = {"sender_mailbox": sender, "message_template": "Still waiting for you: {redeem_url}"}
    policy = Policy.model_validate({"invitations": {"reminders": [3, 7], **own}})
    clock = lambda: NOW  # noqa: E731

    def tenant() -> Tenant:
        return seed_tenant(51, guests=5, members=5, now=NOW)

    async def invited(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
        ids = []
        for i in range(count):
            address = f"late{i:03d}@fabrikam.com"
            body = {"invitedUserEmailAddress": address, "inviteRedirectUrl": "https://myapps.microsoft.com"}
            answer = await graph.request("POST", "/invitations", json_body={**body, "sendInvitationMessage": False})
            ids.append(answer.json()["invitedUser"]["id"])
            await track_invited(store, ids[-1], address, "inv-old", NOW - timedelta(days=3.5))
        await sync_with(graph, store, full=True, clock=clock, actor="setup")
        for user_id in ids[::3]:
            emulator.control.redeem(user_id)
        emulator.tenant.soft_delete_user(emulator.tenant.users[ids[1]])

    async def drive(graph: Graph, store: Store, memo: Memo) -> bool:
        if not memo.get("synced"):
            await request_sync_with(graph, store, clock=clock, actor="notification")
            memo["synced"] = True
        run = await remind_with(graph, store, policy, apply=True, actor="chaos", clock=clock)
        return all(r.outcome.value != "failed" for r in run.results or [])

    await check("redemptions", emulator, tmp_path, figures, tenant, drive, seed=3, prepare=invited)


async def test_offboarding(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    """HR terminations due now through the engine's `handle_event` (the hr-events worker's call), each
    delivered again until it is done: guests (contractors) and members who sponsor guests leave."""
    from shared.offboarding.service import handle_event
    from tests.support.offboarding import POLICY, hr_event

    def tenant() -> Tenant:
        return seed_tenant(61, guests=40 if SHORT else 300, members=10 if SHORT else 40, now=NOW)

    sample = tenant()
    guests = sorted(u.mail for u in sample.users.values() if u.userType == "Guest" and u.mail)
    sponsors = Counter(s for u in sample.users.values() for s in u.sponsors)
    leaving_members = [sample.users[s].mail for s, _ in sponsors.most_common(2 if SHORT else 10)]
    leaving = guests[:: 8 if SHORT else 10] + leaving_members
    events = [
        (f"e{i}", hr_event("worker.terminated", {"email": mail}, NOW.date(), event=f"T{i}"))
        for i, mail in enumerate(leaving)
    ]

    async def drive(graph: Graph, store: Store, memo: Memo) -> bool:
        done = memo.setdefault("done", set())
        for event_id, event in events:
            if event_id in done:
                continue
            result = await handle_event(
                graph, store, POLICY, event, event_id=event_id, replayable=False, clock=lambda: NOW
            )
            if result.status in ("done", "review"):
                done.add(event_id)
        return len(done) == len(events)

    await check("offboarding", emulator, tmp_path, figures, tenant, drive, seed=4)


async def test_partners(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    """Trust for partner organisations (new ones by domain, ones configured by hand patched) applied until
    nothing fails, then rolled back until nothing fails: the tenant ends as it began. Graph holds the whole
    policy in 25 KB (about 40 partners like these), so the full profile goes through its partners in waves:
    each wave's hand-configured partners appear before it and are removed by hand after it (but the last's)."""
    from emulator.policy import new_partner
    from emulator.tenant import ExternalTenant
    from shared.partners.trust_service import apply_trust, plan_trust, rollback_trust

    count, size = (16, 16) if SHORT else (125, 25)
    ids = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(count)]
    waves = [range(start, min(start + size, count)) for start in range(0, count, size)]

    def tenant() -> Tenant:
        made = seed_tenant(71, guests=5, members=5, now=NOW)
        for n, tenant_id in enumerate(ids):
            made.add_external_tenant(ExternalTenant(tenant_id, f"Partner {n}", f"p{n}.example", (f"p{n}.example",)))
        return made

    trust = {"isMfaAccepted": False, "isCompliantDeviceAccepted": True, "isHybridAzureADJoinedDeviceAccepted": False}

    def named(n: int) -> dict[str, Any]:
        if n % 2:
            return {
                "tenant": f"p{n}.example",
                "name": f"Partner {n}",
                "inbound": {"users": "all"},
                "trust": {"mfa": True},
            }
        return {
            "tenant": ids[n],
            "inbound": {"groups": [ids[1]]},
            "trust": {"mfa": True},
            "outbound": {"groups": [ids[0]]},
        }

    policies = [Policy.model_validate({"partners": {"tenants": [named(n) for n in wave]}}) for wave in waves]

    def by_hand(wave: range, configured: bool) -> None:
        """Configured already (the policy patches them), or removed by hand after the wave."""
        for tenant_id in [ids[n] for n in wave if n % 2 == 0]:
            if configured:
                emulator.tenant.policy_partners[tenant_id] = {**new_partner(tenant_id), "inboundTrust": dict(trust)}
            else:
                del emulator.tenant.policy_partners[tenant_id]

    async def drive(graph: Graph, store: Store, memo: Memo) -> bool:
        while (wave := memo.setdefault("wave", 0)) < len(waves):
            if "plan" not in memo:
                by_hand(waves[wave], configured=True)
                memo["plan"] = await plan_trust(graph, policies[wave], tenant_id=None, clock=lambda: NOW)
            if "run" not in memo:
                applied = await apply_trust(memo["plan"], graph, store, policies[wave], tenant_id=None, actor="chaos",
                                            clock=lambda: NOW)  # fmt: skip
                if applied.failed():
                    return False
                memo["run"] = applied.run_id
            undone = await rollback_trust(graph, store, memo["run"], actor="chaos")
            if any(r.outcome.value == "failed" for r in undone):
                return False
            if wave + 1 < len(waves):
                by_hand(waves[wave], configured=False)
            memo["wave"] = wave + 1
            del memo["plan"], memo["run"]
        return True

    await check("partners", emulator, tmp_path, figures, tenant, drive, seed=5)
