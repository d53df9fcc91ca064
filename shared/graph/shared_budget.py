"""Graph's per app+tenant budgets shared by every process through the store (docs/store.md, "Shared budget").

Graph counts the app's requests from all Functions instances together, and the Flex Consumption plan cannot
cap instances below 40, so each process pacing against the whole budget would overrun it 40-fold.

One ledger record per (scope, dimension) in the table `pacing` holds the *claims* of all processes: a claim
is `units` a process may start requests with during one *period* (a 20th of the window, at least 0.25 s),
counted in the ledger until `period + grace + window` after it was made. A claim is written with a
conditional update (SQLite row version / Azure ETag) only if the live claims plus it stay within the
budget, and is then spent locally, so the store sees one write per claim, not per request.

Why this keeps every window of Graph's within the budget: the requests Graph sees in a window `[a, a+W]`
were started in claims made in `[a - period - grace, a + W]` (grace: the time a started request needs to
reach Graph, plus clock skew). All of those are still counted when the latest of them is written, and that
write checked their sum. Fixed wall-clock windows with a counter each would not do: both sides of a
boundary could spend a full budget within a moment, and Graph's windows are not aligned to ours.

Units a process did not use are handed back (the claim is shrunk) with its next write or on `close`.
If the store fails, one warning is logged and the process paces against `budget / instances_assumed` with
the same rules in memory, trying the store again after `retry_store_after` seconds; the claims made
meanwhile are written into the ledger on the first write that succeeds. It never stops requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from shared.errors import AlreadyExistsError, ConfigError, StaleVersionError, StoreError
from shared.store.registry import PACING

if TYPE_CHECKING:
    from shared.graph.client import GraphOptions
    from shared.graph.pacer import Budget
    from shared.store.protocol import Store

log = logging.getLogger("guestctl.graph")

TABLE: Final = PACING
DIMENSIONS: Final = ("resource_units", "writes", "reports", "sign_in_activity")  # the order of Pacer._units
PERIODS_PER_WINDOW: Final = 20  # claims live one period: shorter wastes less budget, longer writes less
MIN_PERIOD_SECONDS: Final = 0.25
MIN_GRACE_SECONDS: Final = 0.25
MAX_CLAIMS: Final = 400  # per ledger record; older claims are merged (conservatively) beyond this
MAX_CONFLICTS: Final = 50  # conditional-update retries of one claim before waiting a period
INSTANCES_ASSUMED: Final = 40  # Flex Consumption cannot cap instances below 40


@dataclass(frozen=True, slots=True)
class Plan:
    """What one claim attempt found: the live ledger, whether it changed (a grant or units handed back),
    the units granted, and how long to wait before asking again when nothing could be granted."""

    claims: dict[str, list[float]]
    changed: bool
    granted: int
    wait: float


def plan_claim(
    claims: dict[str, list[float]],
    *,
    claim_id: str,
    need: int,
    size: int,
    capacity: int,
    now: float,
    expires: float,
    give_back: dict[str, int] | None = None,
) -> Plan:
    """The ledger after granting `need`..`size` units (as many as fit), pure so that it is easy to test.

    `claims` maps a claim id to `[units, expiry time]`; expired claims are dropped and `give_back` (claim
    id → unused units) shrinks ours. A request larger than the whole budget is granted alone, as the local
    pacer does.
    """
    live = {key: [float(units), float(until)] for key, (units, until) in claims.items() if until > now}
    returned = False
    for key, unused in (give_back or {}).items():
        if key in live and unused > 0:
            returned = True
            live[key][0] -= unused
            if live[key][0] <= 0:
                del live[key]
    used = sum(units for units, _ in live.values())
    free = capacity - used
    if need <= free:
        granted = int(min(max(size, need), free))
    elif used <= 0:
        granted = need
    else:
        granted = 0
    if not granted:
        return Plan(live, returned, 0, _time_until_free(live, capacity - need, now))
    live[claim_id] = [float(granted), expires]
    return Plan(_merge_oldest(live), True, granted, 0.0)


def _time_until_free(live: dict[str, list[float]], allowed: float, now: float) -> float:
    """Seconds until the live claims sum to at most `allowed` by expiry alone."""
    used = sum(units for units, _ in live.values())
    for units, until in sorted(live.values(), key=lambda claim: claim[1]):
        used -= units
        if used <= allowed:
            return max(until - now, 0.0)
    return 0.0


def _merge_oldest(live: dict[str, list[float]]) -> dict[str, list[float]]:
    """Keep the record small: merge the earliest-expiring claims into one that lasts as long as the later
    (it may only over-count, never under-count)."""
    if len(live) <= MAX_CLAIMS:
        return live
    ordered = sorted(live.items(), key=lambda item: item[1][1])
    extra = len(live) - MAX_CLAIMS + 1
    merged = ordered[: extra + 1]
    units = sum(claim[0] for _, claim in merged)
    result = dict(ordered[extra + 1 :])
    result[f"merged.{uuid.uuid4().hex[:8]}"] = [units, merged[-1][1][1]]
    return result


@dataclass(slots=True)
class _Claim:
    key: str
    units: int
    left: int
    deadline: float  # no request may start with these units after this (local clock)


@dataclass(slots=True)
class _Dimension:
    name: str
    capacity: int
    window: float
    period: float
    grace: float
    size: int
    claims: list[_Claim] = field(default_factory=list)
    unused: dict[str, int] = field(default_factory=dict)  # expired claims' leftovers, to hand back
    local: dict[str, list[float]] = field(default_factory=dict)  # claims made while the store was down

    @property
    def lifetime(self) -> float:
        return self.period + self.grace + self.window

    def expire(self, now: float) -> None:
        """Retire claims past their deadline; adapt the claim size to what they were used for."""
        keep = []
        for claim in self.claims:
            if claim.deadline > now:
                keep.append(claim)
                continue
            if claim.left:
                self.unused[claim.key] = claim.left
                if claim.left * 4 > claim.units * 3:  # mostly unused: claim less next time
                    self.size = max(1, self.size // 2)
        self.claims = keep

    def available(self) -> int:
        return sum(claim.left for claim in self.claims)

    def spend(self, units: int) -> None:
        for claim in sorted(self.claims, key=lambda c: c.deadline):
            taken = min(claim.left, units)
            claim.left -= taken
            units -= taken
            if not units:
                return

    def add(self, key: str, granted: int, now: float) -> None:
        if self.claims and not self.available():  # the previous claim ran out before its period ended
            self.size = min(max(1, self.capacity // 4), self.size * 2)
        self.claims.append(_Claim(key, granted, granted, now + self.period))


class SharedBudget:
    """The budget of `Budget` shared through one store by all processes using the same `scope`."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        budget: Budget,
        *,
        scope: str,
        instances_assumed: int = INSTANCES_ASSUMED,
        clock: Callable[[], float] = time.time,
        retry_store_after: float = 30.0,
        store_timeout: float = 10.0,
    ) -> None:
        self._open_store = open_store
        self._store: Store | None = None
        self.scope = scope
        self.instances_assumed = max(1, instances_assumed)
        self._clock = clock  # wall clock: every process must agree on it
        self.retry_store_after = retry_store_after
        self.store_timeout = store_timeout
        self._owner = uuid.uuid4().hex[:10]
        self._sequence = 0
        self._degraded_until: float | None = None  # set while pacing locally
        self.claims_written = 0  # ledger writes, for benchmarks and tests
        self.conflicts = 0
        self.dimensions = tuple(
            _Dimension(
                name,
                capacity,
                window,
                period=max(window / PERIODS_PER_WINDOW, MIN_PERIOD_SECONDS),
                grace=max(window / PERIODS_PER_WINDOW, MIN_GRACE_SECONDS),
                size=max(1, capacity // 100),
            )
            for name, capacity, window in (
                ("resource_units", budget.resource_units, budget.resource_unit_window),
                ("writes", budget.writes, budget.write_window),
                ("reports", budget.reports, budget.report_window),
                ("sign_in_activity", budget.sign_in_activity, budget.sign_in_activity_window),
            )
        )

    @property
    def degraded(self) -> bool:
        """True while the store is failing and this process paces alone on its share of the budget."""
        return self._degraded_until is not None

    def try_spend(self, units: tuple[int, ...]) -> bool:
        """Spend `units` (one per dimension) from this process's claims if they all fit; else change nothing."""
        now = self._clock()
        for dimension, needed in zip(self.dimensions, units, strict=True):
            if needed:
                dimension.expire(now)
                if dimension.available() < needed:
                    return False
        for dimension, needed in zip(self.dimensions, units, strict=True):
            if needed:
                dimension.spend(needed)
        return True

    async def refill(self, units: tuple[int, ...]) -> None:
        """Claim what is missing for `units`, waiting while the shared budget is spent."""
        for dimension, needed in zip(self.dimensions, units, strict=True):
            if needed:
                dimension.expire(self._clock())
                if dimension.available() < needed:
                    await self._claim(dimension, needed)

    async def _claim(self, dimension: _Dimension, need: int) -> None:
        while True:
            now = self._clock()
            if self._degraded_until is not None and now < self._degraded_until:
                granted, wait = self._claim_locally(dimension, need, now)
            else:
                try:
                    granted, wait = await asyncio.wait_for(self._claim_shared(dimension, need), self.store_timeout)
                except (StoreError, ConfigError, OSError, TimeoutError) as error:
                    self._degrade(error)
                    continue
                if self._degraded_until is not None:
                    self._degraded_until = None
                    log.warning("shared Graph budget: the store answers again; pacing with the other instances")
            if granted:
                return
            await asyncio.sleep(min(max(wait, 0.001), dimension.period))

    def _next_key(self) -> str:
        self._sequence += 1
        return f"{self._owner}.{self._sequence:x}"

    async def _claim_shared(self, dimension: _Dimension, need: int) -> tuple[int, float]:
        if self._store is None:
            self._store = self._open_store()
        store = self._store
        for _ in range(MAX_CONFLICTS):
            record = await store.get(TABLE, self.scope, dimension.name)
            now = self._clock()
            key = self._next_key()
            claims: dict[str, list[float]] = dict(record.data.get("claims", {})) if record else {}
            claims.update({k: v for k, v in dimension.local.items() if v[1] > now})  # made while degraded
            plan = plan_claim(
                claims,
                claim_id=key,
                need=need,
                size=dimension.size,
                capacity=dimension.capacity,
                now=now,
                expires=now + dimension.lifetime,
                give_back=dimension.unused,
            )
            if not plan.changed and not dimension.local:
                return 0, plan.wait
            try:
                written = {"claims": plan.claims}
                if record is None:
                    await store.create(TABLE, self.scope, dimension.name, written)
                else:
                    await store.update(record, written)
            except (StaleVersionError, AlreadyExistsError):
                self.conflicts += 1
                await asyncio.sleep(random.uniform(0, 0.01))  # jitter against lock-step retries
                continue
            self.claims_written += 1
            dimension.unused.clear()
            dimension.local.clear()
            if plan.granted:
                dimension.add(key, plan.granted, now)
            return plan.granted, plan.wait
        return 0, dimension.period  # heavy contention: let the others through first

    def _claim_locally(self, dimension: _Dimension, need: int, now: float) -> tuple[int, float]:
        key = self._next_key()
        plan = plan_claim(
            dimension.local,
            claim_id=key,
            need=need,
            size=dimension.size,
            capacity=max(1, dimension.capacity // self.instances_assumed),
            now=now,
            expires=now + dimension.lifetime,
            give_back=dimension.unused,
        )
        dimension.local = plan.claims
        dimension.unused.clear()
        if plan.granted:
            dimension.add(key, plan.granted, now)
        return plan.granted, plan.wait

    def _degrade(self, error: BaseException) -> None:
        first = self._degraded_until is None
        self._degraded_until = self._clock() + self.retry_store_after
        if first:
            reason = error.one_line() if isinstance(error, StoreError | ConfigError) else type(error).__name__
            log.warning(
                "shared Graph budget: the store failed (%s); pacing this process alone on 1/%d of Graph's "
                "budget (GUESTCTL_INSTANCES_ASSUMED) and trying the store again every %.0f s",
                reason,
                self.instances_assumed,
                self.retry_store_after,
            )

    async def close(self) -> None:
        """Hand back unused units (best effort: they expire on their own anyway) and close the store."""
        if self._store is None:
            return
        if self._degraded_until is None:
            now = self._clock()
            for dimension in self.dimensions:
                dimension.expire(math.inf)
                if dimension.unused:
                    with contextlib.suppress(StoreError, OSError, TimeoutError):
                        await asyncio.wait_for(self._give_back(dimension, now), min(self.store_timeout, 2.0))
        with contextlib.suppress(StoreError, OSError):
            await self._store.close()
        self._store = None

    async def _give_back(self, dimension: _Dimension, now: float) -> None:
        assert self._store is not None
        for _ in range(5):
            record = await self._store.get(TABLE, self.scope, dimension.name)
            if record is None:
                return
            plan = plan_claim(
                record.data.get("claims", {}),
                claim_id="",
                need=0,
                size=0,
                capacity=0,
                now=now,
                expires=now,
                give_back=dimension.unused,
            )
            if not plan.changed:
                return
            try:
                await self._store.update(record, {"claims": plan.claims})
            except StaleVersionError:
                continue
            dimension.unused.clear()
            return


def budget_scope(options: GraphOptions) -> str:
    """Graph's limits are per app and tenant: processes share a budget when these match."""
    scope = f"{options.host}/{options.tenant_id or '-'}/{options.client_id or '-'}"
    return scope[:255]


def shared_budget_for(options: GraphOptions) -> SharedBudget | None:
    """The shared budget GraphOptions ask for (`shared_state`), or None for pacing within this process."""
    if options.shared_state is None:
        return None
    location, prefix = options.shared_state, options.state_prefix

    def open_budget_store() -> Store:
        from shared.store.location import LocationKind, open_store, parse_location

        credential = None
        if parse_location(location).kind is LocationKind.TABLE_ENDPOINT:
            from shared.credentials import azure_credential

            credential = azure_credential(
                options.auth,
                client_id=options.client_id,
                tenant_id=options.tenant_id,
                authority=options.cloud.authority_host,
            )
        return open_store(location, prefix=prefix, credential=credential)

    return SharedBudget(
        open_budget_store, options.budget, scope=budget_scope(options), instances_assumed=options.instances_assumed
    )
