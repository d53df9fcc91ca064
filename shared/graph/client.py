"""The only door to Microsoft Graph (docs/architecture.md#graph-access).

One `Graph` per process and event loop, built lazily on first use (never at import: the Functions cold
start must stay small). Requests are built and sent through msgraph-core/kiota's request adapter (auth,
cloud, allowed hosts, middleware) with kiota's RetryHandler switched off; responses come back as raw
bytes (a `NativeResponseHandler`) and are decoded by the caller into its own records, because parsing
msgraph-sdk models is ~700× slower than JSON (docs/architecture.md#library-facts). Every request passes
the pacer and the one retry layer (`retry.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx

from shared.credentials import (
    AuthMode,
    StaticTokenCredential,
    TenantCredential,
    azure_credential,
    credential_error,
    emulator_token_for,
)
from shared.errors import ConfigError, GraphError, OutcomeUnknownError, UnavailableError, cap
from shared.graph.batch import BatchRequest, BatchResponse, send_batch
from shared.graph.clouds import CLOUDS, Cloud
from shared.graph.costs import Cost, request_cost
from shared.graph.errors import RedactedRequest, graph_error_from_response, redact_url
from shared.graph.pacer import Budget, Pacer
from shared.graph.retry import NOT_SENT_ERRORS, RetryPolicy, send_with_retry

if TYPE_CHECKING:
    from kiota_http.httpx_request_adapter import HttpxRequestAdapter
    from msgraph import GraphServiceClient

    from shared.config import Settings

log = logging.getLogger("guestctl.graph")
T = TypeVar("T")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class GraphOptions:
    """Everything needed to reach one tenant's Graph; built from Settings by `graph_options`."""

    base_url: str  # e.g. https://graph.microsoft.com/v1.0 or http://127.0.0.1:8765/v1.0
    cloud: Cloud = CLOUDS["global"]
    auth: AuthMode = "default"
    tenant_id: str | None = None
    client_id: str | None = None
    emulator_token: str = "emulator-token"
    budget: Budget = field(default_factory=Budget)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_concurrency: int = 16
    timeout_seconds: float = 30.0
    # Store location whose `pacing` table shares the budget with other processes (None: this process only).
    shared_state: str | None = None
    state_prefix: str = "guestctl"
    instances_assumed: int = 40  # the budget's divisor while that store is unreachable

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        loopback = parts.hostname in LOOPBACK_HOSTS
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"GUESTCTL_GRAPH_URL: not an absolute http(s) URL (got {self.base_url!r})")
        if parts.scheme == "http" and not loopback:
            raise ConfigError(
                f"GUESTCTL_GRAPH_URL: plain http is only allowed for a loopback emulator (got {self.base_url})",
                hint="use https, or 127.0.0.1 for the emulator",
            )
        if self.auth == "emulator" and not loopback:
            raise ConfigError(
                f"GUESTCTL_AUTH=emulator sends a static token and is refused for {parts.hostname}",
                hint="use GUESTCTL_AUTH=default or managed-identity for a real tenant",
            )

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def build_credential(options: GraphOptions) -> Any:
    if options.auth == "emulator":
        return StaticTokenCredential(options.emulator_token)
    return azure_credential(
        options.auth, client_id=options.client_id, tenant_id=options.tenant_id, authority=options.cloud.authority_host
    )


