"""`guestctl partners verify | retire`: did partners' people move to direct connect, and retiring the guest
accounts of those who did (docs/partners.md#verify, #retire).

Registered by shared/cli.py on `guestctl partners` (shared/cli_partners.py); each command calls one service
function and prints what it returns (tables for people, --json for scripts).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shared.cli import JsonFlag, _read_text, stdout
from shared.cli_partners import partners_app
from shared.errors import ExitCode

PEOPLE_SHOWN = 50


def _count(tally: dict[str, Any]) -> list[str]:
    from shared.partners.verify_rules import error_text

    mfa = tally["mfa"]
    return [
        f"{tally['direct_connect']:,} ({tally['direct_connect_failed']:,} failed)",
        f"{tally['guest']:,} ({tally['guest_failed']:,} failed)",
        f"{mfa.get('home', 0):,} / {mfa.get('here', 0):,} / {mfa.get('none', 0) + mfa.get('unknown', 0):,}",
        "; ".join(f"{error_text(code)} ×{n}" for code, n in tally["errors"].items()) or "—",
    ]


def _verify_tables(shown: dict[str, Any]) -> list[Table]:
    columns = ("direct connect", "guest", "MFA home / here / none or unknown", "failures")
    partners = Table(title=f"Sign-ins since {shown['since'][:10]}, per partner", title_justify="left")
    for column in ("partner", "tenant id", *columns, "days kept"):
        partners.add_column(column, overflow="fold")
    people = Table(title="Per person", title_justify="left")
    for column in ("partner", "person", *columns, "last direct connect"):
        people.add_column(column, overflow="fold")
    rows = 0
    for p in shown["partners"]:
        name = p["name"] or "(not in partners.tenants)"
        partners.add_row(name, p["tenant_id"], *_count(p), f"{len(p['days']):,}")
        for person in p["people"]:
            rows += 1
            if rows <= PEOPLE_SHOWN:
                people.add_row(name, person["person"], *_count(person), person["last_direct_connect"] or "—")
    return [partners, people] if rows else [partners]


@partners_app.command("verify")
def verify_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", min=1, max=30, help="Whole days of sign-ins to read (1-30).")] = 30,
    as_json: JsonFlag = False,
) -> None:
    """Report direct connect and guest sign-ins per partner and person, from the sign-in log (read-only)."""
    from shared.config import load_settings
    from shared.partners.verify import verify

    shown = asyncio.run(verify(load_settings(**ctx.obj), days=days)).to_json()
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    for table in _verify_tables(shown):
        stdout.print(table)
    people = sum(len(p["people"]) for p in shown["partners"])
    more = f" (the first {PEOPLE_SHOWN} shown; --json has all)" if people > PEOPLE_SHOWN else ""
    stdout.print(f"{shown['entries']:,} log entries read; {people:,} people{more}; day tallies kept", highlight=False)
    for note in shown["notes"]:
        stdout.print(f"note: {note}", highlight=False)


@partners_app.command("retire")
def retire_command(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Carry the plan out (default: only show it).")] = False,
    plan: Annotated[Path | None, typer.Option("--plan", help="With --apply: a plan file; else: write one.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Retire the guest accounts of Teams-only guests of named partners who moved to direct connect."""
    from shared.config import load_settings
    from shared.partners.retire_service import plan_file, retire

    settings = load_settings(**ctx.obj)
    text = None
    if apply and plan is not None:
        text = _read_text(plan, "plan", made_by="`guestctl partners retire --plan FILE`")
    done = asyncio.run(retire(settings, apply=apply, plan_text=text, plan_name=str(plan)))
    shown = done.to_json()
    if plan is not None and not apply:
        body = asyncio.run(_signed(settings, done.plan, plan_file))
        plan.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        _print_retirement(shown, plan if not apply else None)
    if done.failed():
        raise typer.Exit(int(ExitCode.PARTIAL))
    if shown["refused"] and not apply:
        raise typer.Exit(int(ExitCode.REFUSED))


async def _signed(settings: Any, plan: Any, plan_file: Any) -> dict[str, Any]:
    """The plan as its file holds it, signed by the state store's key."""
    from shared.store import open_state

    async with open_state(settings) as store:
        return await plan_file(store, plan)


def _print_retirement(shown: dict[str, Any], written: Path | None) -> None:
    title = f"Retirement plan {shown['plan_id']} (run id {shown['run_id']})"
    table = Table(title=title, title_justify="left")
    for column in ("action", "guest", "reason", *(("outcome", "detail") if shown["applied"] else ())):
        table.add_column(column, overflow="fold")
    results = {(r["action"], r["target_id"]): r for r in shown["results"]}
    for a in shown["actions"]:
        done = results.get((a["action"], a["target_id"]), {})
        extra = (done.get("outcome", "—"), done.get("detail", "")) if shown["applied"] else ()
        table.add_row(a["action"], a["guest"], a["reason"], *extra)
    stdout.print(table if shown["actions"] else f"{title}: no guest account to retire now", highlight=False)
    kept = "; ".join(f"{why}: {n}" for why, n in shown["kept"].items()) or "none"
    stdout.print(f"{shown['candidates']:,} guests of named partners; kept: {kept}", highlight=False)
    for note in shown["notes"]:
        stdout.print(f"note: {note}", highlight=False)
    if shown["refused"]:
        stdout.print(f"refused: {shown['refused']}", highlight=False)
    if shown["applied"]:
        outcomes = "  ".join(f"{k}: {v}" for k, v in shown["outcomes"].items()) or "nothing to do"
        stdout.print(f"{outcomes}\nundo with: guestctl partners rollback --run {shown['run_id']}", highlight=False)
    elif written is not None:
        stdout.print(f"plan written to {written}; apply it with: guestctl partners retire --apply --plan {written}")
