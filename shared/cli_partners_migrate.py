"""`guestctl partners accept | migrate`: the partner's side of direct connect, and moving people into shared
channels by their home identity (docs/partners.md). Each command calls one service function and prints what
it returns (a table for people, --json for scripts); both plan by default and change things only with --apply.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared.cli import JsonFlag, _check_out_file, _read_text, stdout
from shared.cli_partners import partners_app
from shared.errors import ExitCode, InputError


def partners_accept(
    ctx: typer.Context,
    resource_tenant: Annotated[str, typer.Option("--resource-tenant", help="The inviting organisation's tenant id.")],
    out: Annotated[Path, typer.Option("--out", help="Write the home ids of the users in scope to this JSON file.")],
    users: Annotated[str | None, typer.Option("--users", help='"all": every member user of this tenant.')] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="A group of this tenant (repeat for more).")
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Change this tenant's outbound setting (default: plan).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run in the PARTNER's tenant: allow direct connect outbound to the resource tenant; export home ids."""
    from pydantic import ValidationError

    from shared.config import DirectConnectScope, load_settings
    from shared.partners.accept_service import accept_partner
    from shared.partners.trust import describe

    if users not in (None, "all"):
        raise InputError(f'--users {users[:40]!r}: the only value is "all"', hint="or name groups with --group")
    if users and group:
        raise InputError('--users all and --group exclude each other: "all" already includes every group')
    try:
        scope = DirectConnectScope(users="all") if not group else DirectConnectScope(groups=list(group))
    except ValidationError as error:  # pydantic's text ends in a link: say which --group and why, on one line
        problem = error.errors()[0]
        given = f" {str(problem['input'])[:80]!r}" if problem["loc"] else ""
        why = problem["msg"].removeprefix("Value error, ")
        raise InputError(f"--group{given}: {why}", hint="give group object ids") from None
    _check_out_file(out)
    accepted = asyncio.run(accept_partner(load_settings(**ctx.obj), resource_tenant, scope, apply=apply))
    out.write_text(json.dumps(accepted.ids.to_json(), indent=2) + "\n", encoding="utf-8")
    shown = accepted.to_json()
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        action = shown["action"] if shown["action"] != "none" else "none: already as wanted"
        stdout.print(f"b2bDirectConnectOutbound for {accepted.plan.tenant_id}: {action}", highlight=False)
        for change in accepted.plan.changes:
            stdout.print(f"  {change.property}: {describe(change.from_)} → {describe(change.to)}", highlight=False)
        for result in shown["applied"] or []:
            stdout.print(f"run {accepted.run_id}: {result['outcome']}: {result['detail']}", highlight=False)
        if not apply and accepted.plan.kind is not None:
            stdout.print("planned only: run again with --apply to change this tenant's setting", highlight=False)
        stdout.print(f"{shown['users']:,} users in scope written to {out}: send it to them", highlight=False)
    if accepted.failed():
        raise typer.Exit(int(ExitCode.PARTIAL))


def partners_migrate(
    ctx: typer.Context,
    ids: Annotated[
        Path | None, typer.Option("--ids", help="The id file the partner's `guestctl partners accept` wrote.")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Instead of --ids: read the partner's home ids from their tenant by our multi-tenant app "
            "(home_ids: app); their tenant id or domain as partners.tenants names it.",
        ),
    ] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Add the memberships (default: plan only).")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the plan (and results) as JSON.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add the partner's Teams-only guests to the mapped shared channels by their home identity."""
    from shared.config import load_settings
    from shared.partners.migrate_service import migrate_partner

    if (ids is None) == (tenant is None):
        raise InputError(
            "give exactly one source of home ids: --ids FILE (the partner's id file) or --tenant TENANT (read by "
            "our app, for a partner with home_ids: app)",
            hint="see `guestctl partners migrate --help`; nothing was changed",
        )
    text = None
    if ids is not None:
        text = _read_text(ids, "id file", made_by="`guestctl partners accept --out`")
    if out is not None:
        _check_out_file(out)
    settings = load_settings(**ctx.obj)
    migration = asyncio.run(migrate_partner(settings, text, name=str(ids), tenant=tenant, apply=apply))
    shown = migration.to_json()
    if out is not None:
        out.write_text(json.dumps(shown, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        _print_migration(shown, apply)
    if migration.failed():
        raise typer.Exit(int(ExitCode.PARTIAL))
    if shown["refused"]:  # planned only: --apply refuses with RefusedError before anything is written
        raise typer.Exit(int(ExitCode.REFUSED))


def _print_migration(shown: dict, apply: bool) -> None:
    table = Table(title=f"Migration of {shown['partner']} ({shown['partner_tenant']})", title_justify="left")
    for column in ("guest", "home id", "status", "shared channels", "reason"):
        table.add_column(column, overflow="fold")
    for person in shown["people"]:
        table.add_row(
            person["mail"] or person["guest_id"],
            person["home_id"] or "—",
            person["status"],
            ", ".join(person["channels"]),
            person["reason"],
        )
    stdout.print(table)
    for note in shown["notes"]:
        stdout.print(f"note: {note}", highlight=False, markup=False)
    stdout.print("  ".join(f"{k}: {v}" for k, v in shown["counts"].items()), highlight=False)
    if not apply:
        for create in shown["creates"]:
            stdout.print(f"create shared channel {create['channel']!r} in team {create['team']}", highlight=False)
        if shown["refused"]:
            stdout.print(f"refused: {shown['refused']}", highlight=False)
            return
        stdout.print(f"{len(shown['actions'])} memberships to add; add them with --apply", highlight=False)
        return
    for row in shown["results"]:
        if row["action"] != "add":  # a channel to create: always said
            stdout.print(f"{row['outcome']}: {row['detail']}", highlight=False)
        elif row["outcome"] != "done":
            stdout.print(f"{row['mail']} → {row['channel']}: {row['outcome']}: {row['detail']}", highlight=False)
    counts = "  ".join(f"{k}: {v}" for k, v in shown["outcomes"].items()) or "nothing to add"
    stdout.print(f"Run {shown['run_id']} {counts}", highlight=False)
    stdout.print(f"undo with: guestctl partners rollback --run {shown['run_id']}", highlight=False)


partners_app.command("accept")(partners_accept)
partners_app.command("migrate")(partners_migrate)
