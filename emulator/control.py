"""The `/_emulator/` control API (not Graph, no auth): seed, time, limits, faults, and what happened.

Handlers run on the server's event loop, so every tenant mutation made through here is serialised
with Graph requests.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.activity import record_sign_in
from emulator.clock import parse_datetime
from emulator.routes.invitations import redeem
from emulator.seed import add_guests, make_user, seed_tenant
from emulator.state import EmulatorState
from emulator.tenant import GUEST, Tenant


def tenant_summary(tenant: Tenant) -> dict[str, Any]:
    guests = sum(1 for u in tenant.users.values() if u.userType == GUEST)
    return {
        "tenantId": tenant.id,
        "domain": tenant.domain,
        "displayName": tenant.display_name,
        "verifiedDomains": list(tenant.verified_domains),
        "users": len(tenant.users),
        "guests": guests,
        "members": len(tenant.users) - guests,
        "groups": len(tenant.groups),
        "deletedUsers": len(tenant.deleted),
        "subscriptions": len(tenant.subscriptions),
        "signInLogEntries": len(tenant.sign_ins),
        "sizeClass": tenant.size_class,
        "now": tenant.now_iso(),
        "signInActivityAvailable": tenant.sign_in_activity_available,
        "pimAvailable": tenant.pim_available,
        "externalMfaRequired": tenant.external_mfa_required,
    }


def control_routes(state: EmulatorState) -> list[Route]:
    def ok(payload: Any = None, status: int = 200) -> Response:
        return JSONResponse({"ok": True} if payload is None else payload, status_code=status)

    def problem(message: str, status: int = 400) -> Response:
        return JSONResponse({"error": message}, status_code=status)

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        payload = await request.json()
        return payload if isinstance(payload, dict) else {}

    async def health(request: Request) -> Response:
        return ok({"status": "ok", "tenantId": state.tenant.id})

    async def tenant(request: Request) -> Response:
        if request.method == "PATCH":
            payload = await body(request)
            if "signInActivityAvailable" in payload:
                state.tenant.sign_in_activity_available = bool(payload["signInActivityAvailable"])
            if "pimAvailable" in payload:
                state.tenant.pim_available = bool(payload["pimAvailable"])
            if "externalMfaRequired" in payload:
                state.tenant.external_mfa_required = bool(payload["externalMfaRequired"])
        return ok(tenant_summary(state.tenant))

    async def reset(request: Request) -> Response:
        payload = await body(request)
        seed = payload.get("seed", "demo")
        now = parse_datetime(payload["now"]) if payload.get("now") else None
        fresh = seed_tenant(seed, payload.get("guests"), payload.get("members"), now=now)
        state.replace_tenant(fresh)
        state.request_log.clear()
        state.faults.configure({})
        if state.notifier is not None:
            state.notifier.clear()
        return ok(tenant_summary(fresh))

    async def guests(request: Request) -> Response:
        payload = await body(request)
        count = int(payload.get("count", 1))
        ids = add_guests(state.tenant, count, payload.get("seed", 1))
        return ok({"ids": ids})

    async def users(request: Request) -> Response:
        payload = await body(request)
        try:
            user = make_user(state.tenant, **payload)
        except (ValueError, TypeError) as error:
            return problem(str(error))
        return ok({"id": user.id, "userPrincipalName": user.userPrincipalName}, 201)

    async def redeem_invitation(request: Request) -> Response:
        payload = await body(request)
        tenant = state.tenant
        user = None
        if payload.get("userId"):
            user = tenant.users.get(str(payload["userId"]).lower())
        elif payload.get("inviteRedeemUrl"):
            for code, record in tenant.invitations.items():
                if code in payload["inviteRedeemUrl"]:
                    user = tenant.users.get(record["userId"])
        elif payload.get("email"):
            user = tenant.find_user_by_address(payload["email"])
        if user is None:
            return problem("no invited user matches", 404)
        if user.creationType != "Invitation":
            return problem("the user was not invited")
        redeem(tenant, user)
        return ok({"id": user.id, "externalUserState": user.externalUserState})

    async def sign_ins(request: Request) -> Response:
        payload = await body(request)
        try:
            entry = record_sign_in(
                state.tenant,
                user_id=str(payload["userId"]),
                at=payload.get("at"),
                interactive=payload.get("interactive", True),
                success=payload.get("success"),
                cross_tenant_access_type=payload.get("crossTenantAccessType"),
                home_tenant_id=payload.get("homeTenantId"),
                error_code=payload.get("errorCode"),
            )
        except (KeyError, ValueError) as error:
            return problem(f"invalid sign-in: {error}")
        return ok(entry, 201)

    async def clock(request: Request) -> Response:
        tenant_clock = state.tenant.clock
        try:
            if request.method == "PUT":
                payload = await body(request)
                if payload.get("now"):
                    tenant_clock.set(parse_datetime(payload["now"]), frozen=payload.get("frozen"))
                elif "frozen" in payload:
                    tenant_clock.freeze(bool(payload["frozen"]))
            elif request.method == "POST":
                payload = await body(request)
                tenant_clock.advance(
                    timedelta(
                        days=payload.get("days", 0),
                        hours=payload.get("hours", 0),
                        minutes=payload.get("minutes", 0),
                        seconds=payload.get("seconds", 0),
                    )
                )
        except ValueError as error:
            return problem(str(error))
        state.tenant.expire_deleted()
        return ok({"now": state.tenant.now_iso(), "frozen": tenant_clock.frozen})

    async def limits(request: Request) -> Response:
        settings = state.limiter.settings
        if request.method == "PUT":
            try:
                settings.update(await body(request))
            except (ValueError, TypeError) as error:
                return problem(str(error))
            state.limiter.reset()
        return ok(settings.as_dict())

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            try:
                state.faults.configure(await body(request))
            except (ValueError, TypeError) as error:
                return problem(str(error))
        elif request.method == "DELETE":
            state.faults.configure({})
            state.faults.injected.clear()
        return ok(state.faults.settings.as_dict())

    async def injected(request: Request) -> Response:
        return ok(list(state.faults.injected))

    async def outbox(request: Request) -> Response:
        if request.method == "DELETE":
            state.tenant.outbox.clear()
        kind = request.query_params.get("kind")
        return ok([m for m in state.tenant.outbox if kind is None or m["kind"] == kind])

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            state.request_log.clear()
            return ok([])
        prefix = request.query_params.get("path")
        method = request.query_params.get("method")
        entries = [
            e
            for e in list(state.request_log)
            if (prefix is None or e["path"].lower().startswith(prefix.lower()))
            and (method is None or e["method"] == method.upper())
        ]
        return ok(entries)

    async def deliveries(request: Request) -> Response:
        notifier = state.notifier
        if notifier is None:
            return ok([])
        if request.method == "DELETE":
            notifier.clear()
        return ok(list(notifier.deliveries))

    async def validations(request: Request) -> Response:
        notifier = state.notifier
        return ok(list(notifier.validations) if notifier else [])

    async def notifier_status(request: Request) -> Response:
        notifier = state.notifier
        if notifier is None:
            return ok({"idle": True, "urls": {}})
        return ok(
            {"idle": notifier.idle, "urls": notifier.url_statistics(), "eventGrid": notifier.event_grid_statistics()}
        )

    async def lifecycle(request: Request) -> Response:
        payload = await body(request)
        subscription = state.tenant.subscriptions.get(request.path_params["sub_id"].lower())
        if subscription is None or state.notifier is None:
            return problem("no such subscription", 404)
        event = payload.get("event", "reauthorizationRequired")
        try:
            state.notifier.lifecycle(subscription, event)
        except ValueError as error:
            return problem(str(error))
        if event == "subscriptionRemoved":  # Graph has removed it: it answers 404 from now on
            state.tenant.subscriptions.pop(subscription["id"], None)
        await asyncio.sleep(0)
        return ok()

    async def event_grid_topics(request: Request) -> Response:
        """Map an Event Grid partner topic to a storage queue (its event subscription's destination)."""
        notifier = state.notifier
        if notifier is None:
            return problem("no notifier", 404)
        router = notifier.event_grid
        if request.method == "POST":
            payload = await body(request)
            try:
                router.map(
                    str(payload.get("partnerTopic") or ""),
                    str(payload.get("connectionString") or ""),
                    str(payload.get("queue") or ""),
                )
            except ValueError as error:
                return problem(str(error))
            return ok(router.describe(), 201)
        if request.method == "DELETE" and not router.unmap(request.path_params["topic"]):
            return problem("no such partner topic", 404)
        return ok(router.describe())

    async def ground_truth(request: Request) -> Response:
        return ok(state.tenant.ground_truth)

    async def role_assignment(request: Request) -> Response:
        """{role, principalId, directoryScopeId} or, with "eligible": true, a PIM eligibility
        ({role, principalId, directoryScopeId, start, end}); role: definition id, template id or name."""
        payload = await body(request)
        tenant = state.tenant
        try:
            role = str(payload["role"])
            principal = str(payload["principalId"])
            scope = str(payload.get("directoryScopeId", "/"))
            if payload.get("eligible"):
                start = parse_datetime(payload["start"]) if payload.get("start") else None
                end = parse_datetime(payload["end"]) if payload.get("end") else None
                made = tenant.make_eligible(role, principal, scope, start=start, end=end)
            elif scope == "/" and tenant.role_definition(role).isBuiltIn:
                definition = tenant.role_definition(role)
                directory_role = next(
                    (r for r in tenant.roles.values() if r.roleTemplateId == definition.templateId), None
                )
                if directory_role is None:
                    return problem(f"the built-in role {definition.displayName!r} is not activated in this tenant")
                principal = tenant._principal(principal)  # a user or a role-assignable group
                tenant.assign_role(directory_role, principal)
                return ok({"principalId": principal, "roleDefinitionId": definition.id}, 201)
            else:
                made = tenant.assign_role_scoped(role, principal, scope)
        except (KeyError, ValueError) as error:
            return problem(str(error))
        return ok({"id": made.id, "principalId": made.principalId, "roleDefinitionId": made.roleDefinitionId}, 201)

    async def app_role_assignment(request: Request) -> Response:
        payload = await body(request)
        try:
            made = state.tenant.assign_app_role(
                str(payload["principalId"]),
                resource_id=str(payload["resourceId"]),
                resource_display_name=str(payload.get("resourceDisplayName") or ""),
                app_role_id=str(payload.get("appRoleId") or "00000000-0000-0000-0000-000000000000"),
            )
        except KeyError as error:
            return problem(f"missing or unknown {error}")
        return ok(made, 201)

    async def service_principals(request: Request) -> Response:
        payload = await body(request)
        if not payload.get("appId"):
            return problem("appId is required")
        kind = str(payload.get("servicePrincipalType") or "ManagedIdentity")
        made = state.tenant.add_service_principal(str(payload["appId"]), str(payload.get("displayName") or ""), kind)
        return ok(made, 201)

    async def external_tenants(request: Request) -> Response:
        tenant = state.tenant
        if request.method == "PATCH":
            external = tenant.external_tenants.get(request.path_params.get("tenant_id", "").lower())
            if external is None:
                return problem("no such external tenant", 404)
            payload = await body(request)
            if "directConnectOutbound" in payload:
                external.direct_connect_outbound = bool(payload["directConnectOutbound"])
            if "appConsented" in payload:
                external.app_consented = bool(payload["appConsented"])
        return ok(
            [
                {
                    "tenantId": e.tenant_id,
                    "displayName": e.display_name,
                    "defaultDomainName": e.default_domain,
                    "domains": list(e.domains),
                    "directConnectOutbound": e.direct_connect_outbound,
                    "appConsented": e.app_consented,
                    "users": [{"id": uid, **profile} for uid, profile in e.users.items()],
                }
                for e in tenant.external_tenants.values()
            ]
        )

    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/tenant", tenant, methods=["GET", "PATCH"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/guests", guests, methods=["POST"]),
        Route("/_emulator/users", users, methods=["POST"]),
        Route("/_emulator/invitations/redeem", redeem_invitation, methods=["POST"]),
        Route("/_emulator/signins", sign_ins, methods=["POST"]),
        Route("/_emulator/clock", clock, methods=["GET", "PUT"]),
        Route("/_emulator/clock/advance", clock, methods=["POST"]),
        Route("/_emulator/limits", limits, methods=["GET", "PUT"]),
        Route("/_emulator/faults", faults, methods=["GET", "PUT", "DELETE"]),
        Route("/_emulator/faults/injected", injected, methods=["GET"]),
        Route("/_emulator/outbox", outbox, methods=["GET", "DELETE"]),
        Route("/_emulator/requests", requests, methods=["GET", "DELETE"]),
        Route("/_emulator/deliveries", deliveries, methods=["GET", "DELETE"]),
        Route("/_emulator/validations", validations, methods=["GET"]),
        Route("/_emulator/notifier", notifier_status, methods=["GET"]),
        Route("/_emulator/subscriptions/{sub_id}/lifecycle", lifecycle, methods=["POST"]),
        Route("/_emulator/eventgrid/topics", event_grid_topics, methods=["GET", "POST"]),
        Route("/_emulator/eventgrid/topics/{topic}", event_grid_topics, methods=["DELETE"]),
        Route("/_emulator/ground-truth", ground_truth, methods=["GET"]),
        Route("/_emulator/role-assignments", role_assignment, methods=["POST"]),
        Route("/_emulator/app-role-assignments", app_role_assignment, methods=["POST"]),
        Route("/_emulator/service-principals", service_principals, methods=["POST"]),
        Route("/_emulator/external-tenants", external_tenants, methods=["GET"]),
        Route("/_emulator/external-tenants/{tenant_id}", external_tenants, methods=["PATCH"]),
    ]
