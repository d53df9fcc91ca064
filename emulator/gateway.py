"""The Graph front door: auth, request log, faults, throttling, routing and Graph's response headers.

`Gateway.process` runs one Graph request from start to finish and returns a `Reply`; the ASGI entry
point and each inner request of a `$batch` both go through it, so batch items are authenticated,
throttled and logged exactly like top-level requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import struct
import uuid
from email.utils import format_datetime as http_date
from typing import Any
from urllib.parse import parse_qsl, unquote

from emulator.errors import GraphError, error_body
from emulator.http import GRAPH_ROOT, TRANSPORT_KEY, Ctx, Reply, Route, dumps
from emulator.limits import Fault, resource_units
from emulator.partner_directory import partner_of, serve, token_tenant
from emulator.state import EmulatorState

log = logging.getLogger("emulator")

NO_BODY = frozenset({204, 304})  # statuses whose answer ends at the headers, whatever Content-Length says
_FAULT_MESSAGES = {
    429: ("TooManyRequests", "Too many requests. The service is under heavy load."),
    500: ("InternalServerError", "An internal server error occurred (injected fault)."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable (injected fault)."),
    504: ("GatewayTimeout", "The gateway did not receive a timely response (injected fault)."),
}


class Gateway:
    def __init__(self, state: EmulatorState, routes: list[Route]) -> None:
        self.state = state
        self.routes = routes
        state.gateway = self

    # ---- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host") or "127.0.0.1"
        base = f"{scope.get('scheme', 'http')}://{host}"
        raw_path = scope.get("raw_path")
        path = unquote(raw_path.decode("latin-1")) if raw_path else scope["path"]
        query_string = scope.get("query_string", b"").decode("latin-1")
        reply = await self.process(scope["method"], path, query_string, headers, bytes(body), base)
        if reply.drop and (reply.status in NO_BODY or scope["method"] == "HEAD"):
            reply.reset = True  # nothing to cut short: HTTP ends such an answer at its headers, so send none
        if reply.reset:
            _reset_connection(scope.get(TRANSPORT_KEY))
            return
        if reply.hold and await _client_left_within(receive, reply.hold):
            return  # the client timed out; the change stands
        await self._send(reply, send, scope["method"])

    async def _send(self, reply: Reply, send: Any, method: str) -> None:
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        if reply.content_type:
            raw_headers.append((b"content-type", reply.content_type.encode()))
        if reply.drop:
            # Promise a body and close the connection before it arrives: a dropped connection.
            raw_headers.append((b"content-length", str(len(reply.body) + 1024).encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": reply.body[: len(reply.body) // 2], "more_body": True})
            return
        raw_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body if method != "HEAD" else b""})

    # ---- one request --------------------------------------------------------------------------
    async def process(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes,
        base: str,
        *,
        in_batch: bool = False,
    ) -> Reply:
        state = self.state
        tenant = state.tenant
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id") or request_id
        query = parse_qsl(query_string, keep_blank_values=True)
        entry: dict[str, Any] | None = None
        if state.log_requests:
            entry = {
                "method": method,
                "path": path,
                "query": dict(query),
                "query_string": unquote(query_string),
                "headers": {k: ("Bearer ***" if k == "authorization" and v else v) for k, v in headers.items()},
                "body": _loggable_body(body),
                "batch": in_batch,
                "time": tenant.now_iso(),
                "request_id": request_id,
                "status": None,
                "tenantId": token_tenant(headers) or tenant.id,  # whose directory the token is for
            }
            state.request_log.append(entry)
        ctx = Ctx(
            state=state,
            method=method,
            path=path[len(GRAPH_ROOT) :] if path.startswith(GRAPH_ROOT) else path,
            query=query,
            headers=headers,
            body=body,
            base=base,
            request_id=request_id,
            client_request_id=client_request_id,
            in_batch=in_batch,
        )
        crash = state.crash.arrived()  # test machinery (emulator/crash.py)
        try:
            if crash == "before":
                state.crash.fire()
                raise GraphError(
                    503, "serviceNotAvailable", "The client was killed before this request ran (crash test)."
                )
            reply = await self._dispatch(ctx, path)
        except GraphError as error:
            reply = Reply(error.status, b"", headers=list(error.headers.items()))
            reply.body = dumps(error_body(error.code, error.message, tenant.now_iso(), request_id, client_request_id))
        except Exception as error:  # a bug in the emulator: still answer like Graph, and log it
            log.exception("emulator error on %s %s", method, path)
            reply = Reply(500)
            reply.body = dumps(
                error_body(
                    "InternalServerError", f"Emulator error: {error!r}", tenant.now_iso(), request_id, client_request_id
                )
            )
        reply.headers.extend(
            [
                ("request-id", request_id),
                ("client-request-id", client_request_id),
                (
                    "x-ms-ags-diagnostic",
                    '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"1",'
                    '"ScaleUnit":"000","RoleInstance":"EMU"}}',
                ),
                ("Date", http_date(tenant.now(), usegmt=True)),
                ("OData-Version", "4.0"),
            ]
        )
        if entry is not None:
            entry["status"] = reply.status
            entry["throttled"] = reply.status == 429
        if crash == "after":
            state.crash.fire()
        return reply

    async def _dispatch(self, ctx: Ctx, full_path: str) -> Reply:
        state = self.state
        if not full_path.startswith(GRAPH_ROOT + "/") and full_path != GRAPH_ROOT:
            raise GraphError(400, "BadRequest", f"Invalid version: {full_path.strip('/').split('/')[0]}")
        state.tenant.expire_deleted()
        fault = Fault()
        if not (ctx.in_batch and ctx.path.lower() == "/$batch"):
            fault = state.faults.draw(ctx.path, ctx.method, allow_delay=not ctx.in_batch)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.reset:  # before anything is looked at or changed
                return Reply(0, reset=True)
            if fault.status:
                code, message = _FAULT_MESSAGES.get(fault.status, ("InjectedFault", "Injected fault."))
                extra = {}
                if fault.status in (429, 503):
                    extra["Retry-After"] = state.limiter.retry_after_text(1.0 * state.limiter.settings.time_scale)
                if fault.status == 429:
                    extra["x-ms-throttle-information"] = "CPULimitExceeded"
                raise GraphError(fault.status, code, message, extra)
        self._authenticate(ctx)
        partner = partner_of(ctx)
        if partner is not None:  # a token issued for a partner's tenant: their directory answers
            return await serve(ctx, partner)
        route, params = self._match(ctx)
        ctx.params = params
        assert route.cost is not None
        units = resource_units(route.cost, ctx.options)
        decision = state.limiter.charge(
            app_id=ctx.app_id,
            tenant_id=state.tenant.id,
            size_class=state.tenant.size_class,
            cost=route.cost,
            resource_units=units,
            sign_in_activity=_selects_sign_in_activity(ctx),
        )
        if not decision.allowed:
            raise GraphError(
                429,
                "TooManyRequests",
                f"Too many requests. {decision.information}: retry after the Retry-After interval.",
                dict(decision.headers),
            )
        try:
            reply = await route.handler(ctx)
        except GraphError as error:
            error.headers.update(dict(decision.headers))  # x-ms-resource-unit on errors too
            state.faults.withdraw(fault)  # a refusal changed nothing: its answer is sent, not lost
            raise
        reply.headers.extend(decision.headers)
        reply.drop = fault.drop
        reply.hold = fault.hold
        return reply

    def _authenticate(self, ctx: Ctx) -> None:
        header = ctx.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty." if not header else "Access token validation failure. Invalid audience.",
                {
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                    'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
                },
            )
        # Any non-empty token is accepted; distinct tokens stand for distinct apps (throttling buckets).
        ctx.app_id = str(uuid.UUID(bytes=hashlib.sha256(token.strip().encode()).digest()[:16]))

    def _match(self, ctx: Ctx) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.routes:
            match = route.regex.match(ctx.path)
            if match is None:
                continue
            if route.method != ctx.method:
                allowed.append(route.method)
                continue
            return route, match.groupdict()
        if allowed:
            raise GraphError(
                405, "Request_BadRequest", f"The HTTP method '{ctx.method}' is not allowed for the request target."
            )
        segment = ctx.path.strip("/").split("/")[-1] if ctx.path.strip("/") else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def _reset_connection(transport: Any) -> None:
    """Close the connection with a TCP reset and no response bytes at all (an injected `reset`).

    ASGI has no message for this, so it uses the server's transport (`EmulatorApp` puts uvicorn's in the
    scope); SO_LINGER 0 makes the close a reset rather than an orderly FIN.
    """
    if transport is None:
        raise RuntimeError("an injected reset needs uvicorn's transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _client_left_within(receive: Any, seconds: float) -> bool:
    """Hold a response: True as soon as the client disconnects, False when `seconds` pass first."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), seconds)
    except TimeoutError:
        return False
    return True


def _selects_sign_in_activity(ctx: Ctx) -> bool:
    select = ctx.options.get("$select", "")
    filter_text = ctx.options.get("$filter", "")
    return "signinactivity" in select.lower() or "signinactivity" in filter_text.lower()


def _loggable_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body[:2048].decode("utf-8", "replace")
