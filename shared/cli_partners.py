"""`guestctl partners …`: moving partners from guest accounts to B2B direct connect (docs/partners.md).

Registered on the main app by shared/cli.py; each command calls one service function and prints what it
returns (a table for people, --json for scripts).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shared.cli import JsonFlag, _check_out_file, app, stdout

partners_app = typer.Typer(
    help="Partner organisations and B2B direct connect: discover, plan, apply, instructions, accept, migrate, "
    "verify, retire, rollback.",
    no_args_is_help=True,
)
app.add_typer(partners_app, name="partners")


@partners_app.command("discover")
def discover_command(
    ctx: typer.Context,
    min_guests: Annotated[
        int, typer.Option("--min-guests", min=1, help="Only partners with at least this many guests.")
    ] = 1,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the discovery as JSON to this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Group guests by home organisation and rank partners for B2B direct connect (read-only)."""
    from shared.config import load_settings
    from shared.partners.service import discover

    if out is not None:
        _check_out_file(out)
    found = asyncio.run(discover(load_settings(**ctx.obj), min_guests=min_guests))
    shown = found.to_json()
    if out is not None:
        out.write_text(json.dumps(shown, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    stdout.print(_table(shown["partners"]))
    stdout.print(
        f"{shown['guests']:,} guests, {shown['domains']:,} domains looked up "
        f"({shown['tenant_lookups']:,} from Graph, {shown['tenant_lookups_cached']:,} from the cache); "
        f"sign-ins of the last {shown['sign_in_days']} days",
        highlight=False,
    )
    for note in shown["notes"]:
        stdout.print(f"note: {note}", highlight=False)
    if out is not None:
        stdout.print(f"written to {out}", highlight=False)


def _table(partners: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Partners ({len(partners)})", title_justify="left")
    for column in (
        "tenant",
        "name",
        "domains",
        "guests",
        "Teams-only",
        "active 90d",
        "direct connect",
        "recommendation",
    ):
        table.add_column(column)
    for p in partners:
        dc = p["direct_connect"]
        state = (
            "—"
            if dc is None
            else f"in {dc['inbound']} / out {dc['outbound']}" + (" (partner)" if dc["explicit"] else "")
        )
        table.add_row(
            p["tenant_id"] or "—",
            p["display_name"],
            ", ".join(p["domains"]),
            f"{p['guests']:,}",
            f"{p['teams_only']:,}" if p["uses"] is not None else "—",
            f"{p['active_90_days']:,}",
            state,
            f"{p['recommendation']}: " + "; ".join(p["reasons"]),
        )
    return table
