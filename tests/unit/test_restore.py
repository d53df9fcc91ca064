"""Which audited changes restore undoes: those that went through (shared/core/restore.py, `happened`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.core.audit import RunAudit
from shared.core.restore import happened
from shared.errors import GraphError, OutcomeUnknownError
from shared.store import AuditEntry, open_store


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
        pytest.param(  # entries of the same instant sort by their uuid
            [entry("guest.disable.failed"), entry("guest.disable"), entry("guest.disable")],
            [2],
            id="a-refusal-sorted-before-its-entry",
        ),
    ],
)
def test_happened_keeps_the_changes_graph_did_not_refuse(log: list[AuditEntry], kept: list[int]) -> None:
    assert happened(log) == [log[index] for index in kept]


async def test_a_change_refused_then_made_by_the_rerun_or_whose_answer_was_lost_is_restorable(tmp_path: Path) -> None:
    """Chaos found it: a partner created by the rerun after a 503 (or created though its answer was lost) was
    never rolled back: the rerun did not audit it again after the refusal, and a lost answer was audited as
    refused. Now the rerun writes the entry again, and a lost answer's entry stands."""

    async def refuse() -> None:
        raise GraphError("503 serviceNotAvailable")

    async def lose() -> None:
        raise OutcomeUnknownError("the answer to a write was lost")

    async def make() -> None:
        pass

    async with open_store(str(tmp_path / "state.db")) as store:
        audit = RunAudit(store, "partners-1", "t", None, lambda: datetime(2026, 1, 1, tzinfo=UTC))
        for target, first, resumed_send in (("p1", refuse, make), ("p2", lose, make)):
            with pytest.raises(GraphError):
                await audit.change(target, "partner.create", reason="r", before={}, after={}, send=first, resumed=False)
            assert await audit.has(target, "partner.create") is (first is lose)
            await audit.change(
                target, "partner.create", reason="r", before={}, after={}, send=resumed_send, resumed=True
            )
        standing = happened([e async for e in store.read_audit()])
    assert sorted(e.target_id for e in standing) == ["p1", "p2"]
