"""`guestctl`: the command line. Parses flags, calls one engine function, shapes the output.

Errors meant for people (`GuestctlError`) become one line on stderr and a documented exit code
(docs/cli.md); only bugs show a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shared import __version__
from shared.errors import ExitCode, GuestctlError, InputError, Interrupted, cap

if TYPE_CHECKING:
    from shared.config import Policy, Settings
    from shared.invitations import InvitationRow

app = typer.Typer(
    name="guestctl",
    help="Automate the whole life of Microsoft Entra ID guest accounts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Check and explain settings and policy.", no_args_is_help=True)
app.add_typer(config_app, name="config")

stdout = Console()
stderr = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"guestctl {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    cloud: Annotated[str | None, typer.Option(help="global, usgov, usgov-dod or china [GUESTCTL_CLOUD]")] = None,
    graph_url: Annotated[
        str | None, typer.Option(help="Graph endpoint override, e.g. the emulator [GUESTCTL_GRAPH_URL]")
    ] = None,
    auth: Annotated[str | None, typer.Option(help="default, managed-identity or emulator [GUESTCTL_AUTH]")] = None,
    tenant_id: Annotated[str | None, typer.Option(help="Tenant id [GUESTCTL_TENANT_ID]")] = None,
    client_id: Annotated[str | None, typer.Option(help="App (client) id [GUESTCTL_CLIENT_ID]")] = None,
    state: Annotated[
        str | None, typer.Option(help="SQLite path or Azure Storage connection/URL [GUESTCTL_STATE]")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy YAML file [GUESTCTL_POLICY]")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for plans and reports [GUESTCTL_OUT]")] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="-v: more detail; -vv: every Graph request (debug).")
    ] = 0,
) -> None:
    """Every option can also be set as a GUESTCTL_* environment variable; the option wins."""
    _configure_logging(verbose)
    ctx.obj = {
        "cloud": cloud,
        "graph_url": graph_url,
        "auth": auth,
        "tenant_id": tenant_id,
        "client_id": client_id,
        "state": state,
        "policy": policy,
        "out": out,
    }


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


@config_app.command("check")
def config_check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Validate settings and policy; print the effective configuration (secrets redacted). Writes nothing."""
    from shared.config import Settings, load_policy, load_settings
    from shared.store import describe_location

    overrides: dict[str, Any] = ctx.obj
    settings = load_settings(**overrides)
    policy = load_policy(settings.policy)
    shown = settings.shown()
    state_store = describe_location(settings.state)
    sources = {name: _source(name, overrides) for name in Settings.model_fields}
    policy_values = _flatten(policy.model_dump(mode="json"))
    if as_json:
        print(
            json.dumps(
                {
                    "ok": True,
                    "version": __version__,
                    "settings": shown,
                    "sources": sources,
                    "state_store": state_store,
                    "policy_file": str(settings.policy) if settings.policy else None,
                    "policy_digest": policy.digest(),
                    "policy": policy.model_dump(mode="json"),
                },
                indent=2,
            )
        )
        return
    table = Table(title="Settings", title_justify="left")
    for column in ("setting", "value", "from"):
        table.add_column(column)
    for name, value in shown.items():
        table.add_row(f"GUESTCTL_{name.upper()}", _text(value), sources[name])
    stdout.print(table)
    stdout.print(f"State store: {state_store}")
    origin = str(settings.policy) if settings.policy else "built-in defaults (no GUESTCTL_POLICY)"
    policy_table = Table(title=f"Policy: {origin}", title_justify="left")
    policy_table.add_column("key")
    policy_table.add_column("value")
    for key, value in policy_values.items():
        policy_table.add_row(key, _text(value))
    stdout.print(policy_table)
    stdout.print(f"[green]ok[/green] settings and policy are valid; policy digest {policy.digest()}")


@config_app.command("schema")
def config_schema() -> None:
    """Print the policy's JSON Schema (for editors; the same as docs/policy.schema.json)."""
    from shared.config import policy_json_schema

    print(json.dumps(policy_json_schema(), indent=2))


