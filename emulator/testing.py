"""In-process servers for tests: the emulator and a webhook receiver, each on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from emulator.app import create_app
from emulator.limits import LimitSettings
from emulator.state import EmulatorState
from emulator.tenant import Tenant


class _DropNoise(logging.Filter):
    """An injected dropped connection makes uvicorn log an error; it is expected, so hide it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DropNoise())


class _ThreadedServer:
    """uvicorn in a daemon thread, bound to a socket we opened so the port is known up front."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only then, and without it every small
        # response waits ~40 ms for a delayed ACK (Nagle).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http="h11",
            date_header=False,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True, name=f"uvicorn-{self.port}"
        )

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class ControlClient:
    """Synchronous helper for the `/_emulator/` control API."""

    def __init__(self, root_url: str) -> None:
        self._http = httpx.Client(base_url=f"{root_url}/_emulator", timeout=30.0)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"control {method} {path} failed: {response.status_code} {response.text}")
        return response.json()

    # tenant
    def tenant(self) -> dict[str, Any]:
        return self._call("GET", "/tenant")

    def reset(
        self,
        seed: int | str = "demo",
        guests: int | None = None,
        members: int | None = None,
        now: datetime | str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"seed": seed, "guests": guests, "members": members}
        if now is not None:
            payload["now"] = now.isoformat() if isinstance(now, datetime) else now
        return self._call("POST", "/reset", json=payload)

    def generate_guests(self, count: int, seed: int | str = 1) -> list[str]:
        return self._call("POST", "/guests", json={"count": count, "seed": seed})["ids"]

    def create_user(self, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/users", json=fields)

    def set_sign_in_activity_available(self, available: bool) -> dict[str, Any]:
        return self._call("PATCH", "/tenant", json={"signInActivityAvailable": available})

    def assign_role(self, role: str, principal_id: str, directory_scope_id: str = "/") -> dict[str, Any]:
        """A role assignment: tenant-wide built-in → directoryRole membership; else scoped / custom."""
        return self._call(
            "POST",
            "/role-assignments",
            json={"role": role, "principalId": principal_id, "directoryScopeId": directory_scope_id},
        )

    def make_eligible(
        self,
        role: str,
        principal_id: str,
        directory_scope_id: str = "/",
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> dict[str, Any]:
        """A PIM eligibility (roleEligibilitySchedules)."""
        payload: dict[str, Any] = {
            "role": role,
            "principalId": principal_id,
            "directoryScopeId": directory_scope_id,
            "eligible": True,
        }
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                payload[name] = value.isoformat() if isinstance(value, datetime) else value
        return self._call("POST", "/role-assignments", json=payload)

    def set_pim_available(self, available: bool) -> dict[str, Any]:
        """False: a tenant without Entra ID P2 (PIM eligibility schedules answer with the licence error)."""
        return self._call("PATCH", "/tenant", json={"pimAvailable": available})

    def set_external_mfa_required(self, required: bool) -> dict[str, Any]:
        """True: Conditional Access requires MFA of external users (direct connect then needs MFA trust)."""
        return self._call("PATCH", "/tenant", json={"externalMfaRequired": required})

    def ground_truth(self) -> dict[str, Any]:
        return self._call("GET", "/ground-truth")

    def external_tenants(self) -> list[dict[str, Any]]:
        return self._call("GET", "/external-tenants")

    def assign_app_role(
        self, principal_id: str, resource_id: str, resource_display_name: str = "", app_role_id: str | None = None
    ) -> dict[str, Any]:
        """An appRoleAssignment of a user or group (listed by `GET /users/{id}/appRoleAssignments`)."""
        payload = {"principalId": principal_id, "resourceId": resource_id, "resourceDisplayName": resource_display_name}
        if app_role_id is not None:
            payload["appRoleId"] = app_role_id
        return self._call("POST", "/app-role-assignments", json=payload)

    def add_service_principal(
        self, app_id: str, display_name: str = "", service_principal_type: str = "ManagedIdentity"
    ) -> dict[str, Any]:
        """A service principal for an app or managed identity; grant it Graph permissions with `assign_app_role`
        (`resource_id`: Microsoft Graph's service principal, `app_role_id`: the permission's id)."""
        payload = {"appId": app_id, "displayName": display_name, "servicePrincipalType": service_principal_type}
        return self._call("POST", "/service-principals", json=payload)

    def set_partner_outbound(self, tenant_id: str, allowed: bool) -> list[dict[str, Any]]:
        return self._call("PATCH", f"/external-tenants/{tenant_id}", json={"directConnectOutbound": allowed})

    def set_partner_app_consent(self, tenant_id: str, consented: bool) -> list[dict[str, Any]]:
        """Whether the partner's admin consented our multi-tenant app (their directory answers its tokens)."""
        return self._call("PATCH", f"/external-tenants/{tenant_id}", json={"appConsented": consented})

    # events
    def redeem(
        self, user_id: str | None = None, *, invite_redeem_url: str | None = None, email: str | None = None
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "/invitations/redeem",
            json={"userId": user_id, "inviteRedeemUrl": invite_redeem_url, "email": email},
        )

    def sign_in(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """Record a sign-in (fields as `POST /_emulator/signins` takes them); answers the log entry. A direct
        connect sign-in without `success`/`errorCode` gets the outcome both tenants' settings give."""
        return self._call("POST", "/signins", json={"userId": user_id, **fields})

    def lifecycle(self, subscription_id: str, event: str = "reauthorizationRequired") -> dict[str, Any]:
        """Send a lifecycle event (reauthorizationRequired, subscriptionRemoved, missed) on the subscription's
        lifecycle channel; subscriptionRemoved also removes the subscription."""
        return self._call("POST", f"/subscriptions/{subscription_id}/lifecycle", json={"event": event})

    # Event Grid
    def map_event_grid_topic(self, partner_topic: str, connection_string: str, queue: str) -> list[dict[str, Any]]:
        """Deliver the partner topic's events into this storage queue (until the next reset)."""
        return self._call(
            "POST",
            "/eventgrid/topics",
            json={"partnerTopic": partner_topic, "connectionString": connection_string, "queue": queue},
        )

    def unmap_event_grid_topic(self, partner_topic: str) -> list[dict[str, Any]]:
        return self._call("DELETE", f"/eventgrid/topics/{partner_topic}")

    def event_grid_topics(self) -> list[dict[str, Any]]:
        """Each mapped (or seen) partner topic: queue, account, active, delivered/failed/dropped/discarded."""
        return self._call("GET", "/eventgrid/topics")

    # time
    def clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def advance(self, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> dict[str, Any]:
        return self._call(
            "POST", "/clock/advance", json={"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
        )

    def set_clock(self, now: datetime | str | None = None, frozen: bool | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if now is not None:
            payload["now"] = now.isoformat() if isinstance(now, datetime) else now
        if frozen is not None:
            payload["frozen"] = frozen
        return self._call("PUT", "/clock", json=payload)

    # limits and faults
    def limits(self) -> dict[str, Any]:
        return self._call("GET", "/limits")

    def set_limits(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "/limits", json=settings)

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        return self._call("PUT", "/faults", json=settings)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def injected_faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults/injected")

    # observations
    def outbox(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/outbox", params={"kind": kind} if kind else None)

    def clear_outbox(self) -> None:
        self._call("DELETE", "/outbox")

    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("path", path), ("method", method)) if v}
        return self._call("GET", "/requests", params=params)

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/deliveries")

    def clear_deliveries(self) -> None:
        self._call("DELETE", "/deliveries")

    def validations(self) -> list[dict[str, Any]]:
        return self._call("GET", "/validations")

    def notifier(self) -> dict[str, Any]:
        return self._call("GET", "/notifier")

    def wait_for_deliveries(
        self, count: int = 1, timeout: float = 10.0, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` delivery records (matching `where`) exist, then return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = [d for d in self.deliveries() if where is None or where(d)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.notifier()["idle"]:
                return True
            time.sleep(0.02)
        return False


class EmulatorServer:
    """Run the emulator on 127.0.0.1 in a background thread.

    >>> with EmulatorServer(seed_tenant(7, guests=50)) as em:
    ...     em.base_url          # "http://127.0.0.1:PORT/v1.0"
    ...     em.tenant            # the live Tenant, for assertions
    ...     em.control.advance(days=8)
    """

    def __init__(self, tenant: Tenant | None = None, *, port: int = 0, **options: Any) -> None:
        self.app = create_app(tenant, **options)
        self.state: EmulatorState = self.app.state.emulator
        self._server = _ThreadedServer(self.app, port=port)
        self.control = ControlClient(self._server.root_url)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def root_url(self) -> str:
        return self._server.root_url

    @property
    def base_url(self) -> str:
        return f"{self._server.root_url}/v1.0"

    @property
    def tenant(self) -> Tenant:
        return self.state.tenant

    def reset(self, tenant: Tenant | None = None, *, limits: dict[str, Any] | None = None) -> Tenant:
        """Start over with a new tenant (default: the demo tenant), clean logs, no faults, limits off."""
        from emulator.seed import seed_tenant

        fresh = tenant or seed_tenant("demo")
        self.state.replace_tenant(fresh)
        self.state.request_log.clear()
        self.state.faults.configure({})
        self.state.faults.injected.clear()
        settings = self.state.limiter.settings
        settings.update(LimitSettings().as_dict())
        if limits:
            settings.update(limits)
        self.state.limiter.reset()
        self.state.crash.disarm()
        if self.state.notifier is not None:
            self.state.notifier.clear()
        return fresh

    def arm_crash(self, pid: int, *, request: int, moment: Literal["before", "after"] = "before") -> None:
        """SIGKILL `pid` at the `request`-th Graph request from now: `before` it runs or `after` it ran and
        before its reply is sent (emulator/crash.py). `crash_fired` says whether it happened."""
        self.state.crash.arm(pid, request, moment)

    @property
    def crash_fired(self) -> bool:
        return self.state.crash.fired

    def start(self) -> EmulatorServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self.control.close()
        self._server.stop()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WebhookReceiver:
    """A notification endpoint for tests: answers the validation handshake and records deliveries.

    `mode`: "echo" (correct), "encoded" (echoes the URL-encoded token), "wrong" (another body),
    "json" (right token as application/json), "error" (500). `delay` (seconds) slows every answer;
    `status` is the answer to deliveries.
    """

    def __init__(self, *, mode: str = "echo", delay: float = 0.0, status: int = 202) -> None:
        self.mode = mode
        self.delay = delay
        self.status = status
        self.validations: list[str] = []
        self.notifications: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        self._server = _ThreadedServer(app)

    @property
    def url(self) -> str:
        return f"{self._server.root_url}/hook"

    def url_for(self, path: str) -> str:
        return f"{self._server.root_url}/{path.lstrip('/')}"

    async def _handle(self, request: Request) -> Response:
        try:
            raw = await request.body()
        except ClientDisconnect:
            return Response(status_code=499)
        if self.delay:
            await asyncio.sleep(self.delay)
        token = request.query_params.get("validationToken")
        if token is not None:
            with self._lock:
                self.validations.append(token)
            if self.mode == "encoded":
                raw = request.url.query.split("validationToken=", 1)[1].split("&", 1)[0]
                return PlainTextResponse(raw)
            if self.mode == "wrong":
                return PlainTextResponse("not-the-token")
            if self.mode == "json":
                return Response(f'"{token}"', media_type="application/json")
            if self.mode == "error":
                return PlainTextResponse("boom", status_code=500)
            return PlainTextResponse(token)
        payload = json.loads(raw)
        with self._lock:
            self.deliveries.append({"path": request.url.path, "query": dict(request.query_params), "payload": payload})
            self.notifications.extend(payload.get("value", []))
        return Response(status_code=self.status)

    def reset(self, *, mode: str = "echo", delay: float = 0.0, status: int = 202) -> WebhookReceiver:
        """Forget what was received and answer normally again (reuse one receiver across tests)."""
        with self._lock:
            self.mode, self.delay, self.status = mode, delay, status
            self.validations.clear()
            self.notifications.clear()
            self.deliveries.clear()
        return self

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.notifications) >= count:
                    return list(self.notifications)
            time.sleep(0.02)
        with self._lock:
            return list(self.notifications)

    def __enter__(self) -> WebhookReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


class EmulatorProcess:
    """The emulator in its own process on a free 127.0.0.1 port (benchmarks: no GIL shared with the client).

    `with EmulatorProcess("--seed", "1", "--guests", "100000", "--no-limits") as em:` starts
    `python -m emulator` with those arguments, waits until it answers, and stops it afterwards.
    """

    def __init__(self, *arguments: str, start_timeout: float = 300.0) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.arguments = arguments
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[str] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1.0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> EmulatorProcess:
        root = Path(__file__).resolve().parents[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(self.port), *self.arguments],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError("the emulator exited during start-up")
                try:
                    client.get(f"{self.root_url}/_emulator/health").raise_for_status()
                    return self
                except httpx.TransportError:
                    time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the emulator did not answer within {self.start_timeout:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
