"""Graph's throttling limits (docs/graph-contract.md#throttling) and deterministic fault injection.

Windows run on the real monotonic clock, multiplied by `time_scale`: with `time_scale=0.01` a 10 s
resource-unit window lasts 0.1 s, so a benchmark sees the same shape of throttling in seconds.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from emulator.http import Cost

RU_QUOTA = {"S": 3500, "M": 5000, "L": 8000}  # resource units per 10 s per app+tenant
RU_WINDOW = 10.0
WRITE_QUOTA, WRITE_WINDOW = 3000, 150.0  # writes per 2 min 30 s per app+tenant
TENANT_WRITE_QUOTA, TENANT_WRITE_WINDOW = 18000, 300.0  # writes per 5 min per tenant, all apps
REPORTS_QUOTA, REPORTS_WINDOW = 5, 10.0  # identity and access reports: 5 requests per 10 s
SIGN_IN_ACTIVITY_QUOTA, SIGN_IN_ACTIVITY_WINDOW = 10, 60.0  # GET signInActivity: 10 per minute


@dataclass(slots=True)
class LimitSettings:
    enabled: bool = False
    time_scale: float = 1.0
    # "GET signInActivity: 10 requests per minute" may or may not cover /users?$select=signInActivity
    # (unconfirmed); docs/graph-contract.md#throttling says to budget for it, so the emulator applies it unless
    # turned off.
    sign_in_activity_limit: bool = True
    ru_quota: dict[str, int] = field(default_factory=lambda: dict(RU_QUOTA))
    write_quota: int = WRITE_QUOTA
    tenant_write_quota: int = TENANT_WRITE_QUOTA
    reports_quota: int = REPORTS_QUOTA
    sign_in_activity_quota: int = SIGN_IN_ACTIVITY_QUOTA

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown limit setting '{key}'")
            setattr(self, key, value)
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class TokenBucket:
    """Capacity `quota`, refilled continuously over `window` seconds."""

    __slots__ = ("capacity", "stamp", "tokens", "window")

    def __init__(self, capacity: float, window: float) -> None:
        self.capacity = capacity
        self.window = window
        self.tokens = capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.capacity / self.window)
            self.stamp = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` tokens are available (0 when they already are)."""
        self.refill(now)
        if self.tokens >= amount:
            return 0.0
        return (amount - self.tokens) * self.window / self.capacity

    def take(self, amount: float) -> None:
        self.tokens -= amount

    @property
    def used_fraction(self) -> float:
        return 1.0 - self.tokens / self.capacity


@dataclass(slots=True)
class Decision:
    allowed: bool
    headers: list[tuple[str, str]]
    retry_after: float = 0.0
    information: str = ""


