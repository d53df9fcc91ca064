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
from shared.errors import ExitCode, GuestctlError
from shared.graph import Graph, GraphOptions, RetryPolicy
from shared.store import Store, open_store
from shared.store.registry import TABLES
from tests.reliability.figures import Figures, profile
from tests.support.graph import UNLIMITED

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TIMEOUT_SECONDS = 1.0  # the client's GUESTCTL_GRAPH_TIMEOUT_SECONDS in the chaos runs: a timeout costs ~1 s
MAX_RUNS = 10 if profile() == "short" else 60  # still failing after this many runs: actions were lost
# The mix. Retry-After values are scaled (the emulator's time_scale) so a 429 costs 10 ms, not 1 s.
RATES = {"rate_429": 0.10, "rate_503": 0.05, "reset_rate": 0.02, "timeout_rate": 0.02, "drop_rate": 0.01}
# Short: small tenants make ~100 requests a flow, too few for 1-2% to hit every kind; so those are raised.
SHORT_RATES = {**RATES, "reset_rate": 0.05, "timeout_rate": 0.04, "drop_rate": 0.04}
GUESTS = 20 if profile() == "short" else 300
KINDS = ("429", "503", "reset", "timeout", "drop")

Drive = Callable[[Graph, Store], Awaitable[bool]]  # one run of the flow; True when it finished without failures


def chaos_graph(emulator: EmulatorServer) -> Graph:
    return Graph(
        GraphOptions(
            base_url=emulator.base_url,
            auth="emulator",
            budget=UNLIMITED,
            retry=RetryPolicy(budget_seconds=60),
            timeout_seconds=TIMEOUT_SECONDS,
        )
    )


# ---- normalised state ---------------------------------------------------------------------------------------
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX = re.compile(r"[0-9a-f]{12,}")


def labels(tenant: Tenant) -> dict[str, str]:
    """Object id → a name that is the same in both runs (mail/UPN, group name)."""
    named = {u.id: f"user:{(u.mail or u.userPrincipalName).lower()}" for u in tenant.users.values()}
    named |= {d.user.id: f"user:{(d.user.mail or d.user.userPrincipalName).lower()}" for d in tenant.deleted.values()}
    named |= {g.id: f"group:{g.displayName}" for g in tenant.groups.values()}
    return named


def normalise(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {normalise(k, names): normalise(v, names) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, names) for v in value]
    if isinstance(value, str):
        text = UUID.sub(lambda m: names.get(m.group(0).lower(), "<id>"), value)
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
    # each change audited exactly once; its details may say it was confirmed after a lost answer
    audit = Counter([normalise(f"{e.action} {e.target_id}", names) async for e in store.read_audit()])
    return {"rows": rows, "audit": dict(audit)}


# ---- one flow, twice -------------------------------------------------------------------------------------------
async def run_flow(
    emulator: EmulatorServer, tmp_path: Path, make_tenant: Callable[[], Tenant], drive: Drive, faults: dict | None
) -> tuple[dict[str, Any], Counter[str], int]:
    emulator.reset(make_tenant(), limits={"time_scale": 0.01})
    if faults:
        emulator.control.set_faults(**faults)
    graph = chaos_graph(emulator)
    folder = tmp_path / ("chaos" if faults else "clean")
    folder.mkdir()
    runs = 0
    try:
        async with open_store(str(folder / "state.db")) as store:
            while runs < MAX_RUNS:
                runs += 1
                try:
                    if await drive(graph, store):
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
) -> None:
    rates = SHORT_RATES if profile() == "short" else RATES
    clean, _, clean_runs = await run_flow(emulator, tmp_path, make_tenant, drive, None)
    chaos, kinds, runs = await run_flow(emulator, tmp_path, make_tenant, drive, {"seed": seed, **rates})
    violations = differences(clean, chaos)
    if clean_runs != 1:
        violations.append(f"the fault-free run needed {clean_runs} runs")
    if runs == MAX_RUNS:
        violations.append(f"still failing after {MAX_RUNS} runs under faults")
    injected = sum(kinds.values())
    figures.add(flow, chaos_faults=injected, violations=len(violations))
    counts = ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS)
    print(f"\nchaos {flow}: {injected} faults ({counts}); {runs} run(s); {len(violations)} violations")
    assert violations == [], "\n".join(sorted(violations, key=lambda v: "audit" in v)[:12])
    missing = [kind for kind in KINDS if not kinds[kind]]
    assert not missing, f"no {', '.join(missing)} fault was injected: raise the rates or change the seed"


# ---- the flows -------------------------------------------------------------------------------------------------
async def test_invitations(emulator: EmulatorServer, tmp_path: Path, figures: Figures) -> None:
    from shared.invitations import InvitationRow, apply_invitations, plan_rows
    from shared.invitations.apply import Mailer

    def tenant() -> Tenant:
        return seed_tenant(31, guests=20, members=15, now=NOW)

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
        for i in range(GUESTS)
    ]

    async def drive(graph: Graph, store: Store) -> bool:
        plan = await plan_rows(rows, graph, own, batch_id="chaos-1", source="chaos.csv", tenant_id="t", now=NOW)
        results = await apply_invitations(plan, graph, store, mailer=Mailer(sender), actor="chaos")
        return all(r.result.value != "failed" for r in results)

    await check("invitations", emulator, tmp_path, figures, tenant, drive, seed=1)
