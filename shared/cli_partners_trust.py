"""`guestctl partners plan | apply | rollback | instructions`: B2B direct connect trust, on the command line.

Registered by shared/cli.py; each command calls one function of `shared.partners.trust_service` and prints
what it returns (a table for people, --json for scripts). The commands join `guestctl partners`, the group
shared/cli_partners.py defines (discover).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared.cli import JsonFlag, _read_text, stdout
from shared.cli_partners import partners_app
from shared.errors import ExitCode, InputError, RefusedError


def _write(path: Path, text: str, what: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputError(
            f"{path}: cannot write the {what}: {error.strerror or error}", hint="choose another --out"
        ) from None


def partners_plan(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Write the signed plan to this JSON file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Plan the cross-tenant settings of the partners the policy names (partners.tenants). Changes nothing."""
    from shared.config import load_settings
    from shared.partners.trust import describe
    from shared.partners.trust_service import plan_partners

    planned = asyncio.run(plan_partners(load_settings(**ctx.obj)))
    plan = planned.plan
    if as_json:
        print(json.dumps(planned.file, indent=2))
    else:
        stdout.print(f"Partners plan {plan.digest()} (run id {planned.run_id})", highlight=False)
        stdout.print(
            f"policy size: {plan.size_before:,} → {plan.size_after:,} bytes of 25,600 (25 KB)", highlight=False
        )
        for note in plan.notes:
            stdout.print(f"note: {note}", highlight=False, markup=False)
        table = Table(title="Changes", title_justify="left")
        for column in ("partner", "action", "property", "from", "to"):
            table.add_column(column, overflow="fold")
        for partner in plan.partners:
            action = partner.kind.value if partner.kind else "none: as wanted"
            who = f"{partner.label}\n{partner.tenant_id}"
            if not partner.changes:
                table.add_row(who, action, "", "", "")
            for index, change in enumerate(partner.changes):
                shown = (who, action) if index == 0 else ("", "")
                table.add_row(*shown, change.property, describe(change.from_), describe(change.to))
        stdout.print(table)
    if plan.refused:
        raise RefusedError(f"the plan is refused: {plan.refused}", hint="nothing was written")
    if out is not None:
        _write(out, json.dumps(planned.file, indent=2), "plan")
        if not as_json:
            stdout.print(f"plan written to {out}; apply it with: guestctl partners apply --plan {out}", highlight=False)


def partners_apply(
    ctx: typer.Context,
    plan_file: Annotated[Path, typer.Option("--plan", help="The plan `guestctl partners plan --out` wrote.")],
    as_json: JsonFlag = False,
) -> None:
    """Create or patch the partner configurations of a plan, each re-read first; a rerun continues the run."""
    from shared.config import load_settings
    from shared.partners.trust_service import apply_partners

    text = _read_text(plan_file, "plan", made_by="`guestctl partners plan --out`")
    run = asyncio.run(apply_partners(load_settings(**ctx.obj), text, name=str(plan_file)))
    shown = run.to_json()
    if as_json:
        print(json.dumps(shown, indent=2))
    else:
        title = f"Run {run.run_id} (undo with: guestctl partners rollback --run {run.run_id})"
        table = Table(title=title, title_justify="left")
        for column in ("partner", "tenant id", "action", "outcome", "detail"):
            table.add_column(column, overflow="fold")
        for row in shown["partners"]:
            table.add_row(row["label"], row["tenant_id"], row["action"], row["outcome"], row["detail"])
        if shown["partners"]:
            stdout.print(table)
        stdout.print("  ".join(f"{k}: {v}" for k, v in shown["outcomes"].items()) or "nothing to do", highlight=False)
    if run.failed():
        raise typer.Exit(int(ExitCode.PARTIAL))


def partners_rollback(
    ctx: typer.Context,
    run: Annotated[
        str, typer.Option("--run", help="The run id `partners apply`, `accept`, `migrate` or `retire --apply` printed.")
    ],
) -> None:
    """Undo a partners run: settings put back, memberships a migration added removed, retired accounts restored."""
    from shared.config import load_settings
    from shared.partners.trust_service import rollback_partners

    results = asyncio.run(rollback_partners(load_settings(**ctx.obj), run))
    for result in results:
        stdout.print(result.line(), highlight=False, markup=False)
    outcomes = Counter(result.outcome.value for result in results)
    stdout.print("  ".join(f"{k}: {v}" for k, v in outcomes.items()) or "nothing to undo", highlight=False)
    if outcomes.get("failed"):
        raise typer.Exit(int(ExitCode.PARTIAL))


def partners_instructions(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The partner's tenant id or domain, as partners.tenants names it.")],
    out: Annotated[
        Path | None, typer.Option(help="Write FILE.md (or FILE.html: HTML) instead of printing Markdown.")
    ] = None,
) -> None:
    """Write the document for the partner's admin: what to set in their tenant for us, why, how to check."""
    from shared.config import load_settings
    from shared.partners.trust_service import partner_instructions

    document = asyncio.run(partner_instructions(load_settings(**ctx.obj), tenant))
    if out is None:
        print(document.markdown)
        return
    _write(out, document.html if out.suffix.lower() in (".html", ".htm") else document.markdown, "instructions")
    stdout.print(f"instructions for {document.parties.partner_name} written to {out}", highlight=False)


partners_app.command("plan")(partners_plan)
partners_app.command("apply")(partners_apply)
partners_app.command("rollback")(partners_rollback)
partners_app.command("instructions")(partners_instructions)
