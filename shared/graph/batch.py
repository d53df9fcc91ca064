"""JSON `$batch` sent as raw JSON (docs/architecture.md#graph-access; the SDK's batch helpers lose bodies and ids).

Graph evaluates and throttles every inner request separately and never retries them
(docs/graph-contract.md#batching), so this helper does: inner 429s (always) and 503/504 (idempotent items
only) are re-sent in a new batch after the longest `Retry-After`, together with the dependants that failed
with 424 because of them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.graph.costs import FREE, Cost, request_cost
from shared.graph.retry import is_retryable_status, retry_after_seconds

if TYPE_CHECKING:
    from shared.graph.client import Graph

MAX_BATCH = 20  # docs/graph-contract.md#batching
FAILED_DEPENDENCY = 424


@dataclass(frozen=True, slots=True)
class BatchRequest:
    id: str
    method: str
    url: str  # relative to the version root, e.g. "/users/{id}"
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    idempotent: bool | None = None  # None: reads are, writes are not

    def is_idempotent(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method.upper() == "GET"

    def to_json(self, present_ids: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            headers.setdefault("Content-Type", "application/json")
            item["body"] = self.body
        if headers:
            item["headers"] = headers
        depends_on = [d for d in self.depends_on if d in present_ids]
        if depends_on:
            item["dependsOn"] = depends_on
        return item


@dataclass(frozen=True, slots=True)
class BatchResponse:
    id: str
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return self.status < 400


def _cost(requests: Sequence[BatchRequest]) -> Cost:
    total = FREE
    for request in requests:
        path, _, query = request.url.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p) if query else None
        total = total + request_cost(request.method, path, params)
    return total


def _chunks(requests: Sequence[BatchRequest]) -> list[list[BatchRequest]]:
    """Groups of ≤ 20 that keep every dependency chain inside one batch."""
    by_id = {r.id.lower(): r for r in requests}
    if len(by_id) != len(requests):
        raise ValueError("$batch request ids must be unique (case-insensitive)")
    chunks: list[list[BatchRequest]] = []
    placed: dict[str, int] = {}
    for request in requests:
        home = {placed[d.lower()] for d in request.depends_on if d.lower() in placed}
        missing = [d for d in request.depends_on if d.lower() not in by_id]
        if missing:
            raise ValueError(f"$batch request {request.id} depends on unknown ids {missing}")
        if len(home) > 1:
            raise ValueError(f"$batch request {request.id} depends on requests in different batches")
        if home:
            index = home.pop()
            if len(chunks[index]) >= MAX_BATCH:
                raise ValueError(f"$batch dependency chain of {request.id} exceeds {MAX_BATCH} requests")
        else:
            if not chunks or len(chunks[-1]) >= MAX_BATCH:
                chunks.append([])
            index = len(chunks) - 1
        chunks[index].append(request)
        placed[request.id.lower()] = index
    return chunks


async def send_batch(graph: Graph, requests: Sequence[BatchRequest]) -> dict[str, BatchResponse]:
    """Send any number of requests in batches of ≤ 20; return every item's final response by id."""
    results: dict[str, BatchResponse] = {}
    for chunk in _chunks(requests):
        results.update(await _send_chunk(graph, chunk))
    return results


async def _send_chunk(graph: Graph, chunk: list[BatchRequest]) -> dict[str, BatchResponse]:
    results: dict[str, BatchResponse] = {}
    pending = chunk
    deadline = asyncio.get_running_loop().time() + graph.options.retry.budget_seconds
    for _attempt in range(graph.options.retry.max_attempts):
        ids = {r.id for r in pending}
        response = await graph.request(
            "POST",
            "/$batch",
            json_body={"requests": [r.to_json(ids) for r in pending]},
            # The outer POST may be repeated only if every inner request may be.
            idempotent=all(r.is_idempotent() for r in pending),
            cost=_cost(pending),
        )
        for item in json.loads(response.content).get("responses", []):
            headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
            results[item["id"]] = BatchResponse(item["id"], int(item["status"]), headers, item.get("body"))
        retry_ids = _to_retry(pending, results)
        if not retry_ids:
            return results
        waits = [retry_after_seconds(results[i].headers) for i in retry_ids if i in results]
        wait = max((1.0 if w is None else w for w in waits), default=1.0)
        throttled = sum(1 for i in retry_ids if i in results and results[i].status == 429)
        if throttled:
            graph.pacer.on_throttled(wait, throttled)
        if asyncio.get_running_loop().time() + wait > deadline:
            return results
        await asyncio.sleep(wait)
        pending = [r for r in pending if r.id in retry_ids]
    return results


def _to_retry(pending: list[BatchRequest], results: dict[str, BatchResponse]) -> set[str]:
    """Retryable failures plus the dependants that failed (424) only because of them."""
    retry = {r.id for r in pending if r.id in results and is_retryable_status(results[r.id].status, r.is_idempotent())}
    changed = True
    while changed:
        changed = False
        for r in pending:
            result = results.get(r.id)
            if (
                r.id not in retry
                and result is not None
                and result.status == FAILED_DEPENDENCY
                and any(d in retry for d in r.depends_on)
            ):
                retry.add(r.id)
                changed = True
    return retry
