"""The shared budget's ledger rules (pure), and SharedBudget on a real SQLite file with a hand-moved clock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.config import load_settings
from shared.graph import Budget
from shared.graph.client import graph_options
from shared.graph.shared_budget import MAX_CLAIMS, TABLE, Plan, SharedBudget, plan_claim
from shared.store import Store, open_store

NOW = 1_000.0
WRITE = (1, 1, 0, 0)  # resource units, writes, reports, sign-in activity pages


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def plan(claims: dict[str, list[float]], need: int, size: int = 10, **overrides: object) -> Plan:
    arguments: dict[str, object] = {
        "claim_id": "new",
        "need": need,
        "size": size,
        "capacity": 100,
        "now": NOW,
        "expires": NOW + 12,
    }
    return plan_claim(claims, **{**arguments, **overrides})  # type: ignore[arg-type]


def test_a_claim_gets_its_size_while_the_budget_has_room() -> None:
    result = plan({"other": [50, NOW + 5]}, need=1)
    assert (result.granted, result.changed) == (10, True)
    assert result.claims == {"other": [50, NOW + 5], "new": [10, NOW + 12]}


def test_a_claim_gets_only_what_is_left_and_at_least_what_it_needs() -> None:
    assert plan({"other": [95, NOW + 5]}, need=1).granted == 5
    assert plan({"other": [80, NOW + 5]}, need=15, size=4).granted == 15


def test_a_full_ledger_grants_nothing_and_says_when_enough_expires() -> None:
    result = plan({"a": [60, NOW + 2], "b": [40, NOW + 5]}, need=30)
    assert (result.granted, result.changed) == (0, False)
    assert result.wait == pytest.approx(2.0), "once `a` expires, 40 of 100 are used and 30 fit"


def test_expired_claims_no_longer_count() -> None:
    result = plan({"old": [100, NOW - 0.1]}, need=1)
    assert result.granted == 10
    assert "old" not in result.claims


def test_unused_units_are_handed_back() -> None:
    result = plan({"mine": [60, NOW + 5], "gone": [40, NOW + 5]}, need=50, give_back={"mine": 20, "gone": 40})
    assert result.claims["mine"] == [40, NOW + 5]
    assert "gone" not in result.claims
    assert result.granted == 50


def test_handing_back_is_written_even_when_nothing_is_granted() -> None:
    result = plan({"mine": [100, NOW + 5]}, need=10, give_back={"mine": 5})
    assert (result.granted, result.changed) == (0, True)
    assert result.claims == {"mine": [95, NOW + 5]}


def test_a_request_larger_than_the_budget_runs_alone() -> None:
    assert plan({}, need=150).granted == 150
    assert plan({"a": [1, NOW + 5]}, need=150).granted == 0


def test_many_claims_are_merged_without_losing_units_or_shortening_any() -> None:
    claims = {f"c{i}": [1.0, NOW + 1 + i] for i in range(MAX_CLAIMS + 5)}
    result = plan(claims, need=1, size=1, capacity=10_000)
    assert len(result.claims) <= MAX_CLAIMS
    assert sum(units for units, _ in result.claims.values()) == MAX_CLAIMS + 5 + 1
    merged = [claim for key, claim in result.claims.items() if key.startswith("merged.")]
    assert merged
    assert merged[0][1] >= max(until for key, (_, until) in claims.items() if key not in result.claims)


# --- SharedBudget on SQLite ---------------------------------------------------------------------------------

BUDGET = Budget(resource_units=1_000, writes=10, write_window=10.0)


def budget_on(path: Path, clock: Clock, opened: list[Store], **options: object) -> SharedBudget:
    def open_ledger() -> Store:
        store = open_store(str(path))
        opened.append(store)
        return store

    return SharedBudget(open_ledger, BUDGET, scope="emulator/t/a", clock=clock, **options)  # type: ignore[arg-type]


async def live_writes(path: Path, clock: Clock) -> float:
    async with open_store(str(path)) as store:
        record = await store.get(TABLE, "emulator/t/a", "writes")
    assert record is not None
    return sum(units for units, until in record.data["claims"].values() if until > clock.now)


async def test_two_processes_never_claim_more_than_the_budget_together(tmp_path: Path) -> None:
    clock, opened = Clock(), []
    first = budget_on(tmp_path / "state.db", clock, opened)
    second = budget_on(tmp_path / "state.db", clock, opened)

    await first.refill((1, 10, 0, 0))
    assert first.try_spend((1, 10, 0, 0))
    writes = second.dimensions[1]
    granted, wait = await second._claim_shared(writes, 1)

    assert granted == 0, "the first process holds the whole write budget"
    assert wait == pytest.approx(writes.lifetime), "until its claim has left every window of Graph's"
    assert await live_writes(tmp_path / "state.db", clock) == 10
    clock.now += writes.lifetime
    await second.refill(WRITE)
    assert second.try_spend(WRITE)
    for store in opened:
        await store.close()


async def test_claims_expire_after_their_period_and_unused_units_go_back(tmp_path: Path) -> None:
    clock, opened = Clock(), []
    budget = budget_on(tmp_path / "state.db", clock, opened)
    await budget.refill((1, 8, 0, 0))
    assert budget.try_spend((1, 3, 0, 0))
    assert budget.try_spend((1, 5, 0, 0))
    assert not budget.try_spend(WRITE), "all 8 claimed units are spent"

    clock.now += budget.dimensions[1].period
    await budget.refill(WRITE)
    assert budget.try_spend(WRITE)
    await budget.close()

    assert await live_writes(tmp_path / "state.db", clock) == 9, "8 + 1 spent; the unused rest was handed back"


async def test_an_unreachable_store_means_local_pacing_on_a_share_of_the_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, opened = Clock(), []
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    budget = budget_on(blocker / "state.db", clock, opened, instances_assumed=5, retry_store_after=60.0)

    with caplog.at_level(logging.WARNING, logger="guestctl.graph"):
        spent = 0
        for _ in range(2):  # a third refill would wait for the first claim to expire
            await budget.refill(WRITE)
            while budget.try_spend(WRITE):
                spent += 1
            clock.now += budget.dimensions[1].period
        writes = budget.dimensions[1]
        granted, _ = budget._claim_locally(writes, 1, clock.now)

    assert budget.degraded
    assert spent == 2, "10 writes shared by 5 assumed instances: 2 for this one"
    assert granted == 0, "this instance's share is spent"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "1/5 of Graph's budget" in warnings[0]


async def test_local_claims_join_the_ledger_when_the_store_answers_again(tmp_path: Path) -> None:
    clock, opened = Clock(), []
    good, state = tmp_path / "state.db", [tmp_path / "missing-file" / "state.db"]
    (tmp_path / "missing-file").write_text("")

    def open_ledger() -> Store:
        store = open_store(str(state[0]))
        opened.append(store)
        return store

    budget = SharedBudget(open_ledger, BUDGET, scope="emulator/t/a", clock=clock, retry_store_after=5.0)
    await budget.refill(WRITE)
    assert budget.degraded
    assert budget.try_spend(WRITE)

    state[0] = good
    budget._store = None  # the next attempt opens the store again, as after a restart of the storage
    clock.now += 6.0
    await budget.refill(WRITE)

    assert not budget.degraded
    assert await live_writes(good, clock) == 2, "the claim made while degraded is in the ledger too"
    await budget.close()


@pytest.mark.parametrize(
    ("setting", "state", "shared"),
    [
        pytest.param("auto", ".guestctl/state.db", False, id="auto-sqlite-cli-paces-alone"),
        pytest.param("auto", "UseDevelopmentStorage=true", True, id="auto-azure-tables-shares"),
        pytest.param("on", ".guestctl/state.db", True, id="on-sqlite-shares"),
        pytest.param("off", "UseDevelopmentStorage=true", False, id="off-never-shares"),
    ],
)
def test_which_settings_share_the_budget(setting: str, state: str, shared: bool) -> None:
    options = graph_options(load_settings(shared_budget=setting, state=state, instances_assumed=7))
    assert (options.shared_state == state) is shared
    assert options.instances_assumed == 7
