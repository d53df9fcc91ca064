"""`guestctl permissions check`: the deployed identity's Microsoft Graph application permissions against what the
enabled capabilities need (docs/permissions.md#checking-a-deployment). Registered by shared/cli.py."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from shared.cli import JsonFlag, app, stdout
from shared.errors import ExitCode, InputError
from shared.permissions import CAPABILITY_PERMISSIONS, DEFAULT_CAPABILITIES

permissions_app = typer.Typer(help="Microsoft Graph permissions (docs/permissions.md).", no_args_is_help=True)
app.add_typer(permissions_app, name="permissions")


@permissions_app.command("check")
def check_command(
    ctx: typer.Context,
    capability: Annotated[
        list[str] | None,
        typer.Option(
            "--capability",
            metavar="NAME",
            help=f"A capability in use (repeat it): {', '.join(CAPABILITY_PERMISSIONS)}. "
            f"Default: {', '.join(DEFAULT_CAPABILITIES)} (infra/graph.bicep's defaults).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Read this identity's Graph app roles (GUESTCTL_CLIENT_ID; needs Application.Read.All) and report the
    permissions missing or beyond what the capabilities need. Exit 1 when they differ."""
    from shared.config import load_settings
    from shared.graph import get_graph
    from shared.permissions import PermissionCheck, check_permissions

    chosen = tuple(dict.fromkeys(capability or DEFAULT_CAPABILITIES))
    unknown = [name for name in chosen if name not in CAPABILITY_PERMISSIONS]
    if unknown:
        raise InputError(
            f"unknown capability '{unknown[0][:60]}'", hint=f"use one of: {', '.join(CAPABILITY_PERMISSIONS)}"
        )
    settings = load_settings(**ctx.obj)
    if not settings.client_id:
        raise InputError(
            "GUESTCTL_CLIENT_ID is not set: whose permissions to check is unknown",
            hint="set it to the managed identity's (or app registration's) client id",
        )
    client_id = settings.client_id

    async def check() -> PermissionCheck:
        graph = get_graph(settings)
        try:
            return await check_permissions(graph, client_id, chosen)
        finally:
            await graph.close()

    result = asyncio.run(check())
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        stdout.print(f"identity: {result.identity}", highlight=False)
        stdout.print(f"capabilities: {', '.join(result.capabilities)}", highlight=False)
        stdout.print(f"granted: {len(result.granted)}, needed: {len(result.required)}", highlight=False)
        for name in result.missing:
            stdout.print(f"  missing    {name}", highlight=False)
        for name in result.excessive:
            stdout.print(f"  excessive  {name}", highlight=False)
        for role_id in sorted(result.unknown_role_ids):
            stdout.print(f"  unknown    {role_id} (not an app role of Microsoft Graph's)", highlight=False)
        for name, role_id in sorted(result.id_mismatches.items()):
            stdout.print(f"  note       {name} is {role_id} in this tenant: fix infra/graph.bicep", highlight=False)
        stdout.print("ok: exactly what the capabilities need" if result.ok else "differs: see above")
    if not result.ok:
        raise typer.Exit(int(ExitCode.PARTIAL))