@app.command("invite")
def invite(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, ',' or ';') or JSON lines; see docs/invitations.md.")],
    apply: Annotated[bool, typer.Option("--apply", help="Invite for real. Without it: plan only, no writes.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write one CSV line per input row: row,email,outcome,...")] = None,
    resend: Annotated[bool, typer.Option(help="Send existing guests a new invitation email.")] = False,
    batch_id: Annotated[str | None, typer.Option(help="Idempotency scope; default: derived from the file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Invite the guests listed in FILE: plan by default, --apply to invite. Reruns invite nobody twice."""
    import asyncio

    from shared.config import load_policy, load_settings
    from shared.invitations import batch_id_for, parse_rows

    settings = load_settings(**ctx.obj)
    policy = load_policy(settings.policy)
    if out is not None:
        _check_out_file(out)
    try:
        content = file.read_bytes()
    except OSError as error:
        raise InputError(f"{file}: cannot read: {error.strerror or error}") from None
    rows = parse_rows(content, name=str(file), json_lines=file.suffix.lower() in (".jsonl", ".json", ".ndjson"))
    batch = batch_id or batch_id_for(content)
    results = asyncio.run(_invite(settings, policy, rows, batch, str(file), resend, apply, as_json))
    if out is not None:
        _write_results_csv(out, results)
    ok = {"invite", "already-guest", "invited", "adopted", "already-done"}
    if any(r["outcome"] not in ok for r in results):
        raise typer.Exit(int(ExitCode.PARTIAL))


async def _invite(
    settings: Settings,
    policy: Policy,
    rows: list[InvitationRow],
    batch: str,
    source: str,
    resend: bool,
    apply: bool,
    as_json: bool,
) -> list[dict[str, Any]]:
    from shared.invitations import invite_rows

    common: dict[str, Any] = {"batch_id": batch, "source": source, "resend": resend, "policy": policy}
    if not apply:
        run = await invite_rows(settings, rows, apply=False, actor="guestctl invite", **common)
        title = f"Plan for {source} (batch {batch}) — nothing was changed; add --apply to invite"
        extra = {"batch_id": batch, "plan_digest": run.plan.digest()}
    else:
        with _progress("inviting", quiet=as_json) as progress:
            task = progress.add_task("rows", total=len(rows))
            run = await invite_rows(
                settings,
                rows,
                apply=True,
                actor="guestctl invite",
                on_row_done=lambda _: progress.advance(task),
                **common,
            )
        title, extra = f"Applied {source} (batch {batch})", {"batch_id": batch}
    shown = run.rows_json()
    _show_rows(title, shown, run.counts(), as_json, extra=extra)
    return shown


def _progress(label: str, *, quiet: bool) -> Any:
    """A progress bar on stderr for people at a terminal; silent for --json and pipes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=quiet or not stderr.is_terminal,
    )


def _show_rows(
    title: str, rows: list[dict[str, Any]], counts: dict[str, int], as_json: bool, extra: dict[str, Any]
) -> None:
    if as_json:
        print(json.dumps({**extra, "counts": counts, "rows": rows}, indent=2))
        return
    routine = {"invite", "invited", "already-done"}
    table = Table(title=title, title_justify="left")
    for column in ("row", "email", "outcome", "reason"):
        table.add_column(column)
    shown = [r for r in rows if r["outcome"] not in routine] if len(rows) > 50 else rows
    for r in shown:
        table.add_row(str(r["row"]), r["email"], r["outcome"], r["reason"])
    if shown:
        stdout.print(table)
    if len(shown) < len(rows):
        stdout.print(f"({len(rows) - len(shown)} rows with a routine outcome not listed; use --out or --json)")
    stdout.print("  ".join(f"{name}: {count}" for name, count in counts.items() if count))


def _check_out_file(path: Path) -> None:
    """--out is checked before anything is done: failing to write it after an --apply would lose the one
    per-row record of what was done (and exit 2 would wrongly say nothing was)."""
    folder = path.parent
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder", hint="give a file path, e.g. results.csv")
    if not folder.is_dir():
        raise InputError(f"--out {path}: folder {folder} does not exist", hint="create it or choose another path")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"--out {path}: not writable", hint="choose a path you can write")


def _write_results_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["row", "email", "outcome", "user_id", "reason"])
        writer.writeheader()
        writer.writerows(rows)


@app.command("sweep")
def sweep(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Carry out the plan. Without it: plan only.")] = False,
    plan_file: Annotated[
        Path | None, typer.Option("--plan", help="Apply this saved plan (re-validated) instead of a new one.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the plan (with its digest) to this JSON file.")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Start a new scan instead of continuing an interrupted one.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Find stale and never-redeemed guests and plan (or --apply) the next stage: flag, disable, delete.

    An interrupted scan (Ctrl+C) is continued by the next `guestctl sweep`; --fresh starts over.
    """
    import asyncio

    from shared.config import load_policy, load_settings

    settings = load_settings(**ctx.obj)
    policy = load_policy(settings.policy)
    saved = _read_plan(plan_file) if plan_file else None
    if out is not None:
        _check_out_file(out)
    phase = ["planning"]
    try:
        results = asyncio.run(_sweep(settings, policy, saved, apply, out, as_json, fresh=fresh, phase=phase))
    except KeyboardInterrupt:
        if phase[0] == "planning":
            said = "the scan so far is kept: run `guestctl sweep` again to continue it (--fresh starts over)"
        else:
            said = "every action done so far is recorded: run the same command again to finish the run"
        raise Interrupted(f"interrupted while {phase[0]}: nothing more was changed; {said}") from None
    if any(r["outcome"] == "failed" for r in results):
        raise typer.Exit(int(ExitCode.PARTIAL))


def _read_plan(path: Path) -> tuple[str, str]:
    """The plan file's name and text; it is checked (digest, signature) once the state store is open."""
    return str(path), _read_text(path, "plan", made_by="`guestctl sweep --out`")


def _read_text(path: Path, what: str, *, made_by: str) -> str:
    """A plan or id file's text: one that cannot be read, or is not UTF-8 text, is bad input (exit 2)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read the {what}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise InputError(
            f"{path}: cannot read the {what}: not UTF-8 text", hint=f"give a file {made_by} wrote"
        ) from None


async def _sweep(
    settings: Settings,
    policy: Policy,
    saved: tuple[str, str] | None,
    apply: bool,
    out: Path | None,
    as_json: bool,
    *,
    fresh: bool,
    phase: list[str],
) -> list[dict[str, Any]]:
    from shared.clock import utc_now
    from shared.graph import Graph, graph_options
    from shared.stale import check_saved_plan, plan_file_json, plan_tenant, read_plan_file, run_id_for
    from shared.stale.service import run_plan
    from shared.store import open_state

    now = utc_now()
    tenant_id = plan_tenant(settings)  # before anything is read or written
    graph = Graph(graph_options(settings))
    try:
        async with open_state(settings) as store:
            if saved is not None:
                name, text = saved
                plan = await read_plan_file(store, text, name=name)
                check_saved_plan(plan, policy, tenant_id=tenant_id, now=now)
            else:
                plan = await _plan_sweep(graph, store, policy, now, tenant_id, fresh=fresh, quiet=as_json)
            plan_json = await plan_file_json(store, plan)
            if out is not None:
                _write_plan(out, plan_json)
            if not (as_json and apply):  # with --apply --json only the results are printed
                _show_plan(plan, plan_json if as_json else None, run_id_for(plan))
            if not apply:
                return []
            phase[0] = f"applying run {run_id_for(plan)}"
            with _progress("applying", quiet=as_json) as progress:
                task = progress.add_task("actions", total=len(plan.actions))
                run = await run_plan(
                    plan,
                    graph,
                    store,
                    policy,
                    tenant_id=tenant_id,
                    actor="guestctl sweep",
                    on_action_done=lambda _: progress.advance(task),
                )
    finally:
        await graph.close()
    return _show_run(run, as_json)


async def _plan_sweep(
    graph: Any, store: Any, policy: Policy, now: Any, tenant_id: str | None, *, fresh: bool, quiet: bool
) -> Any:
    """A new plan, continuing the scan an interrupted `guestctl sweep` left (unless --fresh)."""
    from shared.stale import count_guests, plan_sweep

    scan_id, planned = await _cli_scan(store, policy, now, fresh=fresh)
    with _progress("planning", quiet=quiet) as progress:
        # signInActivity pages are paced (about 10 a minute): a big tenant takes a while
        task = progress.add_task("guests", total=None if progress.disable else await count_guests(graph))
        progress.advance(task, planned)
        return await plan_sweep(
            graph,
            store,
            policy,
            now=now,
            scan_id=scan_id,
            tenant_id=tenant_id,
            on_page=lambda guests: progress.advance(task, guests),
        )


def _show_run(run: Any, as_json: bool) -> list[dict[str, Any]]:
    """What a sweep run did: every action's outcome (skipped and failed ones always listed), the notices."""
    from shared.stale.service import result_json

    rows = [result_json(r) for r in run.results]
    if as_json:
        notices = run.notices_json(count_unsponsored=False)  # the guests are listed under their own key
        body = {"run_id": run.run_id, "results": rows, "sponsor_notices": notices}
        print(json.dumps({**body, "flagged_without_sponsor": run.unsponsored}, indent=2))
        return rows
    table = Table(title=f"Run {run.run_id} (undo with: guestctl restore --run {run.run_id})", title_justify="left")
    for column in ("action", "guest", "outcome", "detail"):
        table.add_column(column)
    # every skipped or failed action is listed; "done" ones only when there are few
    shown = [r for r in rows if r["outcome"] != "done"] if len(rows) > LISTED_ROWS else rows
    for r in shown:
        table.add_row(r["action"], r["guest"], r["outcome"], r["detail"])
    if shown:
        stdout.print(table)
    stdout.print("  ".join(f"{label}: {count}" for label, count in run.outcomes().items()) or "nothing to do")
    for notice in run.notices:
        stdout.print(f"sponsor notice to {notice.sponsor} ({notice.guests} guests): {notice.outcome}")
    if run.unsponsored:
        stdout.print(f"[yellow]{len(run.unsponsored)} flagged guests have no sponsor to notify[/yellow]")
    return rows


async def _cli_scan(store: Any, policy: Policy, now: Any, *, fresh: bool) -> tuple[str, int]:
    """The scan this `guestctl sweep` plans with: the last interrupted one, unless --fresh, or a new one;
    and how many guests it has planned already."""
    from datetime import timedelta

    from shared.stale import discard_sweep, resumable_sweep, sweep_progress

    max_age = timedelta(hours=policy.safety.plan_max_age_hours)
    scan_id = await resumable_sweep(store, prefix="cli-", now=now, max_age=max_age)
    if scan_id is not None and fresh:
        await discard_sweep(store, scan_id)
        scan_id = None
    progress = await sweep_progress(store, scan_id) if scan_id is not None else None
    if scan_id is None or progress is None:
        return f"cli-{now:%Y%m%dT%H%M%S%f}", 0
    started, planned = progress
    stderr.print(
        f"continuing the sweep interrupted after {planned} guests (started {started:%Y-%m-%d %H:%M} UTC); "
        "--fresh starts over",
        highlight=False,
    )
    return scan_id, planned


LISTED_ROWS = 50  # more than this many rows go to --out / --json, not the terminal
SHOWN_FIRST = ("delete", "disable", "enable", "unflag", "flag")


def _write_plan(path: Path, plan_json: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(plan_json, indent=2), encoding="utf-8")
    except OSError as error:
        raise InputError(
            f"{path}: cannot write the plan: {error.strerror or error}", hint="choose another --out"
        ) from None


def _show_plan(plan: Any, plan_json: dict[str, Any] | None, run_id: str) -> None:
    """The plan for people, or (`plan_json`, with --json) the signed plan as a file would hold it."""
    if plan_json is not None:
        print(json.dumps(plan_json, indent=2))
        return
    stdout.print(f"Stale-guest plan: {plan.guests} guests, digest {plan.digest()}", highlight=False)
    stdout.print("  " + "  ".join(f"{name}: {count}" for name, count in plan.counts.items()))
    for note in plan.notes:
        stdout.print(f"[yellow]note:[/yellow] {note}")
    for guest in plan.unsponsored:  # listed only: give them a sponsor, or let the sweep's stages take them
        stdout.print(f"[yellow]no sponsor:[/yellow] {guest.name} ({guest.id}): {guest.reason}", highlight=False)
    table = Table(title=f"Actions ({len(plan.actions)}; run id {run_id})", title_justify="left")
    for column in ("action", "guest", "reason"):
        table.add_column(column)
    # the disruptive actions first; a first sweep of a big tenant can flag tens of thousands
    ordered = sorted(plan.actions, key=lambda a: SHOWN_FIRST.index(a.kind.value))
    for action in ordered[:LISTED_ROWS]:
        table.add_row(action.kind.value, action.display, action.reason)
    if plan.actions:
        stdout.print(table)
    if len(ordered) > LISTED_ROWS:
        stdout.print(f"({len(ordered) - LISTED_ROWS} more actions not listed; --out FILE or --json has them all)")
    kinds = Counter(action.kind.value for action in plan.actions)
    stdout.print("actions: " + ("  ".join(f"{kind}: {count}" for kind, count in kinds.items()) or "none"))
    if plan.refused:
        stdout.print(f"[red]refused:[/red] {plan.refused}")


@app.command("restore")
def restore_command(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option(help="Undo every disable and delete of this run.")] = None,
    user: Annotated[str | None, typer.Option(help="Undo guestctl's disables and deletes of this user.")] = None,
) -> None:
    """Restore deleted guests from deleted items and re-enable disabled ones (within 30 days of deletion)."""
    import asyncio

    from shared.config import load_settings

    if not run and not user:
        raise InputError("restore needs --run RUN_ID or --user USER_ID")
    settings = load_settings(**ctx.obj)

    async def undo() -> list[Any]:
        from shared.core.restore import restore
        from shared.graph import Graph, graph_options
        from shared.store import open_state

        graph = Graph(graph_options(settings))
        try:
            async with open_state(settings) as store:
                return await restore(graph, store, actor="guestctl restore", run_id=run, user_id=user)
        finally:
            await graph.close()

    results = asyncio.run(undo())
    for result in results:
        stdout.print(result.line(), highlight=False, markup=False)
    outcomes = Counter(result.outcome.value for result in results)
    stdout.print("  ".join(f"{outcome}: {count}" for outcome, count in outcomes.items()) or "nothing to undo")
    if outcomes.get("failed"):
        raise typer.Exit(int(ExitCode.PARTIAL))  # run it again: what was restored is not repeated


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Try the whole guest lifecycle against an emulated tenant: invite, redeem, sweep. No tenant needed."""
    import asyncio

    from shared.config import load_settings
    from shared.demo import prepare_out, run_demo

    settings = load_settings(**{k: v for k, v in ctx.obj.items() if k not in ("graph_url", "auth")})
    try:
        import emulator  # noqa: F401
    except ImportError:
        raise InputError(
            "the demo needs the emulator", hint="install the extra: pip install 'guestctl[emulator]'"
        ) from None

    def say(line: str) -> None:
        stdout.print(line, highlight=False, markup=False, soft_wrap=True)  # lines as written, never re-wrapped

    written = asyncio.run(run_demo(prepare_out(settings.out), say))
    stdout.print(f"\nFiles written under {settings.out}/:")
    for path in written:
        stdout.print(f"  {path.name}")


@app.command("emulator")
def run_emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    seed: Annotated[
        str, typer.Option(help="'demo' (a small fixed tenant) or an integer for a generated one.")
    ] = "demo",
    guests: Annotated[int | None, typer.Option(help="Generated guests (with an integer --seed).")] = None,
    members: Annotated[int | None, typer.Option(help="Generated members (with an integer --seed).")] = None,
    limits: Annotated[bool, typer.Option(help="Apply Graph's documented throttling limits.")] = True,
    time_scale: Annotated[float, typer.Option(help="Shrink the limit windows (0.01 = 100x faster).")] = 1.0,
) -> None:
    """Run the local Microsoft Graph tenant emulator; prints its base URL. Stop with Ctrl+C."""
    try:
        from emulator import serve
    except ImportError as missing:
        raise InputError(
            f"the emulator is not installed ({missing.name} is missing)",
            hint="install the extra: pip install 'guestctl[emulator]'",
        ) from None
    if not seed.lstrip("-").isdigit() and seed != "demo":
        raise InputError(f"--seed: expected 'demo' or an integer (got {seed!r})")
    if (guests is not None or members is not None) and seed == "demo":
        raise InputError("--guests/--members need an integer --seed (the demo tenant is fixed)")
    serve(port=port, seed=seed, guests=guests, members=members, limits=limits, time_scale=time_scale)


LIBRARY_LOGGERS = ("httpx", "httpcore", "hpack", "h2", "azure", "msal", "kiota_http", "kiota_abstractions", "asyncio")


def _configure_logging(verbose: int) -> None:
    """Warnings only by default; -v adds guestctl's own detail, -vv its debug lines (one per Graph request).

    Logs go to stderr, one record per line, so --json output on stdout stays parseable. Libraries stay at
    warnings whatever -v says: httpx would log every URL in full (skip and delta tokens included) and
    httpcore every header.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # azure-identity warns, over several lines, of each credential that failed: our error line says it once
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time: a rich progress bar swaps it to print lines above itself."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        return None


def _source(name: str, overrides: dict[str, Any]) -> str:
    if overrides.get(name) is not None:
        return "flag"
    if f"GUESTCTL_{name.upper()}" in os.environ:
        return "environment"
    return "default"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value) if value else "(none)"
    return str(value)


