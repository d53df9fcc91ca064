"""`guestctl attest list | grant | revoke`: the guests kept from stale-guest sweeps, for the identity team
(docs/attestation.md). Sponsors keep guests through the links in their notice; these commands show what they
kept, keep a guest on someone's word (audited with who asked), and remove a keep. Registered by shared/cli.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from shared.cli import JsonFlag, app, stdout
from shared.errors import InputError

attest_app = typer.Typer(
    help="Guests kept from stale-guest sweeps: by their sponsors' answers or by the identity team "
    "(docs/attestation.md).",
    no_args_is_help=True,
)
app.add_typer(attest_app, name="attest")

Guest = Annotated[str, typer.Argument(metavar="GUEST", help="The guest's object id or userPrincipalName.")]
By = Annotated[
    str | None,
    typer.Option("--by", metavar="NAME", help="Who asks (recorded in the audit log); default: your login name."),
]


@attest_app.command("list")
def list_command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Guests kept now: who, by whom, until when (soonest to end first)."""
    from shared.attestation.service import list_attestations
    from shared.config import load_settings

    kept = asyncio.run(list_attestations(load_settings(**ctx.obj)))
    if as_json:
        print(json.dumps([k.to_json() for k in kept], indent=2))
        return
    if not kept:
        stdout.print("no guest is kept now")
        return
    table = Table("guest", "kept by", "until", "how", "since")
    for k in kept:
        table.add_row(k.guest or k.guest_id, k.by, f"{k.until:%Y-%m-%d}", k.how, f"{k.at:%Y-%m-%d}")
    stdout.print(table)


@attest_app.command("grant")
def grant_command(
    ctx: typer.Context,
    guest: Guest,
    until: Annotated[str, typer.Option("--until", metavar="DATE", help="YYYY-MM-DD: kept to the end of this day.")],
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Keep GUEST until DATE: the sweep leaves them alone until then (replaces an earlier keep)."""
    from shared.attestation.service import grant, who_asks
    from shared.config import load_settings

    try:
        day = date.fromisoformat(until)
    except ValueError:
        raise InputError(f"--until: not a date (got {until[:40]!r})", hint="write it as YYYY-MM-DD") from None
    kept = asyncio.run(grant(load_settings(**ctx.obj), guest, day, by=who_asks(by)))
    if as_json:
        print(json.dumps(kept.to_json(), indent=2))
        return
    stdout.print(f"kept {kept.guest} until {kept.until:%Y-%m-%d} (by {kept.by})", highlight=False)


@attest_app.command("revoke")
def revoke_command(ctx: typer.Context, guest: Guest, by: By = None, as_json: JsonFlag = False) -> None:
    """Remove GUEST's keep: the next sweep judges them like any other guest (exit 2 if none)."""
    from shared.attestation.service import revoke, who_asks
    from shared.config import load_settings

    removed = asyncio.run(revoke(load_settings(**ctx.obj), guest, by=who_asks(by)))
    if as_json:
        print(json.dumps(removed.to_json(), indent=2))
        return
    shown = removed.guest or removed.guest_id
    stdout.print(f"revoked: {shown} was kept by {removed.by} until {removed.until:%Y-%m-%d}", highlight=False)
