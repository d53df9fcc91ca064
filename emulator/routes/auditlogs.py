"""GET /auditLogs/signIns: newest first, pages of up to 1,000, documented filters only, 30-day retention."""

from __future__ import annotations

from typing import Any

from emulator.clock import format_datetime
from emulator.errors import GraphError, unsupported_query
from emulator.http import Cost, Ctx, Reply, Route, json_reply
from emulator.odata import Accessors, Getter, compile_filter, parse_top
from emulator.routes.common import next_link, skip_position
from emulator.schema import SIGN_IN
from emulator.tenant import SIGN_IN_LOG_RETENTION

PAGE_MAX = 1000  # docs/graph-contract.md#sign-in-logs: default and maximum page size
REPORTS = Cost(1, 0, service="reports")


class SignInAccessors(Accessors):
    def value(self, path: str) -> Getter:
        if "/" in path:
            outer, inner = path.split("/", 1)
            return lambda entry: (entry.get(outer) or {}).get(inner)
        return lambda entry: entry.get(path)


SIGN_IN_ACCESSORS = SignInAccessors()


async def list_sign_ins(ctx: Ctx) -> Reply:
    for option in ctx.options:
        if option not in ("$filter", "$top", "$skiptoken"):
            raise unsupported_query(f"Query option '{option}' is not supported by the emulator on signIns.")
    top = parse_top(ctx.options.get("$top"), PAGE_MAX, PAGE_MAX)
    predicate = None
    if "$filter" in ctx.options:
        try:
            predicate = compile_filter(ctx.options["$filter"], SIGN_IN, SIGN_IN_ACCESSORS).predicate
        except GraphError as error:
            # Undocumented filters (crossTenantAccessType, homeTenantId, ...) are refused
            # (docs/graph-contract.md#sign-in-logs).
            raise GraphError(400, "Request_UnsupportedQuery", f"Invalid filter clause: {error.message}") from None
    tenant = ctx.tenant
    horizon = format_datetime(tenant.now() - SIGN_IN_LOG_RETENTION)
    log = tenant.sign_ins
    position = skip_position(ctx)
    index = len(log) - 1 if position < 0 else position - 1
    page: list[dict[str, Any]] = []
    more = False
    while index >= 0:
        entry = log[index]
        if entry["createdDateTime"] < horizon:
            break
        if predicate is None or predicate(entry):
            if len(page) == top:
                more = True
                break
            page.append(entry)
        index -= 1
    body: dict[str, Any] = {"@odata.context": ctx.context_url("auditLogs/signIns")}
    if more:
        body["@odata.nextLink"] = next_link(ctx, index + 1)
    body["value"] = page
    return json_reply(body)


ROUTES = [Route("GET", "/auditlogs/signins", list_sign_ins, REPORTS)]