VERBOSE_FLAGS = re.compile(r"-v+|--verbose")


def main() -> None:
    """Console-script entry point: every expected failure becomes one line on stderr and a documented exit
    code (docs/cli.md). Only an unexpected exception — a bug — exits 70, with its traceback under -vv."""
    args = _hoist_verbose(sys.argv[1:])
    try:
        code = app(args=args, prog_name="guestctl", standalone_mode=False)
    except GuestctlError as error:
        _fail(error.one_line(), int(error.exit_code))
    except typer.TyperException as error:  # click's usage errors, as typer re-exports them
        _usage_error(error)
    except (typer.Abort, KeyboardInterrupt):
        code = int(ExitCode.INTERRUPTED)
    except OSError as error:  # a file or folder of the person's (an --out path) that no engine call named
        where = f"{error.filename}: " if error.filename else ""
        _fail(
            f"{cap(where + (error.strerror or str(error)))} — check the path and its permissions",
            int(ExitCode.BAD_INPUT),
        )
    except Exception as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        _fail(
            f"unexpected {type(error).__name__}: {cap(str(error), 300)} — this is a bug in guestctl; "
            "run again with -vv for the traceback and report it",
            int(ExitCode.BUG),
        )
    if code == ExitCode.INTERRUPTED:  # typer turns Ctrl+C into Exit(130), silently; see errors.Interrupted
        _fail("interrupted — what was done so far is kept; run the command again to continue", code)
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


