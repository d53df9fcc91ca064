"""Change notifications for users: validation handshake, batched delivery, retries, slow-endpoint rules.

Delivery runs in a background task on the server's event loop, so Graph calls never wait for a
webhook or a storage queue. Every delivery attempt is recorded (status, latency, slow/ok against the 3 s
rule) for tests. All real-time windows here are multiplied by the limits' `time_scale`.

Subscriptions whose URL is `EventGrid:?…` are delivered through Event Grid instead (emulator/eventgrid.py):
one CloudEvent per change and per lifecycle event, one storage-queue message each, no handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from emulator import eventgrid
from emulator.clock import format_datetime, parse_datetime
from emulator.eventgrid import EventGridRouter, is_event_grid_url
from emulator.tenant import CHANGE_DELETED, Change, Tenant

if TYPE_CHECKING:
    from emulator.state import EmulatorState

log = logging.getLogger("emulator.notifications")

VALIDATION_DEADLINE = 10.0  # seconds to echo validationToken (docs/graph-contract.md#change-notifications)
DELIVERY_TIMEOUT = 3.0  # webhook must answer 2xx within 3 s
SLOW_THRESHOLD = 2.9  # a publish time above 2900 ms counts as slow
SLOW_MIN_SAMPLE, SLOW_FLAG_RATIO, SLOW_DROP_RATIO = 100, 0.10, 0.15
SLOW_WINDOW = 600.0  # evaluation window flushed every 10 minutes; flagged URLs are delayed 10 minutes
RETRY_DELAYS = (10.0, 60.0, 600.0)  # emulator choice for "retries multiple times for up to 4 hours"
BATCH_WINDOW = 0.05  # changes arriving within 50 ms share one POST per URL


@dataclass(slots=True)
class _Pending:
    url: str
    item: dict[str, Any]
    changed_at: float  # monotonic time of the change
    kind: str  # change | lifecycle (webhook POSTs) | eventgrid (one CloudEvent, item is the event)
    attempt: int = 0


@dataclass(slots=True)
class _UrlStats:
    window_start: float
    total: int = 0
    slow: int = 0
    flagged_until: float = 0.0

    def ratio(self) -> float:
        return self.slow / self.total if self.total else 0.0


def validation_token() -> str:
    # Shaped like Graph's token: spaces and colons make a URL-encoded echo fail, as it must.
    return f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"


class Notifier:
    def __init__(self, state: EmulatorState, event_grid: EventGridRouter | None = None) -> None:
        self.state = state
        self.event_grid = event_grid or EventGridRouter()
        self._topic_locks: dict[str, asyncio.Lock] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.validations: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._backlog: list[_Pending] = []
        self._stats: dict[str, _UrlStats] = {}
        self._inflight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.attach(state.tenant)

    # ---- wiring -------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return self.state.limiter.settings.time_scale

    def attach(self, tenant: Tenant, previous: Tenant | None = None) -> None:
        if previous is not None and self._on_change in previous.listeners:
            previous.listeners.remove(self._on_change)
        tenant.listeners.append(self._on_change)
        self._stats.clear()

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=None)
        for pending in self._backlog:
            self._queue.put_nowait(pending)
        self._backlog.clear()
        self._task = asyncio.create_task(self._run(), name="emulator-notifier")

    async def stop(self) -> None:
        tenant = self.state.tenant
        if self._on_change in tenant.listeners:
            tenant.listeners.remove(self._on_change)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.event_grid.close()

    @property
    def idle(self) -> bool:
        return (self._queue is None or self._queue.empty()) and not self._backlog and self._inflight == 0

    def clear(self) -> None:
        """Forget records and cancel queued or retrying deliveries (a reset must not leak into the next test)."""
        self.deliveries.clear()
        self.validations.clear()
        self._stats.clear()
        self._backlog.clear()
        self.event_grid.reset()
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._cancel_pending()
        else:
            asyncio.run_coroutine_threadsafe(self._cancel_pending_async(), loop).result(timeout=5)
        self.deliveries.clear()

    async def _cancel_pending_async(self) -> None:
        self._cancel_pending()
        await asyncio.sleep(0)

    def _cancel_pending(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()

    # ---- producing ----------------------------------------------------------------------------
    def _on_change(self, change: Change) -> None:
        tenant = self.state.tenant
        if not tenant.subscriptions:
            return
        change_type = "deleted" if change.kind == CHANGE_DELETED else "updated"
        now = tenant.now()
        sequence_number = tenant.journal_position  # this change is the journal's latest entry
        for subscription in list(tenant.subscriptions.values()):
            if parse_datetime(subscription["expirationDateTime"]) <= now:
                continue
            if change_type not in subscription["changeType"].split(","):
                continue
            resource = subscription["resource"].strip("/").lower()
            if resource not in ("users", f"users/{change.user_id}"):
                continue
            url = subscription["notificationUrl"]
            if is_event_grid_url(url):
                event = eventgrid.change_event(
                    subscription,
                    tenant_id=tenant.id,
                    user_id=change.user_id,
                    change_type=change_type,
                    at=change.at,
                    sequence_number=sequence_number,
                )
                self._enqueue(_Pending(url, event, time.monotonic(), "eventgrid"))
                continue
            item = {
                "id": str(uuid.uuid4()),
                "subscriptionId": subscription["id"],
                "subscriptionExpirationDateTime": subscription["expirationDateTime"],
                "clientState": subscription.get("clientState"),
                "changeType": change_type,
                # Exact strings for user notifications are unconfirmed
                # (docs/graph-contract.md#change-notifications); Graph's own examples use this capitalised
                # form. Parse the id from resourceData.id.
                "resource": f"Users/{change.user_id}",
                "tenantId": tenant.id,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.User",
                    "@odata.id": f"Users/{change.user_id}",
                    "id": change.user_id,
                    "organizationId": tenant.id,
                },
            }
            self._enqueue(_Pending(subscription["notificationUrl"], item, time.monotonic(), "change"))

    def _enqueue(self, pending: _Pending) -> None:
        if self._loop is None or self._queue is None:
            self._backlog.append(pending)
            return
        queue = self._queue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            queue.put_nowait(pending)
            return
        try:
            self._loop.call_soon_threadsafe(queue.put_nowait, pending)
        except RuntimeError:  # the server has stopped: nobody is left to deliver to
            log.debug("notification dropped: the emulator's event loop is closed")

    def lifecycle(self, subscription: dict[str, Any], event: str) -> None:
        url = subscription.get("lifecycleNotificationUrl")
        if not url:
            raise ValueError("the subscription has no lifecycleNotificationUrl")
        if event not in eventgrid.LIFECYCLE_TYPES:
            raise ValueError(f"unknown lifecycle event {event!r}: use {', '.join(eventgrid.LIFECYCLE_TYPES)}")
        if is_event_grid_url(url):
            tenant = self.state.tenant
            cloud_event = eventgrid.lifecycle_event(subscription, tenant_id=tenant.id, event=event, at=tenant.now())
            self._enqueue(_Pending(url, cloud_event, time.monotonic(), "eventgrid"))
            return
        item = {
            "subscriptionId": subscription["id"],
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "tenantId": self.state.tenant.id,
            "clientState": subscription.get("clientState"),
            "lifecycleEvent": event,
        }
        self._enqueue(_Pending(url, item, time.monotonic(), "lifecycle"))

    # ---- validation handshake -----------------------------------------------------------------
    async def validate(self, url: str) -> tuple[bool, str]:
        """POST url?validationToken=...; the answer must be 200, text/plain, the decoded token, in 10 s."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        token = validation_token()
        parts = urlsplit(url)
        query = (parts.query + "&" if parts.query else "") + urlencode({"validationToken": token})
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        deadline = VALIDATION_DEADLINE * self.scale
        started = time.monotonic()
        record: dict[str, Any] = {"url": url, "at": self.state.tenant.now_iso()}
        try:
            response = await self._client.post(
                target, content=b"", headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=deadline
            )
        except httpx.TimeoutException:
            record.update(ok=False, reason="timeout", latency_ms=round((time.monotonic() - started) * 1000, 1))
            self.validations.append(record)
            return False, f"no answer within {deadline:g} s"
        except httpx.HTTPError as error:
            record.update(ok=False, reason=f"connection: {error!r}")
            self.validations.append(record)
            return False, f"the endpoint could not be reached ({type(error).__name__})"
        latency = time.monotonic() - started
        record.update(status=response.status_code, latency_ms=round(latency * 1000, 1))
        content_type = response.headers.get("content-type", "")
        if response.status_code != 200:
            reason = f"the endpoint answered {response.status_code}"
        elif response.text != token:
            reason = "the response body must exactly match the URL-decoded validationToken"
        elif not content_type.lower().startswith("text/plain"):
            reason = "the response Content-Type must be text/plain"
        elif latency > deadline:
            reason = f"the answer took longer than {deadline:g} s"
        else:
            record["ok"] = True
            self.validations.append(record)
            return True, ""
        record.update(ok=False, reason=reason)
        self.validations.append(record)
        return False, reason

    # ---- delivery -----------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            first = await queue.get()
            self._inflight += 1
            try:
                await asyncio.sleep(BATCH_WINDOW * min(self.scale, 1.0))
                batch = [first]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                by_url: dict[tuple[str, str], list[_Pending]] = {}
                for pending in batch:
                    by_url.setdefault((pending.url, pending.kind), []).append(pending)
                for (url, kind), items in by_url.items():
                    if kind == "eventgrid":
                        for pending in items:  # one event, one queue message
                            self._spawn(self._deliver_event(pending))
                    else:
                        self._spawn(self._deliver(url, items))
            finally:
                self._inflight -= 1

    def _spawn(self, coroutine: Any) -> None:
        self._inflight += 1
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            self._inflight -= 1

        task.add_done_callback(done)

    def _url_stats(self, url: str, now: float) -> _UrlStats:
        stats = self._stats.get(url)
        window = SLOW_WINDOW * self.scale
        if stats is None or now - stats.window_start > window:
            flagged = stats.flagged_until if stats else 0.0
            stats = _UrlStats(now, flagged_until=flagged)
            self._stats[url] = stats
        return stats

    async def _deliver(self, url: str, items: list[_Pending]) -> None:
        assert self._client is not None
        scale = self.scale
        now = time.monotonic()
        stats = self._url_stats(url, now)
        kind = items[0].kind
        record: dict[str, Any] = {
            "url": url,
            "kind": kind,
            "count": len(items),
            "subscriptionIds": sorted({p.item["subscriptionId"] for p in items}),
            "changeTypes": sorted({p.item.get("changeType") or p.item.get("lifecycleEvent") for p in items}),
            "resourceIds": [p.item.get("resourceData", {}).get("id") for p in items],
            "attempt": items[0].attempt + 1,
            "at": self.state.tenant.now_iso(),
        }
        if kind == "change" and stats.total >= SLOW_MIN_SAMPLE and stats.ratio() >= SLOW_DROP_RATIO:
            record.update(ok=False, dropped=True, reason="endpoint slow for >= 15% of notifications")
            self.deliveries.append(record)
            return
        if kind == "change" and stats.total >= SLOW_MIN_SAMPLE and stats.ratio() >= SLOW_FLAG_RATIO:
            stats.flagged_until = max(stats.flagged_until, now + SLOW_WINDOW * scale)
        if stats.flagged_until > now:
            record["delayed_ms"] = round((stats.flagged_until - now) * 1000, 1)
            await asyncio.sleep(stats.flagged_until - now)
        payload = {"value": [p.item for p in items]}
        started = time.monotonic()
        timeout = DELIVERY_TIMEOUT * scale
        try:
            response = await self._client.post(url, json=payload, timeout=timeout)
            status: int | None = response.status_code
            error = None
        except httpx.TimeoutException:
            status, error = None, "timeout"
        except httpx.HTTPError as failure:
            status, error = None, f"{type(failure).__name__}"
        latency = time.monotonic() - started
        slow = latency > SLOW_THRESHOLD * scale
        ok = status is not None and 200 <= status < 300 and latency <= timeout
        stats.total += len(items)
        stats.slow += len(items) if slow else 0
        record.update(
            status=status,
            error=error,
            ok=ok,
            slow=slow,
            latency_ms=round(latency * 1000, 1),
            since_change_ms=round((started - min(p.changed_at for p in items)) * 1000, 1),
            body=payload,
        )
        self.deliveries.append(record)
        if not ok:
            attempt = items[0].attempt
            if attempt < len(RETRY_DELAYS):
                await asyncio.sleep(RETRY_DELAYS[attempt] * scale)
                for pending in items:
                    pending.attempt = attempt + 1
                await self._deliver(url, items)
            else:
                self.deliveries.append({**record, "discarded": True, "body": None})

    async def _deliver_event(self, pending: _Pending) -> None:
        """Write one CloudEvent to the queue its partner topic is mapped to; retry on queue errors."""
        router = self.event_grid
        event = pending.item
        topic = eventgrid.parse_event_grid_url("notificationUrl", pending.url).partner_topic
        stats = router.stats_for(topic)
        data = event["data"]
        lifecycle_event = data.get("lifecycleEvent")
        record: dict[str, Any] = {
            "url": pending.url,
            "channel": "eventGrid",
            "kind": "lifecycle" if lifecycle_event else "change",
            "partnerTopic": topic,
            "eventType": event["type"],
            "eventId": event["id"],
            "count": 1,
            "subscriptionIds": [data["subscriptionId"]],
            "changeTypes": [lifecycle_event or data["changeType"]],
            "resourceIds": [data.get("resourceData", {}).get("id")],
            "attempt": pending.attempt + 1,
            "at": self.state.tenant.now_iso(),
        }
        destination = router.destination(topic)
        if destination is None:
            # Like a partner topic that was never activated (or has no event subscription): nothing receives it.
            stats.dropped += 1
            record.update(ok=False, dropped=True, reason="the partner topic has no destination queue", queue=None)
            self.deliveries.append(record)
            return
        record["queue"] = destination.queue
        started = time.monotonic()
        lock = self._topic_locks.setdefault(topic.lower(), asyncio.Lock())
        error = None
        async with lock:  # one topic's events reach its queue in the order they happened
            try:
                await router.send(destination, event)
            except Exception as failure:  # any queue error counts as a failed delivery attempt
                error = f"{type(failure).__name__}: {str(failure).splitlines()[0] if str(failure) else ''}"
        record.update(
            ok=error is None,
            error=error,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            since_change_ms=round((started - pending.changed_at) * 1000, 1),
            body=event,
        )
        self.deliveries.append(record)
        if error is None:
            stats.delivered += 1
            return
        stats.failed += 1
        if pending.attempt < len(eventgrid.RETRY_DELAYS):
            await asyncio.sleep(eventgrid.RETRY_DELAYS[pending.attempt] * self.scale)
            pending.attempt += 1
            await self._deliver_event(pending)
        else:
            stats.discarded += 1
            self.deliveries.append({**record, "discarded": True, "body": None})

    def event_grid_statistics(self) -> list[dict[str, Any]]:
        return self.event_grid.describe()

    def url_statistics(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {
            url: {"total": s.total, "slow": s.slow, "slowRatio": round(s.ratio(), 3), "flagged": s.flagged_until > now}
            for url, s in self._stats.items()
        }


def expiry_text(value: Any) -> str:
    return format_datetime(parse_datetime(value))