def build_url(base_url: str, path_or_url: str, params: Mapping[str, Any] | None = None) -> str:
    """Absolute URL for a Graph path; OData query names keep their `$`, values are percent-encoded."""
    url = path_or_url if "://" in path_or_url else f"{base_url.rstrip('/')}/{path_or_url.lstrip('/')}"
    if params:
        query = urlencode({k: _query_value(v) for k, v in params.items()}, quote_via=quote, safe="$'(),:@/*")
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    return url


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a Graph collection: the raw items and the links that continue it."""

    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None
    count: int | None


@contextlib.contextmanager
def _doubt_on_lost_answer(in_doubt: list[bool]) -> Iterator[None]:
    """Note an attempt that may have reached Graph and whose answer was lost (not one never sent)."""
    try:
        yield
    except httpx.TransportError as error:
        in_doubt[0] = in_doubt[0] or not isinstance(error, NOT_SENT_ERRORS)
        raise


_ON_SENT: ContextVar[Callable[[], None] | None] = ContextVar("guestctl_graph_on_sent", default=None)


class _SignallingTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, which also tells `Graph.request(on_sent=...)` when the request has left.

    Kiota's middleware rebuilds request extensions, so the signal travels in a context variable and is
    attached here, at the bottom of the stack, as httpcore's `trace` extension.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        on_sent = _ON_SENT.get()
        if on_sent is not None:

            async def trace(event: str, info: dict[str, Any]) -> None:
                if event.endswith("send_request_body.complete"):
                    on_sent()

            request.extensions = {**request.extensions, "trace": trace}
        return await super().handle_async_request(request)


class Graph:
    """Graph client for one tenant: `request`, `get_json`, `pages`, `batch`, and `sdk` for request builders."""

    def __init__(self, options: GraphOptions, *, credential: Any = None) -> None:
        self.options = options
        from shared.graph.shared_budget import shared_budget_for

        self.pacer = Pacer(options.budget, max_concurrency=options.max_concurrency, shared=shared_budget_for(options))
        self._credential = credential
        self._adapter: HttpxRequestAdapter | None = None
        self._http: httpx.AsyncClient | None = None
        self._sdk: GraphServiceClient | None = None

    # -- construction -------------------------------------------------------------------------------
    @property
    def adapter(self) -> HttpxRequestAdapter:
        if self._adapter is None:
            self._adapter = self._build_adapter()
        return self._adapter

    def _build_adapter(self) -> HttpxRequestAdapter:
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph_core import BaseGraphRequestAdapter, GraphClientFactory

        options = self.options
        connections = options.max_concurrency
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(options.timeout_seconds, connect=5.0),
            transport=_SignallingTransport(http2=True, limits=limits),
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=self._http,
            # kiota would retry POSTs and sleep up to 179 s on its own; our retry layer decides instead.
            options={RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)},
        )
        if self._credential is None:
            self._credential = build_credential(options)
        auth = AzureIdentityAuthenticationProvider(
            self._credential,
            scopes=[options.cloud.scope],
            # Tokens go to the configured Graph host only. An empty list would mean *every* host.
            allowed_hosts=[options.host],
        )
        adapter = BaseGraphRequestAdapter(auth, http_client=http)
        adapter.base_url = options.base_url.rstrip("/")  # after construction: httpx would add a slash
        return adapter

    @property
    def sdk(self) -> GraphServiceClient:
        """msgraph-sdk request builders on our adapter, for single small objects off hot paths."""
        if self._sdk is None:
            from msgraph import GraphServiceClient

            self._sdk = GraphServiceClient(request_adapter=self.adapter)
        return self._sdk

    async def close(self) -> None:
        await self.pacer.close()
        if self._http is not None:
            await self._http.aclose()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    # -- requests -------------------------------------------------------------------------------------
    def url(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> str:
        return build_url(self.options.base_url, path_or_url, params)

    def relative_path(self, url: str) -> str:
        """`/users/123` for an absolute URL under our base URL (for costs and $batch)."""
        base = urlsplit(self.options.base_url)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise GraphError(
                f"refusing to follow a link to another host: {parts.netloc}",
                hint="Graph links must stay on the configured Graph host",
            )
        path = parts.path
        return path[len(base.path.rstrip("/")) :] if path.startswith(base.path.rstrip("/")) else path

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        cost: Cost | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> httpx.Response:
        """Send one request; return the 2xx response or raise the mapped `GraphError`.

        `idempotent` defaults to True for reads only; pass True for writes that are safe to repeat (PATCH to a
        value, DELETE: its 404 after an attempt whose answer was lost, or a 5xx, is done) so 503/504 may be retried.
        `before_send` runs once, after pacing and just before the first attempt goes out: the place to record
        "about to send" so that a crash leaves the smallest possible window of doubt.
        `on_sent` is called when a request's bytes have been written to the connection (each attempt):
        a caller reading ahead can wait for it before starting CPU work that would hold the request back.
        """
        method = method.upper()
        url = self.url(path_or_url, params)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if cost is None:
            query = urlsplit(url).query
            cost = request_cost(method, self.relative_path(url), dict(parse_qsl(query, True)) if query else None)
        body = json.dumps(json_body).encode() if json_body is not None else None
        described = RedactedRequest(method, url)  # redacted only if a log line or error prints it
        pending_hook = [before_send] if before_send else []
        in_doubt = [False]  # an earlier attempt may have been carried out (its answer lost, or a 5xx)

        async def send_once() -> httpx.Response:
            async with self.pacer.slot(cost):
                if pending_hook:
                    await pending_hook.pop()()
                started = time.perf_counter()
                with _doubt_on_lost_answer(in_doubt):
                    response = await self.adapter.send_primitive_async(
                        _request_information(method, url, body, headers), "bytes", None
                    )
                in_doubt[0] = in_doubt[0] or response.status_code >= 500
                log.debug(
                    "%s → %s in %.0f ms (request-id %s)",
                    described,
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                    response.headers.get("request-id"),
                )
            if response.status_code < 400:
                self.pacer.on_success()
            return response

        token = _ON_SENT.set(on_sent)  # this task's context, this request only: the transport below reads it
        started = time.monotonic()
        try:
            response = await send_with_retry(
                send_once,
                idempotent=idempotent,
                policy=self.options.retry,
                on_throttled=self.pacer.on_throttled,
                describe=described,
            )
        except httpx.TransportError as error:  # the retries are spent: Graph never answered
            if not idempotent and not isinstance(error, NOT_SENT_ERRORS):
                raise self._outcome_unknown(error, method, url) from error
            raise self._unreachable(error, described, time.monotonic() - started) from error
        except Exception as error:
            denied = credential_error(error, self.options.auth, purpose=f"Microsoft Graph at {self.options.host}")
            if denied is None:
                raise
            raise denied from error
        finally:
            _ON_SENT.reset(token)
        deleted = response.status_code == 404 and method == "DELETE" and in_doubt[0]  # by a lost-answer attempt
        if response.status_code >= 400 and not deleted:
            raise graph_error_from_response(response, method, url)
        return response

    def _outcome_unknown(self, error: httpx.TransportError, method: str, url: str) -> OutcomeUnknownError:
        """A write that may have reached Graph: that item fails (the rerun looks it up), not the whole run."""
        return OutcomeUnknownError(
            f"the answer to a write was lost: {_transport_failure(error, self.options)}; it may or may not "
            "have been made",
            method=method,
            url=redact_url(url),
            hint="run again: the next run looks it up before trying again",
        )

    def _unreachable(self, error: httpx.TransportError, described: RedactedRequest, waited: float) -> UnavailableError:
        """A network failure as one line: which host, what went wrong, which setting to check."""
        return UnavailableError(
            f"cannot reach Microsoft Graph at {self.options.host}: {_transport_failure(error, self.options)} "
            f"({cap(str(described), 200)}; gave up after {waited:.0f} s of retries)",
            hint=f"check GUESTCTL_GRAPH_URL / GUESTCTL_CLOUD (now {self.options.base_url}), the network, proxy "
            "and firewall; then run the command again",
        )

    async def get_json(
        self, path_or_url: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.request("GET", path_or_url, params=params, headers=headers)
        return json.loads(response.content)

    async def pages(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Page]:
        """Follow `@odata.nextLink` to the end, one decoded page at a time (constant memory).

        Request headers (e.g. `ConsistencyLevel: eventual`) are re-sent on every page: neither Graph's
        nextLink nor the SDK carries them (docs/architecture.md#library-facts). The final page of a delta round carries
        `delta_link`.
        """
        url: str | None = self.url(path_or_url, params)
        while url:
            document = await self.get_json(url, headers=headers)
            next_link = document.get("@odata.nextLink")
            yield Page(
                items=document.get("value", []),
                next_link=next_link,
                delta_link=document.get("@odata.deltaLink"),
                count=document.get("@odata.count"),
            )
            url = next_link

    async def batch(self, requests: Sequence[BatchRequest]) -> dict[str, BatchResponse]:
        """Send requests through `$batch` (≤ 20 per call) with per-item retry; responses by id."""
        return await send_batch(self, requests)

    async def items(
        self,
        path_or_url: str,
        decode: Callable[[dict[str, Any]], T],
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[list[T]]:
        """`pages` decoded into the caller's records, page by page."""
        async for page in self.pages(path_or_url, params=params, headers=headers):
            yield [decode(item) for item in page.items]


def _transport_failure(error: httpx.TransportError, options: GraphOptions) -> str:
    """What httpx's error means for a person (refused, DNS, TLS, timeout), with its first line kept."""
    detail = cap((str(error).strip().splitlines() or [""])[0], 160)
    if isinstance(error, httpx.ConnectTimeout):
        return "the connection timed out"
    if isinstance(error, httpx.PoolTimeout):
        return "no connection became free in time"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {options.timeout_seconds:.0f} s"
    if isinstance(error, httpx.ConnectError):
        return f"could not connect ({detail or 'no reason given'})"
    return f"the connection failed ({type(error).__name__}{': ' + detail if detail else ''})"


def _request_information(method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None) -> Any:
    from kiota_abstractions.method import Method
    from kiota_abstractions.native_response_handler import NativeResponseHandler
    from kiota_abstractions.request_information import RequestInformation
    from kiota_http.middleware.options import ResponseHandlerOption

    info = RequestInformation()
    info.http_method = Method[method]
    info.url = url
    for name, value in (headers or {}).items():
        info.headers.try_add(name, value)
    if body is not None:
        info.set_stream_content(body, "application/json")
    # Hand back the raw httpx response for every status: we map errors and decode bodies ourselves.
    info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
    return info


# -- one client per process ------------------------------------------------------------------------------
_clients: dict[GraphOptions, tuple[weakref.ref[asyncio.AbstractEventLoop], Graph]] = {}


def graph_options(settings: Settings) -> GraphOptions:
    """GraphOptions from the settings (environment / app settings / CLI flags) and the policy's pacing."""
    cloud = CLOUDS[settings.cloud]
    return GraphOptions(
        base_url=settings.graph_url or cloud.graph_url,
        cloud=cloud,
        auth=settings.auth,
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        budget=Budget.for_tenant(
            settings.tenant_size, settings.budget_fraction, settings.time_scale, settings.sign_in_activity_per_minute
        ),
        retry=RetryPolicy(budget_seconds=settings.retry_budget_seconds),
        max_concurrency=settings.max_concurrency,
        timeout_seconds=settings.graph_timeout_seconds,
        shared_state=settings.state if shares_budget(settings) else None,
        state_prefix=settings.state_prefix,
        instances_assumed=settings.instances_assumed,
    )


def tenant_graph(options: GraphOptions, tenant_id: str) -> Graph:
    """A Graph client for ANOTHER tenant (a partner's), as our multi-tenant app consented there: the same
    Graph host, app and credential kind, tokens requested for `tenant_id` (docs/partners.md#home-ids-from-an-app).

    A managed identity cannot do it (it is single-tenant), so GUESTCTL_AUTH=managed-identity is refused. Its
    pacing is its own (another tenant's limits), never shared through the store.
    """
    tenant_id = tenant_id.lower()
    if options.auth == "managed-identity":
        raise ConfigError(
            f"GUESTCTL_AUTH=managed-identity cannot read tenant {tenant_id}: a managed identity gets tokens for "
            "its own tenant only",
            hint="run with GUESTCTL_AUTH=default and the multi-tenant app registration's certificate or secret "
            "(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH), or use the partner's id file "
            "(home_ids: file): see docs/partners.md",
        )
    partner = dataclasses.replace(
        options, tenant_id=tenant_id, emulator_token=emulator_token_for(tenant_id), shared_state=None
    )
    if options.auth == "emulator":
        return Graph(partner)
    return Graph(partner, credential=TenantCredential(build_credential(partner), tenant_id))


def shares_budget(settings: Settings) -> bool:
    """GUESTCTL_SHARED_BUDGET: `auto` shares through Azure Tables (the Functions app's many instances), not
    through an SQLite file (one CLI run), unless set to `on`; `off` never shares."""
    from shared.store.location import LocationKind, parse_location

    if settings.shared_budget == "auto":
        return parse_location(settings.state).kind is not LocationKind.SQLITE
    return settings.shared_budget == "on"


def get_graph(settings: Settings) -> Graph:
    """The process's Graph client for these settings, built on first use and reused across invocations.

    Keyed by the running event loop: an httpx pool cannot outlive the loop it was made on
    (docs/architecture.md#library-facts).
    """
    options = graph_options(settings)
    loop = asyncio.get_running_loop()
    held = _clients.get(options)
    if held is not None and held[0]() is loop:
        return held[1]
    for stale in [k for k, (owner, _) in _clients.items() if owner() is not loop]:
        del _clients[stale]
    # A weak reference, not id(loop): a new loop can reuse a collected one's id.
    graph = Graph(options)
    _clients[options] = (weakref.ref(loop), graph)
    return graph