def _usage_error(error: typer.TyperException) -> NoReturn:
    """A usage error in one line naming the command's --help; bare `guestctl` (or a group) prints its help."""
    context = getattr(error, "ctx", None)
    if type(error).__name__ == "NoArgsIsHelpError":  # typer's own test, as its classes are private
        if error.format_message().strip():  # typer's rich help has already printed itself
            stderr.print(error.format_message(), highlight=False, markup=False)
        sys.exit(int(ExitCode.BAD_INPUT))
    command = context.command_path if context is not None else "guestctl"
    _fail(f"{cap(error.format_message())} — see `{command} --help`", int(ExitCode.BAD_INPUT))


def _fail(line: str, code: int) -> NoReturn:
    if "--json" in sys.argv:
        print(json.dumps({"ok": False, "error": line, "exit_code": code}))
    stderr.print(Text.assemble(("error:", "red"), " ", line), highlight=False, soft_wrap=True)
    sys.exit(code)


def _hoist_verbose(args: list[str]) -> list[str]:
    """`guestctl sweep -v` as `guestctl -v sweep`: -v belongs to guestctl itself, but people type it last."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if VERBOSE_FLAGS.fullmatch(a)]
    if not flags:
        return args
    return flags + [a for a in args[:end] if not VERBOSE_FLAGS.fullmatch(a)] + args[end:]


if __name__ == "__main__":
    # `python -m shared.cli` runs this file as __main__: import it as `shared.cli`, whose import registers the
    # other modules' commands on its `app` (below), and run that.
    from shared.cli import main as imported_main

    imported_main()
else:
    # The redemption-tracking and partner commands register themselves on `app` (their own modules, for size).
    from shared import (  # noqa: F401
        cli_attest,
        cli_hr,
        cli_offboard,
        cli_partners,
        cli_partners_migrate,
        cli_partners_trust,
        cli_partners_verify,
        cli_permissions,
        cli_redemptions,
        cli_report,
    )
