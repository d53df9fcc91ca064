"""`guestctl offboard`: the offboarding plan for one worker by hand (applied only with --apply), and the HR
events the Functions app received: `offboard status EVENT_ID`, `offboard list [--pending]`.

`status` and `list` are words, not workers: a first argument that is one of them is dispatched through
`SUBCOMMANDS` (a worker is an address, a UPN or an object id, never one of these words).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shared.cli import JsonFlag, app, stdout
from shared.errors import ExitCode, InputError

if TYPE_CHECKING:
    from shared.offboarding.inbox import EventStatus

Subcommand = Callable[[typer.Context, list[str], bool, bool], None]  # (ctx, arguments, --json, --pending)


def effective_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise InputError(f"--effective: not a date (got {text[:40]!r})", hint="write it as YYYY-MM-DD (UTC)") from None


@app.command("offboard")
def offboard_command(
    ctx: typer.Context,
    worker: Annotated[str, typer.Argument(metavar="EMAIL|UPN|ID", help="The leaving worker.")],
    rest: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    effective: Annotated[
        str | None, typer.Option("--effective", metavar="DATE", help="YYYY-MM-DD (UTC); default now.")
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Carry the plan out (each action re-checked).")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="With `list`: only events not acted on yet.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Plan (and with --apply, carry out) what a worker's leaving means: guest disabled, sponsors moved.

    `guestctl offboard status EVENT_ID` shows one HR event the app received; `guestctl offboard list
    [--pending]` lists them (earliest due first)."""
    from shared.config import load_settings
    from shared.offboarding.service import apply_offboarding, plan_offboarding_for

    if worker in SUBCOMMANDS:
        if apply or effective:
            raise InputError(f"offboard {worker} takes no --apply or --effective", hint="see guestctl offboard --help")
        SUBCOMMANDS[worker](ctx, rest or [], as_json, pending)
        return
    if pending:
        raise InputError("--pending goes with `offboard list`", hint="guestctl offboard list --pending")
    if rest:
        raise InputError(f"offboard takes one worker (got {len(rest) + 1})", hint="name one EMAIL, UPN or object id")
    settings = load_settings(**ctx.obj)
    when = effective_of(effective)
    plan = asyncio.run(plan_offboarding_for(settings, worker, when))
    result = asyncio.run(apply_offboarding(settings, plan)) if apply and not plan.review else None
    if as_json:
        print(
            json.dumps({"plan": plan.to_json(), "result": result.to_json() if result else None}, indent=2, default=str)
        )
    else:
        stdout.print(
            f"run {plan.run_id}: {plan.worker or plan.identifier[1]} ({plan.kind or 'not found'})", highlight=False
        )
        if plan.review:
            stdout.print(f"for review, no action: {plan.review}", highlight=False)
        table = Table("action", "target", "other", "reason" if result is None else "outcome")
        outcomes = {r.action.key: f"{r.outcome.value}: {r.detail}" for r in (result.results if result else [])}
        for action in plan.actions:
            shown = (
                outcomes.get(action.key)
                if result
                else (action.evidence.get("group") or action.evidence.get("guest") or "")
            )
            table.add_row(action.kind.value, action.target_id, action.other_id, str(shown or action.reason))
        if plan.actions:
            stdout.print(table)
        for note in plan.notes:
            stdout.print(f"note: {note}", highlight=False)
        if plan.actions and result is None:
            stdout.print("plan only: nothing was changed (add --apply to carry it out)")
    if result is not None and result.status == "partial":
        raise typer.Exit(int(ExitCode.PARTIAL))


def event_status_command(ctx: typer.Context, arguments: list[str], as_json: bool, pending: bool) -> None:
    """`offboard status EVENT_ID`: one received HR event, its status and outcome (exit 2 if unknown)."""
    from shared.config import load_settings
    from shared.offboarding.inbox import event_status
    from shared.store import open_state

    if len(arguments) != 1 or pending:
        raise InputError("offboard status takes one event id", hint="guestctl offboard status hr-0123456789abcdef")

    async def read() -> EventStatus:
        async with open_state(load_settings(**ctx.obj)) as store:
            return await event_status(store, arguments[0])

    found = asyncio.run(read())
    if as_json:
        print(json.dumps(found.to_json(), indent=2))
        return
    for name, value in found.to_json().items():
        if value not in (None, {}, ""):
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
            stdout.print(f"{name}: {shown}", highlight=False)


def event_list_command(ctx: typer.Context, arguments: list[str], as_json: bool, pending: bool) -> None:
    """`offboard list [--pending]`: the received HR events, earliest due first."""
    from shared.config import load_settings
    from shared.offboarding.inbox import list_events
    from shared.store import open_state

    if arguments:
        raise InputError("offboard list takes no arguments", hint="guestctl offboard list [--pending] [--json]")

    async def read() -> list[EventStatus]:
        async with open_state(load_settings(**ctx.obj)) as store:
            return await list_events(store, pending_only=pending)

    events = asyncio.run(read())
    if as_json:
        print(json.dumps([event.to_json() for event in events], indent=2))
        return
    if not events:
        stdout.print("no pending HR events" if pending else "no HR events received")
        return
    table = Table("type", "worker", "due", "status", "outcome")
    table.add_column("id", no_wrap=True, min_width=19)  # whole: it is what `offboard status` takes
    for event in events:
        worker = ", ".join(event.worker.values())
        table.add_row(event.type, worker, event.due_at[:16], event.status, event.outcome or "", event.id)
    stdout.print(table)


SUBCOMMANDS: dict[str, Subcommand] = {"status": event_status_command, "list": event_list_command}
