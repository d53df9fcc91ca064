"""POST /$batch: up to 20 requests, dependsOn with 424, each item processed and throttled on its own."""

from __future__ import annotations

import json
import random
from typing import Any

from emulator.errors import bad_request
from emulator.http import Cost, Ctx, Reply, Route, dumps, json_reply

BATCH_MAX = 20  # docs/graph-contract.md#batching
BATCH = Cost(0, 0, service=None)  # the batch itself is free; every inner request is charged
_SKIP_HEADERS = {"date", "request-id", "client-request-id", "x-ms-ags-diagnostic", "odata-version"}


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise bad_request("The batch body must be a JSON object with a 'requests' array.", code="BadRequest")
    requests = payload["requests"]
    if not requests:
        raise bad_request("The batch request must contain at least one request.", code="BadRequest")
    if len(requests) > BATCH_MAX:
        raise bad_request(
            f"The number of batch requests ({len(requests)}) exceeds the limit of {BATCH_MAX}.", code="BadRequest"
        )
    seen: set[str] = set()
    for item in requests:
        if not isinstance(item, dict):
            raise bad_request("Each batch request must be a JSON object.", code="BadRequest")
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise bad_request("Each batch request needs a string 'id'.", code="BadRequest")
        if item_id.lower() in seen:
            raise bad_request(f"Batch request ids must be unique; '{item_id}' is repeated.", code="BadRequest")
        seen.add(item_id.lower())
        if not isinstance(item.get("method"), str) or not isinstance(item.get("url"), str):
            raise bad_request(f"Batch request '{item_id}' needs 'method' and 'url'.", code="BadRequest")
        url = item["url"]
        if "://" in url:
            raise bad_request(f"Batch request '{item_id}' must use a relative URL (got '{url}').", code="BadRequest")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict):
            raise bad_request(f"Batch request '{item_id}' headers must be an object.", code="BadRequest")
        if "body" in item and item["body"] is not None and not any(k.lower() == "content-type" for k in headers):
            raise bad_request(f"Batch request '{item_id}' has a body but no Content-Type header.", code="BadRequest")
    for item in requests:
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or any(not isinstance(d, str) or d.lower() not in seen for d in depends):
            raise bad_request(f"Batch request '{item['id']}' depends on an unknown request id.", code="BadRequest")
    return requests


def _order(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dependencies first; otherwise the order the client sent."""
    by_id = {item["id"].lower(): item for item in requests}
    ordered: list[dict[str, Any]] = []
    state: dict[str, int] = {}

    def visit(item: dict[str, Any]) -> None:
        key = item["id"].lower()
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise bad_request("Batch dependsOn contains a cycle.", code="BadRequest")
        state[key] = 1
        for dep in item.get("dependsOn") or []:
            visit(by_id[dep.lower()])
        state[key] = 2
        ordered.append(item)

    for item in requests:
        visit(item)
    return ordered


async def run_batch(ctx: Ctx) -> Reply:
    if ctx.in_batch:
        raise bad_request("A batch request cannot contain another batch.", code="BadRequest")
    requests = _validate(ctx.json())
    gateway = ctx.state.gateway
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    authorization = ctx.headers.get("authorization", "")
    for item in _order(requests):
        item_id = item["id"]
        failed = [d for d in item.get("dependsOn") or [] if not 200 <= statuses.get(d.lower(), 0) < 300]
        if failed:
            statuses[item_id.lower()] = 424
            responses.append(
                {
                    "id": item_id,
                    "status": 424,
                    "headers": {"Content-Type": "application/json"},
                    "body": {"error": {"code": "FailedDependency", "message": f"Dependency '{failed[0]}' failed."}},
                }
            )
            continue
        url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
        path, _, query = url.partition("?")
        headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        headers.setdefault("authorization", authorization)
        body = item.get("body")
        raw = b"" if body is None else body.encode() if isinstance(body, str) else dumps(body)
        reply = await gateway.process(
            item["method"].upper(), "/v1.0" + path, query, headers, raw, ctx.base, in_batch=True
        )
        statuses[item_id.lower()] = reply.status
        entry: dict[str, Any] = {
            "id": item_id,
            "status": reply.status,
            "headers": {k: v for k, v in reply.headers if k.lower() not in _SKIP_HEADERS},
        }
        if reply.content_type:
            entry["headers"]["Content-Type"] = reply.content_type
        if reply.body:
            entry["body"] = (
                json.loads(reply.body)
                if (reply.content_type or "").startswith("application/json")
                else reply.body.decode()
            )
        responses.append(entry)
    # Graph returns batch responses in any order; shuffle deterministically to keep clients honest.
    random.Random(",".join(item["id"] for item in requests)).shuffle(responses)
    return json_reply({"responses": responses})


ROUTES = [Route("POST", "/$batch", run_batch, BATCH)]