class Limiter:
    """Token buckets per (app, tenant) for resource units, writes, reports and signInActivity."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _bucket(self, key: tuple[str, ...], quota: int, window: float) -> TokenBucket:
        scaled = window * self.settings.time_scale
        bucket = self._buckets.get(key)
        if bucket is None or bucket.capacity != quota or bucket.window != scaled:
            bucket = TokenBucket(quota, scaled)
            self._buckets[key] = bucket
        return bucket

    def retry_after_text(self, seconds: float) -> str:
        """Graph sends whole seconds (at least 1); under a time scale the value is scaled and decimal."""
        scale = self.settings.time_scale
        if scale == 1.0:
            return str(max(1, math.ceil(seconds)))
        return f"{max(seconds, scale):.3f}"

    def charge(
        self,
        *,
        app_id: str,
        tenant_id: str,
        size_class: str,
        cost: Cost,
        resource_units: int,
        sign_in_activity: bool,
    ) -> Decision:
        headers: list[tuple[str, str]] = []
        if cost.service == "identity":
            headers.append(("x-ms-resource-unit", str(resource_units)))
        if not self.settings.enabled or cost.service is None:
            return Decision(True, headers)
        settings = self.settings
        now = time.monotonic()
        with self._lock:
            needs: list[tuple[TokenBucket, float, str, str]] = []
            if cost.service == "identity":
                ru = self._bucket(("ru", app_id, tenant_id), settings.ru_quota[size_class], RU_WINDOW)
                needs.append(
                    (
                        ru,
                        resource_units,
                        "ResourceUnitLimitExceeded",
                        f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}",
                    )
                )
                if cost.writes:
                    writes = self._bucket(("w", app_id, tenant_id), settings.write_quota, WRITE_WINDOW)
                    needs.append(
                        (
                            writes,
                            cost.writes,
                            "WriteLimitExceeded",
                            f"Tenant_Application/ReadWrite/{app_id}/{tenant_id}",
                        )
                    )
                    tenant_writes = self._bucket(("tw", tenant_id), settings.tenant_write_quota, TENANT_WRITE_WINDOW)
                    needs.append((tenant_writes, cost.writes, "WriteLimitExceeded", f"Tenant/ReadWrite/{tenant_id}"))
                if sign_in_activity and settings.sign_in_activity_limit:
                    activity = self._bucket(
                        ("sia", app_id, tenant_id), settings.sign_in_activity_quota, SIGN_IN_ACTIVITY_WINDOW
                    )
                    needs.append(
                        (
                            activity,
                            1,
                            "ResourceUnitLimitExceeded",
                            f"Tenant_Application/Read/{app_id}/{tenant_id}/signInActivity",
                        )
                    )
            elif cost.service == "reports":
                reports = self._bucket(("rep", app_id, tenant_id), settings.reports_quota, REPORTS_WINDOW)
                needs.append(
                    (reports, 1, "ResourceUnitLimitExceeded", f"Tenant_Application/Read/{app_id}/{tenant_id}/reports")
                )
            worst = max(needs, key=lambda need: need[0].wait_for(need[1], now), default=None)
            if worst is not None:
                wait = worst[0].wait_for(worst[1], now)
                if wait > 0:
                    return Decision(
                        False,
                        [
                            ("Retry-After", self.retry_after_text(wait)),
                            ("x-ms-throttle-scope", worst[3]),
                            ("x-ms-throttle-information", worst[2]),
                            *headers,
                        ],
                        wait,
                        worst[2],
                    )
            for bucket, amount, _, _ in needs:
                bucket.take(amount)
            if cost.service == "identity" and needs:
                used = needs[0][0].used_fraction
                if used > 0.8:
                    headers.append(("x-ms-throttle-limit-percentage", f"{min(used, 1.8):.1f}"))
        return Decision(True, headers)


def resource_units(cost: Cost, options: dict[str, str]) -> int:
    """Documented modifiers: $select −1, $expand +1, $top < 20 −1, never below 1."""
    units = cost.ru
    if cost.writes:
        return max(units, 1)
    if "$select" in options:
        units -= 1
    if "$expand" in options:
        units += 1
    top = options.get("$top")
    if top is not None and top.isdigit() and int(top) < 20:
        units -= 1
    return max(units, 1)


# ---- faults --------------------------------------------------------------------------------------


@dataclass(slots=True)
class FaultSettings:
    """Rates are probabilities per Graph request; the draw sequence is fixed by `seed`."""

    seed: int = 0
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_504: float = 0.0
    drop_rate: float = 0.0  # the change is made, then the connection breaks mid-body (the response is lost)
    reset_rate: float = 0.0  # the connection is reset before the request is handled (nothing changes)
    timeout_rate: float = 0.0  # the change is made, the response is held `timeout_ms` (the client gives up)
    timeout_ms: float = 120_000.0  # longer than any client's timeout (guestctl's default is 30 s)
    latency_ms: tuple[float, float] | None = None  # uniform added latency, e.g. (150, 300)
    latency_rate: float = 1.0  # share of requests that get the added latency
    slow_rate: float = 0.0
    slow_ms: float = 5000.0
    path_prefix: str | None = None  # only requests whose path (after /v1.0) starts with this
    method: str | None = None  # only requests with this HTTP method (e.g. "DELETE")
    sequence: list[int] = field(default_factory=list)  # next statuses to force, e.g. [429, 503]

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault setting '{key}'")
            if key == "latency_ms" and value is not None:
                value = (float(value[0]), float(value[1]))
            if key == "sequence":
                value = [int(v) for v in value]
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return bool(
            self.rate_429
            or self.rate_500
            or self.rate_503
            or self.rate_504
            or self.drop_rate
            or self.reset_rate
            or self.timeout_rate
            or self.latency_ms
            or self.slow_rate
            or self.sequence
        )


@dataclass(slots=True)
class Fault:
    status: int = 0  # 0: no injected error
    delay: float = 0.0  # seconds
    drop: bool = False
    reset: bool = False
    hold: float = 0.0  # seconds the response is held after the handler ran (a client timeout)
    record: dict[str, Any] | None = None  # its entry in `FaultInjector.injected`

    @property
    def kind(self) -> str:
        """What `/_emulator/faults/injected` counts: the status, or reset/timeout/drop/slow/latency."""
        if self.reset:
            return "reset"
        if self.status:
            return str(self.status)
        if self.hold:
            return "timeout"
        if self.drop:
            return "drop"
        return "delay"


class FaultInjector:
    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self._rng = random.Random(self.settings.seed)
        self._lock = threading.Lock()
        self.injected: list[dict[str, Any]] = []

    def configure(self, values: dict[str, Any], *, replace: bool = True) -> None:
        with self._lock:
            if replace:
                self.settings = FaultSettings()
            self.settings.update(values)
            self._rng = random.Random(self.settings.seed)

    def draw(self, path: str, method: str, *, allow_delay: bool = True) -> Fault:
        settings = self.settings
        if not settings.active:
            return Fault()
        if settings.path_prefix and not path.lower().startswith(settings.path_prefix.lower()):
            return Fault()
        if settings.method and method.upper() != settings.method.upper():
            return Fault()
        with self._lock:
            fault = Fault()
            if settings.sequence:
                fault.status = settings.sequence.pop(0)
            roll = self._rng.random()
            if not fault.status:
                for status, rate in (
                    (429, settings.rate_429),
                    (500, settings.rate_500),
                    (503, settings.rate_503),
                    (504, settings.rate_504),
                ):
                    if roll < rate:
                        fault.status = status
                        break
                    roll -= rate
            drop_roll, latency_roll, slow_roll = self._rng.random(), self._rng.random(), self._rng.random()
            latency_sample = self._rng.random()
            if allow_delay:
                if settings.latency_ms and latency_roll < settings.latency_rate:
                    low, high = settings.latency_ms
                    fault.delay += (low + (high - low) * latency_sample) / 1000.0
                if slow_roll < settings.slow_rate:
                    fault.delay += settings.slow_ms / 1000.0
                if not fault.status and drop_roll < settings.drop_rate:
                    fault.drop = True
                if settings.reset_rate or settings.timeout_rate:  # extra draws only then: older seeds keep their faults
                    reset_roll, timeout_roll = self._rng.random(), self._rng.random()
                    if not (fault.status or fault.drop):
                        if reset_roll < settings.reset_rate:
                            fault.reset = True
                        elif timeout_roll < settings.timeout_rate:
                            fault.hold = settings.timeout_ms / 1000.0
            if fault.status or fault.drop or fault.delay or fault.reset or fault.hold:
                fault.record = {
                    "path": path,
                    "kind": fault.kind,
                    "status": fault.status,
                    "drop": fault.drop,
                    "delay_ms": round(fault.delay * 1000, 1),
                }
                self.injected.append(fault.record)
            return fault

    def withdraw(self, fault: Fault) -> None:
        """A drop or timeout drawn for a request Graph refused is not applied (the refusal is answered as it
        is), so it is not counted; a delay stays (it happened)."""
        if not (fault.drop or fault.hold) or fault.record is None:
            return
        with self._lock:
            if fault.delay:
                fault.record.update(kind="delay", drop=False)
            else:
                self.injected.remove(fault.record)
