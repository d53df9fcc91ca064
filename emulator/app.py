"""create_app: the Starlette application serving Graph under /v1.0 and the control API under /_emulator."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from emulator.control import control_routes
from emulator.eventgrid import EventGridRouter
from emulator.gateway import Gateway
from emulator.http import TRANSPORT_KEY, Route
from emulator.limits import LimitSettings
from emulator.notifications import Notifier
from emulator.routes import (
    auditlogs,
    batch,
    delta,
    directory,
    groups,
    invitations,
    mail,
    policies,
    rolemanagement,
    serviceprincipals,
    subscriptions,
    teams,
    users,
)
from emulator.seed import seed_tenant
from emulator.state import EmulatorState
from emulator.tenant import Tenant


def graph_routes() -> list[Route]:
    # Order matters: fixed segments (delta, $count, actions) before /users/{id}.
    return [
        *delta.ROUTES,
        *mail.ROUTES,
        *users.ROUTES,
        *groups.ROUTES,
        *directory.ROUTES,
        *rolemanagement.ROUTES,
        *invitations.ROUTES,
        *subscriptions.ROUTES,
        *policies.ROUTES,
        *auditlogs.ROUTES,
        *serviceprincipals.ROUTES,
        *teams.ROUTES,
        *batch.ROUTES,
    ]


class EmulatorApp(Starlette):
    """Starlette, with the server's transport in the scope: an injected `reset` fault closes it (ASGI has no
    message for a reset, and Starlette's middleware wraps `send`, hiding uvicorn's request cycle)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope[TRANSPORT_KEY] = transport
        await super().__call__(scope, receive, send)


def create_app(tenant: Tenant | None = None, **options: Any) -> Starlette:
    """Build the emulator app.

    Options: `limits` (dict or LimitSettings; throttling off unless `enabled` is true), `faults`
    (dict of FaultSettings fields), `log_requests` (default True), `event_grid`
    (`{"connection_string": …, "queues": {partner_topic: queue_name}}`: where each Event Grid partner
    topic's events are written; more can be mapped at run time with `POST /_emulator/eventgrid/topics`).
    """
    limits = options.pop("limits", None)
    if isinstance(limits, dict):
        settings = LimitSettings()
        settings.update(limits)
        limits = settings
    faults = options.pop("faults", None)
    log_requests = options.pop("log_requests", True)
    event_grid = EventGridRouter.from_options(options.pop("event_grid", None))
    if options:
        raise TypeError(f"unknown create_app options: {', '.join(sorted(options))}")
    state = EmulatorState(tenant or seed_tenant("demo"), limits=limits, log_requests=log_requests)
    if faults:
        state.faults.configure(faults)
    notifier = Notifier(state, event_grid)
    state.notifier = notifier
    gateway = Gateway(state, graph_routes())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await notifier.start()
        try:
            yield
        finally:
            await notifier.stop()

    app = EmulatorApp(routes=[*control_routes(state), Mount("", app=gateway)], lifespan=lifespan)
    app.state.emulator = state
    return app
