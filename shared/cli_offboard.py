"""`guestctl offboard`: the offboarding plan for one worker by hand; applied only with --apply.

`status` and `list` are kept as words for subcommands (`offboard status EVENT_ID`, `offboard list`): a first
argument that is one of them is dispatched through `SUBCOMMANDS`, so adding one is one entry there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.table import Table

from shared.cli import JsonFlag, app, stdout
from shared.errors import ExitCode, InputError

SUBCOMMANDS: dict[str, Callable[[typer.Context, list[str], bool], None]] = {}  # "status", "list": added later


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
    as_json: JsonFlag = False,
) -> None:
    """Plan (and with --apply, carry out) what a worker's leaving means: guest disabled, sponsors moved."""
    from shared.config import load_settings
    from shared.offboarding.service import apply_offboarding, plan_offboarding_for

    if worker in SUBCOMMANDS:
        SUBCOMMANDS[worker](ctx, rest or [], as_json)
        return
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
