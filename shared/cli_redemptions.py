"""`guestctl sync`, `redemptions`, `remind` and `subscriptions`: redemption tracking on the command line.

Registered on the main app by shared/cli.py; each command calls one service function and prints what it
returns (a table for people, --json for scripts).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from shared.cli import JsonFlag, app, stdout

subscriptions_app = typer.Typer(help="Manage this deployment's Graph change-notification subscription.")
app.add_typer(subscriptions_app, name="subscriptions")


@app.command("sync")
def sync_command(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="Start from the beginning instead of the kept delta link.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run Graph's delta query once and record what changed: redemptions, new guests, removals."""
    from shared.config import load_settings
    from shared.redemptions.service import sync

    result = asyncio.run(sync(load_settings(**ctx.obj), full=full))
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    shown = result.to_json()
    kind = (
        "full round" + (" (the kept delta link had expired)" if result.resynced else "") if result.full else "changes"
    )
    stdout.print(f"delta {kind}: {result.users_seen:,} users seen", highlight=False)
    stdout.print("  ".join(f"{name}: {count:,}" for name, count in shown["counts"].items()), highlight=False)
    if result.unflagged:
        stdout.print(f"un-flagged {result.unflagged:,} guest(s) a sweep had flagged: they are active again")


@app.command("redemptions")
def redemptions_command(
    ctx: typer.Context,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this invitation batch (or `external`).")] = None,
    pending_only: Annotated[
        bool, typer.Option("--pending", help="List only the guests who have not redeemed.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Who redeemed their invitation, how fast (p50/p90), and who is still pending with their next reminder."""
    from shared.config import load_settings
    from shared.redemptions.service import redemption_report

    report = asyncio.run(redemption_report(load_settings(**ctx.obj), batch=batch))
    if as_json:
        shown = report.to_json()
        print(json.dumps({"pending": shown["pending"]} if pending_only else shown, indent=2))
        return
    if not pending_only:
        stdout.print(_summaries(report.to_json()["summaries"]))
    stdout.print(_pending(report.to_json()["pending"]))


def _summaries(summaries: list[dict[str, Any]]) -> Table:
    table = Table(title="Redemptions", title_justify="left")
    for column in ("batch", "invited", "redeemed", "pending", "gone", "p50 h", "p90 h", "oldest pending since"):
        table.add_column(column)
    for s in summaries:
        hours = s["time_to_redeem_hours"]
        table.add_row(
            s["batch"],
            *(f"{s[k]:,}" for k in ("invited", "redeemed", "pending", "gone")),
            *("—" if hours[k] is None else f"{hours[k]:.1f}" for k in ("p50", "p90")),
            _when(s["oldest_pending_since"]),
        )
    return table


def _pending(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Pending ({len(rows):,})", title_justify="left")
    for column in ("user id", "email", "batch", "invited", "reminders sent", "next reminder"):
        table.add_column(column)
    for row in rows:
        sent = ", ".join(f"day {d}" for d in row["reminders_sent"]) or "—"
        table.add_row(
            row["user_id"],
            row["email"] or "—",
            row["batch"],
            _when(row["invited_at"]),
            sent,
            _when(row["next_reminder"]),
        )
    return table


@app.command("remind")
def remind_command(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Send the reminders. Without it: list what is due.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remind guests who have not redeemed (policy invitations.reminders): plan, or --apply to send, once each."""
    from shared.config import load_settings
    from shared.errors import ExitCode
    from shared.redemptions.service import remind

    run = asyncio.run(remind(load_settings(**ctx.obj), apply=apply))
    shown = run.to_json()
    if as_json:
        print(json.dumps(shown, indent=2))
    elif run.results is None:
        table = Table(title=f"Reminders due ({len(run.due):,}); --apply sends them", title_justify="left")
        for column in ("user id", "email", "batch", "invited", "day"):
            table.add_column(column)
        for r in shown["due"]:
            table.add_row(r["user_id"], r["email"] or "—", r["batch"] or "—", _when(r["invited_at"]), str(r["day"]))
        stdout.print(table)
    else:
        for r in shown["reminders"]:
            stdout.print(
                f"{r['user_id']}  day {r['day']}  {r['outcome']}: {r['detail']}", highlight=False, markup=False
            )
        stdout.print(
            "  ".join(f"{k}: {v}" for k, v in shown["outcomes"].items()) or "no reminders due", highlight=False
        )
    if run.results is not None and any(r.outcome.value == "failed" for r in run.results):
        raise typer.Exit(int(ExitCode.PARTIAL))


def _when(value: str | None) -> str:
    """An ISO time as people read it in a table: to the minute, UTC."""
    return f"{value[:10]} {value[11:16]}" if value else "—"


@subscriptions_app.command("ensure")
def subscriptions_ensure(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Create, adopt or renew the subscription on users (GUESTCTL_NOTIFICATION_URL, _SECRET, _DELIVERY)."""
    from shared.config import load_settings
    from shared.notifications.service import ensure_subscription

    state = asyncio.run(ensure_subscription(load_settings(**ctx.obj)))
    if as_json:
        print(json.dumps(state.to_json(), indent=2))
        return
    stdout.print(
        f"subscription {state.subscription_id}: {state.action}, expires {state.expires_at.isoformat()}"
        + (f"; {state.removed_duplicates} duplicate(s) deleted" if state.removed_duplicates else ""),
        highlight=False,
    )


@subscriptions_app.command("list")
def subscriptions_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The app's Graph subscriptions (function keys in URLs are redacted); ours is marked."""
    from shared.config import load_settings
    from shared.notifications.service import list_subscriptions

    listed = asyncio.run(list_subscriptions(load_settings(**ctx.obj)))
    if as_json:
        print(json.dumps(listed, indent=2))
        return
    table = Table(title=f"Subscriptions ({len(listed)})", title_justify="left")
    for column in ("id", "resource", "changeType", "expires", "notificationUrl", "ours"):
        table.add_column(column)
    for s in listed:
        table.add_row(
            s["id"],
            s["resource"],
            s["changeType"],
            s["expirationDateTime"],
            s["notificationUrl"],
            "yes" if s["ours"] else "",
        )
    stdout.print(table)


@subscriptions_app.command("delete")
def subscriptions_delete(
    ctx: typer.Context,
    subscription_id: Annotated[
        str | None, typer.Option("--id", help="Delete this subscription instead of ours.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete our subscription (notifications stop; the delta timer still catches every change)."""
    from shared.config import load_settings
    from shared.notifications.service import delete_subscription

    deleted = asyncio.run(delete_subscription(load_settings(**ctx.obj), subscription_id))
    if as_json:
        print(json.dumps({"deleted": deleted}, indent=2))
        return
    stdout.print(f"deleted {len(deleted)} subscription(s): {', '.join(deleted) or 'none found'}", highlight=False)
