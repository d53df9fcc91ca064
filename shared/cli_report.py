"""`guestctl report`: the weekly cleanup report (docs/reports.md). Registered on the main app by shared/cli.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from shared.cli import JsonFlag, app, stdout


@app.command("report")
def report_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for report.html, report.csv, report.json [GUESTCTL_OUT].")
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="Email it to reports.recipients from invitations.sender_mailbox.")
    ] = False,
    week: Annotated[
        str | None, typer.Option("--week", help="ISO week, e.g. 2026-W48 (default: the last week that has ended).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write the weekly cleanup report (HTML, CSV, JSON) from what guestctl recorded, plus one guest count."""
    from shared.config import load_settings
    from shared.reports.service import weekly_report
    from shared.reports.weeks import parse_week

    chosen = parse_week(week) if week is not None else None  # a bad week: exit 2 before anything is read
    run = asyncio.run(weekly_report(load_settings(**ctx.obj), week=chosen, out=out, send=send))
    if as_json:
        print(json.dumps(run.report.to_json(), indent=2))
        return
    report = run.report
    stdout.print(f"Weekly report {report.week} ({report.period_start:%Y-%m-%d} to {report.period_end:%Y-%m-%d})")
    for item in report.headline:
        value = "—" if item.value is None else f"{item.value:,}"
        change = "" if item.change is None else f" ({item.change:+,} since last week)"
        stdout.print(f"  {item.label + ':':<24} {value}{change}", highlight=False)
    stdout.print(f"  needs a person: {len(report.attention)}   guests in report.csv: {len(report.guests):,}")
    for path in run.written:
        stdout.print(f"wrote {path}", highlight=False)
    if run.sent_to:
        how = "report.csv attached" if run.attached else "too large to attach: the email says where report.csv is"
        stdout.print(f"sent to {', '.join(run.sent_to)} ({how})", highlight=False)
