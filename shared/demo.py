"""`guestctl demo`: the whole life of guest accounts, end to end, against an emulated tenant.

Starts the Graph emulator in-process with its demo tenant, invites the example file, subscribes to user
changes, lets some guests redeem (the notifications arrive, are checked and queued, and the worker's delta
round records the redemptions), sends a reminder to the others, moves the emulator's clock forward, and
runs the stale-guest sweep twice (flag, then disable) — printing what happened and writing the plans,
results and audit log under GUESTCTL_OUT.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.config import Policy

# The same rows as examples/invitations.csv (a test keeps the two identical).
DEMO_INVITATIONS = "".join(
    line + "\n"
    for line in (
        "email,display_name,redirect_url,groups,sponsors,message,send_email",
        "ann.lee@fabrikam.com,Ann Lee,,Finance Partners,megan.bowen@contoso.com,,true",
        "raj.patel@northwindtraders.com,Raj Patel,https://myapps.microsoft.com,Project Phoenix;All Partners,"
        "adele.vance@contoso.com,,true",
        "sofia.costa@adventure-works.com,Sofia Costa,,Supplier Collaboration,nestor.wilke@contoso.com,,",
        "lucia.singh@fabrikam.com,Lucia Singh,,Project Phoenix,megan.bowen@contoso.com,,",
        "adele.vance@contoso.com,Adele Vance,,,,,",
        "tom.nguyen@gmail.com,Tom Nguyen,,,,,",
        "kim+test@fabrikam.com,Kim Test,,,,,",
        "ANN.LEE@fabrikam.com,Ann Lee again,,,,,",
        "omar.haddad@tailspintoys.com,Omar Haddad,,Board of Directors,,,",
    )
)
DEMO_POLICY = Policy.model_validate(
    {
        "invitations": {"denied_domains": ["gmail.com"], "reminders": [3, 7]},
        "stale": {"inactive_days": 90, "never_redeemed_days": 30, "disable_after_days": 14, "delete_after_days": 30},
        "safety": {"max_actions": 100, "max_percent": 90},
    }
)


def prepare_out(out: Path) -> Path:
    """The output folder, with any state of an earlier demo removed (each demo starts fresh)."""
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob("demo-state.db*"):
        leftover.unlink()
    return out


async def run_demo(out: Path, say: Callable[[str], None]) -> list[Path]:
    """Run the demo in `out` (see `prepare_out`); `say` prints a line. Returns the files written."""
    from emulator.seed import seed_tenant
    from emulator.testing import EmulatorServer
    from shared.graph import Budget, Graph, GraphOptions
    from shared.invitations import parse_rows, plan_and_apply
    from shared.store import open_store

    state = out / "demo-state.db"
    written: list[Path] = []

    def write(name: str, content: str) -> None:
        path = out / name
        path.write_text(content, encoding="utf-8")
        written.append(path)

    with EmulatorServer(seed_tenant("demo")) as emulator:
        control = emulator.control
        graph = Graph(
            GraphOptions(
                base_url=emulator.base_url,
                auth="emulator",
                budget=Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9),
            )
        )

        def now() -> datetime:
            return datetime.fromisoformat(control.clock()["now"].replace("Z", "+00:00"))

        say(f"Emulated tenant: {len(emulator.tenant.users)} users at {emulator.base_url}")
        async with open_store(str(state)) as store:
            rows = parse_rows(DEMO_INVITATIONS.encode(), name="examples/invitations.csv")
            run = await plan_and_apply(
                rows,
                graph,
                store,
                DEMO_POLICY,
                batch_id="demo",
                source="examples/invitations.csv",
                tenant_id=emulator.tenant.id,
                actor="guestctl demo",
                clock=now,
            )
            results = run.results or []
            say("\n1. Invited examples/invitations.csv:")
            for result in results:
                say(f"   row {result.row}: {result.email:<34} {result.result.value:<15} {result.reason}")
            write("invitations-results.json", json.dumps([r.to_json() for r in results], indent=2))
            emails = len(control.outbox(kind="invitation"))
            say(f"   {emails} invitation emails sent (Microsoft's); a rerun would send none.")

            invited = [r.user_id for r in results if r.result.value == "invited" and r.user_id]
            await _redemptions_step(emulator, graph, store, invited[:2], now, say)

            for step, days in (("3", 100), ("4", 15)):
                control.advance(days=days)
                await _sweep_step(graph, store, emulator.tenant.id, step, days, now(), say, write)

            audit = [entry async for entry in store.read_audit()]
            write("audit.jsonl", "".join(_audit_line(entry) for entry in audit))
            say(
                f"\n5. The audit log holds {len(audit)} tenant changes; undo a sweep with "
                "`guestctl restore --run <run id>` (against a real tenant)."
            )
        await graph.close()
    written.append(state)
    return written


async def _sweep_step(
    graph: Any,
    store: Any,
    tenant_id: str,
    step: str,
    days: int,
    moment: datetime,
    say: Callable[[str], None],
    write: Callable[[str, str], None],
) -> None:
    """One sweep of the demo: plan, show, keep the signed plan, apply it the way `guestctl sweep` does."""
    from shared.stale import plan_file_json, plan_sweep
    from shared.stale.service import result_json, run_plan

    sweep = await plan_sweep(graph, store, DEMO_POLICY, now=moment, scan_id=f"demo-{step}", tenant_id=tenant_id)
    counts = "  ".join(f"{k}: {v}" for k, v in sweep.counts.items() if v)
    kinds = Counter(action.kind.value for action in sweep.actions)
    say(f"\n{step}. {days} days later ({moment:%Y-%m-%d}), stale-guest sweep of {sweep.guests} guests:")
    say(f"   {counts}")
    planned = ", ".join(f"{kind} {count}" for kind, count in kinds.items()) or "nothing to do"
    say(f"   plan: {planned}" + (f" — REFUSED: {sweep.refused}" if sweep.refused else ""))
    write(f"sweep-plan-{step}.json", json.dumps(await plan_file_json(store, sweep), indent=2))
    if sweep.refused:
        return
    run = await run_plan(
        sweep, graph, store, DEMO_POLICY, tenant_id=tenant_id, actor="guestctl demo", clock=lambda: moment
    )
    done = ", ".join(f"{label}: {count}" for label, count in run.outcomes().items()) or "nothing"
    say(f"   applied as run {run.run_id}: {done}")
    write(f"sweep-results-{step}.json", json.dumps([result_json(r) for r in run.results], indent=2))


def _audit_line(entry: Any) -> str:
    at = entry.at.isoformat() if entry.at else None
    fields = {"at": at, "action": entry.action, "target": entry.target_id, "reason": entry.reason}
    return json.dumps({**fields, "run": entry.run_id}) + "\n"


async def _redemptions_step(
    emulator: Any, graph: Any, store: Any, redeeming: list[str], now: Callable[[], datetime], say: Callable[[str], None]
) -> None:
    """Redemptions arrive as change notifications; a reminder goes to those who have not redeemed."""
    import secrets

    from emulator.testing import WebhookReceiver
    from shared.notifications.inbox import sort_delivery
    from shared.notifications.service import handle_message_with
    from shared.notifications.subscriptions import Target, ensure
    from shared.redemptions.service import remind_with, sync_with

    secret = secrets.token_urlsafe(24)
    with WebhookReceiver() as receiver:  # stands in for POST /api/graph/notifications
        target = Target(receiver.url, receiver.url_for("lifecycle"), secret)
        subscription = await ensure(graph, store, target, now())
        first = await sync_with(graph, store, clock=now, actor="guestctl demo")
        say(
            f"\n2. Subscribed to user changes ({subscription.action}, expires {subscription.expires_at:%Y-%m-%d}); "
            f"first delta round tracked {first.counts['new']} guests."
        )
        for user_id in redeeming:
            emulator.control.redeem(user_id)
        emulator.control.wait_until_idle()
        queued = [
            m for d in receiver.deliveries for m in sort_delivery(json.dumps(d["payload"]).encode(), secret).messages
        ]
        recorded = Counter[str]()
        for message in queued:  # what the queue worker does with each message
            handled = await handle_message_with(graph, store, target, message, actor="guestctl demo", clock=now)
            recorded.update(handled.sync.counts if handled.sync else {})
        say(
            f"   {len(redeeming)} guests redeemed: {len(receiver.notifications)} notifications arrived, "
            f"{len(queued)} queue message(s); the delta round recorded {recorded['redeemed']} redemptions."
        )
    emulator.control.advance(days=3, minutes=5)
    reminded = await remind_with(graph, store, DEMO_POLICY, apply=True, actor="guestctl demo", clock=now)
    sent = [r for r in reminded.results or [] if r.outcome.value == "done"]
    say(f"   3 days later: {len(sent)} reminder(s) sent to the invited guests who have not redeemed.")
