"""The audit log as one run writes it: every change once, written before the change is made.

A crash can stop a run between its audit entry and its change, or between its change and the record that
it was done. A resumed run asks `has` before writing again, so each change has exactly one entry; an entry
whose change Graph then refused is followed by `<name>.failed` with Graph's error, so the log never
claims a change that did not happen. An entry whose change was refused does not count as written: a
resumed run that makes the change after all writes it again. An entry whose answer was lost
(`OutcomeUnknownError`: the change may have been made) stands: the resumed run confirms or makes it, and a
restore re-reads the object before undoing anything.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared.clock import Clock
from shared.errors import GraphError, OutcomeUnknownError
from shared.store import AuditEntry, Store


@dataclass(frozen=True, slots=True)
class RunAudit:
    store: Store
    run_id: str
    actor: str
    plan_digest: str | None
    clock: Clock

    async def written(self, target_id: str) -> list[tuple[str, str]]:
        """(name, `after` as canonical JSON) of each entry this run wrote for `target_id`: one store read
        for many checks (a store read can hold up the event loop)."""
        return [
            (e.action, canonical(e.after)) async for e in self.store.read_audit(run_id=self.run_id, target_id=target_id)
        ]

    async def has(self, target_id: str, name: str | None = None, *, after: dict[str, Any] | None = None) -> bool:
        """Whether this run already audited a change to `target_id` (of kind `name`, with this `after`) that
        Graph did not refuse: more `name` entries than `name.failed` ones."""
        wanted = canonical(after) if after is not None else None
        written = await self.written(target_id)
        if name is None:
            return any(wanted is None or entry_after == wanted for _, entry_after in written)
        audited = sum(entry_name == name and (wanted is None or a == wanted) for entry_name, a in written)
        return audited > sum(entry_name == f"{name}.failed" for entry_name, _ in written)

    async def write(
        self,
        target_id: str,
        name: str,
        *,
        reason: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        entry = AuditEntry(
            action=name,
            target_id=target_id,
            actor=self.actor,
            reason=reason,
            before=before,
            after=after,
            plan_digest=self.plan_digest,
            run_id=self.run_id,
            at=self.clock(),
        )
        await self.store.append_audit(entry)

    async def once(
        self,
        target_id: str,
        name: str,
        *,
        reason: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        """Write the entry unless an interrupted attempt of this run already did."""
        if not await self.has(target_id, name):
            await self.write(target_id, name, reason=reason, before=before, after=after)

    async def change(
        self,
        target_id: str,
        name: str,
        *,
        reason: str,
        before: dict[str, Any],
        after: dict[str, Any],
        send: Callable[[], Awaitable[object]],
        resumed: bool,
    ) -> None:
        """Audit the change (once, even across a crash), then make it; a refusal is audited as `.failed`."""
        if resumed:
            await self.once(target_id, name, reason=reason, before=before, after=after)
        else:
            await self.write(target_id, name, reason=reason, before=before, after=after)
        try:
            await send()
        except OutcomeUnknownError:
            raise  # the change may stand: its entry does too, until a resumed run confirms or makes it
        except GraphError as error:
            failed = {**before, "error": error.one_line()}
            await self.write(target_id, f"{name}.failed", reason=reason, before=after, after=failed)
            raise


def canonical(value: object) -> str:
    """JSON with sorted keys: equal values, equal text."""
    return json.dumps(value, sort_keys=True)
