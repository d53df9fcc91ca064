"""Our real Graph client pointed at the emulator, for fixtures and for tests that build their own."""

from __future__ import annotations

from shared.graph import Budget, Graph, GraphOptions, RetryPolicy

# The emulator's limits are off unless a test turns them on, so the pacer's budget is unbounded too.
UNLIMITED = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)


def emulator_graph(base_url: str) -> Graph:
    """Our real Graph client (kiota adapter, pacer, retry) against the emulator at `base_url`."""
    return Graph(
        GraphOptions(base_url=base_url, auth="emulator", budget=UNLIMITED, retry=RetryPolicy(budget_seconds=30))
    )
