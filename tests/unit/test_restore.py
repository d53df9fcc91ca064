"""Which audited changes restore undoes: those that went through (shared/core/restore.py, `happened`)."""

from __future__ import annotations

import pytest

from shared.core.restore import happened
from shared.store import AuditEntry


def entry(name: str, target: str = "g1", run: str = "sweep-1") -> AuditEntry:
    return AuditEntry(name, target, "t", "stale", run_id=run)


@pytest.mark.parametrize(
    ("log", "kept"),
    [
        pytest.param([entry("guest.disable")], [0], id="a-change-that-went-through"),
        pytest.param([entry("guest.disable"), entry("guest.disable.failed")], [], id="refused-did-not-happen"),
        pytest.param(
            [entry("guest.disable"), entry("guest.disable.failed"), entry("guest.disable")],
            [2],
            id="retried-after-refusal",
        ),
        pytest.param(
            [entry("guest.disable"), entry("guest.disable", "g2"), entry("guest.disable.failed", "g2")],
            [0],
            id="a-refusal-is-of-its-own-target",
        ),
        pytest.param(
            [entry("guest.disable", run="sweep-1"), entry("guest.disable.failed", run="sweep-2")],
            [0],
            id="a-refusal-is-of-its-own-run",
        ),
        pytest.param([entry("guest.delete"), entry("guest.disable.failed")], [0], id="a-refusal-is-of-its-own-name"),
    ],
)
def test_happened_keeps_the_changes_graph_did_not_refuse(log: list[AuditEntry], kept: list[int]) -> None:
    assert happened(log) == [log[index] for index in kept]
