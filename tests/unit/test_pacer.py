"""Pacer rules with a hand-moved clock: windows count in-flight units, AIMD halves on 429."""

from __future__ import annotations

import pytest

from shared.graph.costs import Cost
from shared.graph.pacer import Budget, Pacer, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_admits_up_to_capacity_then_waits_for_the_oldest_to_expire() -> None:
    clock = Clock()
    window = SlidingWindow(capacity=3, window=10.0, clock=clock)
    for _ in range(3):
        assert window.wait_time(1) == 0.0
        window.take(1)
    assert window.wait_time(1) is None, "only a response can free room while all three are in flight"
    window.give_back(1)
    clock.now += 4
    window.give_back(1)
    assert window.wait_time(1) == pytest.approx(6.0), "the first finished unit expires 10 s after its response"
    clock.now += 6
    assert window.wait_time(1) == 0.0


def test_window_counts_units_not_requests() -> None:
    window = SlidingWindow(capacity=5, window=10.0, clock=Clock())
    window.take(4)
    assert window.wait_time(1) == 0.0
    assert window.wait_time(2) is None


def test_an_oversized_request_runs_alone_instead_of_waiting_forever() -> None:
    window = SlidingWindow(capacity=2, window=10.0, clock=Clock())
    assert window.wait_time(5) == 0.0


@pytest.mark.parametrize(
    ("throttles", "expected"),
    [
        pytest.param(1, 8.0, id="one-429-halves"),
        pytest.param(3, 2.0, id="three-429s"),
        pytest.param(10, 1.0, id="never-below-one"),
    ],
)
def test_concurrency_halves_on_throttling(throttles: int, expected: float) -> None:
    pacer = Pacer(max_concurrency=16, clock=Clock())
    for _ in range(throttles):
        pacer.on_throttled(None)
    assert pacer.concurrency == expected


def test_concurrency_grows_back_by_about_one_per_round() -> None:
    pacer = Pacer(max_concurrency=16, clock=Clock())
    pacer.on_throttled(None)
    for _ in range(8):
        pacer.on_success()
    assert 8.9 < pacer.concurrency < 9.1


def test_throttling_pauses_everyone_for_retry_after() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock)
    pacer.on_throttled(7.0)
    assert pacer._wait_time(Cost(1, 1)) == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("size", "fraction", "time_scale", "expected"),
    [
        pytest.param("S", 1.0, 1.0, (3500, 10.0, 3000, 150.0), id="small-tenant"),
        pytest.param("L", 0.9, 1.0, (7200, 10.0, 2700, 150.0), id="large-tenant-90pct"),
        pytest.param("M", 1.0, 0.01, (5000, 0.1, 3000, 1.5), id="time-scaled-for-emulator"),
    ],
)
def test_budget_from_documented_limits(size: str, fraction: float, time_scale: float, expected: tuple) -> None:
    budget = Budget.for_tenant(size, fraction, time_scale)  # type: ignore[arg-type]
    assert (budget.resource_units, budget.resource_unit_window, budget.writes, budget.write_window) == pytest.approx(
        expected
    )
