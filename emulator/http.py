"""Request context, replies and routes shared by every Graph endpoint of the emulator."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from emulator.errors import GraphError, bad_request

if TYPE_CHECKING:
    from emulator.state import EmulatorState
    from emulator.tenant import Tenant

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
GRAPH_ROOT = "/v1.0"
_SAFE_PATH = "/()=,$'@:"


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


TRANSPORT_KEY = "emulator.transport"  # the ASGI scope key of the server's transport (EmulatorApp)


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = JSON_CONTENT_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)
    drop: bool = False  # fault injection: close the connection mid-response
    reset: bool = False  # fault injection: reset the connection, no response at all
    hold: float = 0.0  # fault injection: seconds to hold the response (until the client gives up)

    @property
    def payload(self) -> Any:
        if not self.body or not (self.content_type or "").startswith("application/json"):
            return self.body.decode() if self.body else None
        return json.loads(self.body)


def json_reply(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, dumps(payload), JSON_CONTENT_TYPE, headers or [])


def json_collection_reply(head: dict[str, Any], items: list[str]) -> Reply:
    """A collection whose items are already JSON text: `head` fields, then `"value": [items]`."""
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1]
    separator = "," if head else ""
    return Reply(200, f'{text}{separator}"value":[{",".join(items)}]}}'.encode(), JSON_CONTENT_TYPE)


def no_content() -> Reply:
    return Reply(204, b"", None)


@dataclass(slots=True)
class Cost:
    """Throttling cost of a request (docs/graph-contract.md#throttling); `service=None`: no identity bucket applies."""

    ru: int = 1
    writes: int = 0
    service: str | None = "identity"  # identity | reports | None


Handler = Callable[["Ctx"], Awaitable[Reply]]


@dataclass(slots=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    cost: Cost | None = None
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = "^"
        for part in re.split(r"(\{[a-z_]+\})", self.pattern.lower()):
            if part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        # Literal segments match in any case (Graph's are case-insensitive); parameters keep their case
        # (message ids, for one, are case-sensitive).
        self.regex = re.compile(regex + "/?$", re.IGNORECASE)
        if self.cost is None:
            self.cost = Cost(1, 0) if self.method == "GET" else Cost(1, 1)


class Ctx:
    """One Graph request as handlers see it (also used for each inner request of a $batch)."""

    __slots__ = (
        "app_id",
        "base",
        "body",
        "client_request_id",
        "headers",
        "in_batch",
        "method",
        "options",
        "params",
        "path",
        "query",
        "request_id",
        "state",
    )

    def __init__(
        self,
        *,
        state: EmulatorState,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
        base: str,
        request_id: str,
        client_request_id: str,
        in_batch: bool = False,
    ) -> None:
        self.state = state
        self.method = method
        self.path = path  # as sent, after /v1.0, percent-decoded
        self.query = query
        self.headers = headers
        self.body = body
        self.base = base  # scheme://host
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.in_batch = in_batch
        self.params: dict[str, str] = {}
        self.app_id = ""
        self.options: dict[str, str] = {}
        for key, value in query:
            lowered = key.lower()
            if lowered.startswith("$"):
                self.options[lowered] = value

    @property
    def tenant(self) -> Tenant:
        return self.state.tenant

    @property
    def eventual(self) -> bool:
        """`ConsistencyLevel: eventual` turns on advanced queries (docs/graph-contract.md#advanced-queries)."""
        return self.headers.get("consistencylevel", "").strip().lower() == "eventual"

    def json(self) -> Any:
        if not self.body:
            raise bad_request(
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.", code="BadRequest"
            )
        try:
            return json.loads(self.body)
        except ValueError:
            raise bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type header is set "
                "and payload is of valid JSON format.",
                code="BadRequest",
            ) from None

    def json_object(self) -> dict[str, Any]:
        payload = self.json()
        if not isinstance(payload, dict):
            raise bad_request("The request body must be a JSON object.", code="BadRequest")
        return payload

    def graph_url(self, path: str, params: list[tuple[str, str]] | None = None) -> str:
        """Absolute URL under /v1.0 on the host the client used (nextLink, deltaLink, @odata.id)."""
        url = f"{self.base}{GRAPH_ROOT}{quote(path, safe=_SAFE_PATH)}"
        if params:
            # Like Graph's own links, values are fully percent-encoded (commas as %2C): kiota treats a
            # nextLink as a URI template and drops bare commas from it.
            url += "?" + urlencode(params, safe="$", quote_via=quote)
        return url

    def context_url(self, fragment: str) -> str:
        return f"{self.base}{GRAPH_ROOT}/$metadata#{fragment}"

    def fail(self, status: int, code: str, message: str) -> GraphError:
        return GraphError(status, code, message)
