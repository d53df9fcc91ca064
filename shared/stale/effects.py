"""The stale-guest capability's changes, one method per action kind, their undoes, and guestctl's records
of guests.

Each effect runs only after apply has read the guest again and the rules have given this very action
(`shared/stale/apply.py`); each tenant change is audited just before it is made (`RunAudit.change`).
`UNDO` is what the core's restore (`shared.core.restore`) calls for each change a run made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.clock import Clock
from shared.core.apply import Outcome
from shared.core.audit import RunAudit
from shared.core.restore import UndoHandler, Undoing
from shared.errors import NotFoundError, StaleVersionError
from shared.graph import Graph
from shared.stale.plan import Action, ActionKind, GuestStage, Lifecycle
from shared.stale.records import Guest
from shared.store import AuditEntry, Store
from shared.store.registry import STALE_GUESTS

GUESTS_TABLE = STALE_GUESTS
GUESTS_PARTITION = "guests"

# carries out one kind of action on a guest the rules have just confirmed: (action, guest now, resumed)
Effect = Callable[[Action, Guest, bool], Awaitable[tuple[Outcome, str]]]


def lifecycle_of(data: dict[str, Any]) -> Lifecycle | None:
    """A guest's stage from its `staleguests` record; None once deleted (done, kept for the record)."""
    stage = data.get("stage")
    if stage not in (GuestStage.FLAGGED, GuestStage.DISABLED):
        return None
    disabled_at = data.get("disabled_at")
    return Lifecycle(
        GuestStage(stage),
        datetime.fromisoformat(data["flagged_at"]),
        datetime.fromisoformat(disabled_at) if disabled_at else None,
        let_go=data.get("let_go"),  # written by shared.attestation while the guest is flagged
    )


async def load_lifecycle(store: Store, partition: str = GUESTS_PARTITION) -> dict[str, Lifecycle]:
    """Every guest guestctl has flagged or disabled (deleted ones are done and left out)."""
    stages: dict[str, Lifecycle] = {}
    async for record in store.query(GUESTS_TABLE, partition):
        if (stage := lifecycle_of(record.data)) is not None:
            stages[record.row] = stage
    return stages


class GuestEffects:
    """The changes of the staged removal. `partition`: where the guests' stages are kept; partner retirement
    keeps its own (`retire`), so a sweep never takes a retirement's flag for its own, nor the reverse."""

    def __init__(
        self, graph: Graph, store: Store, audit: RunAudit, clock: Clock, run_id: str, partition: str = GUESTS_PARTITION
    ) -> None:
        self.partition = partition
        self.graph = graph
        self.store = store
        self.audit = audit
        self.clock = clock
        self.run_id = run_id
        self.by_kind: dict[ActionKind, Effect] = {
            ActionKind.FLAG: self.flag,
            ActionKind.UNFLAG: self.unflag,
            ActionKind.ENABLE: self.enable,
            ActionKind.DISABLE: self.disable,
            ActionKind.DELETE: self.delete,
        }

    async def flag(self, action: Action, current: Guest, resumed: bool) -> tuple[Outcome, str]:
        await self.set_stage(action.target_id, GuestStage.FLAGGED, flagged_at=self.clock().isoformat())
        return Outcome.DONE, "flagged"

    async def unflag(self, action: Action, current: Guest, resumed: bool) -> tuple[Outcome, str]:
        await self.forget(action.target_id)
        return Outcome.DONE, "un-flagged: active again"

    async def enable(self, action: Action, current: Guest, resumed: bool) -> tuple[Outcome, str]:
        if current.enabled is not True:
            await self._set_enabled(action, True, resumed)
        await self.forget(action.target_id)
        return Outcome.DONE, "re-enabled: active again"

    async def disable(self, action: Action, current: Guest, resumed: bool) -> tuple[Outcome, str]:
        if current.enabled is False:
            # Someone else disabled it (a compromised account, an offboarding): theirs to handle. Taking it
            # over would let a later delete, or a restore that re-enables, undo their decision.
            await self.forget(action.target_id)
            return Outcome.SKIPPED, "someone else disabled the account: guestctl leaves it to them"
        await self._set_enabled(action, False, resumed)
        await self.set_stage(action.target_id, GuestStage.DISABLED, disabled_at=self.clock().isoformat())
        return Outcome.DONE, "disabled"

    async def delete(self, action: Action, current: Guest, resumed: bool) -> tuple[Outcome, str]:
        if current.enabled is not False:
            return Outcome.SKIPPED, "someone re-enabled the account since it was disabled"
        await self.audit.change(
            action.target_id,
            "guest.delete",
            reason=action.reason,
            before={"deletedDateTime": None},
            after={"deletedDateTime": self.clock().isoformat(), "restorableDays": 30},
            send=lambda: self._delete_user(action),
            resumed=resumed,
        )
        await self.set_stage(action.target_id, GuestStage.DELETED, deleted_at=self.clock().isoformat())
        return Outcome.DONE, "deleted (restorable for 30 days)"

    async def _delete_user(self, action: Action) -> None:
        with contextlib.suppress(NotFoundError):  # a retried DELETE finds it gone
            await self.graph.request("DELETE", f"/users/{action.target_id}", idempotent=True)

    async def _set_enabled(self, action: Action, enabled: bool, resumed: bool) -> None:
        """PATCH accountEnabled, audited (once) as guest.enable or guest.disable just before it is sent."""
        path, body = f"/users/{action.target_id}", {"accountEnabled": enabled}
        await self.audit.change(
            action.target_id,
            "guest.enable" if enabled else "guest.disable",
            reason=action.reason,
            before={"accountEnabled": not enabled},
            after=body,
            send=lambda: self.graph.request("PATCH", path, json_body=body, idempotent=True),
            resumed=resumed,
        )

    async def set_stage(self, user_id: str, stage: GuestStage, **dates: str) -> None:
        record = await self.store.get(GUESTS_TABLE, self.partition, user_id)
        data = {**(record.data if record else {}), **dates, "stage": stage.value, "run_id": self.run_id}
        await self.store.upsert(GUESTS_TABLE, self.partition, user_id, data)

    async def forget(self, user_id: str) -> None:
        await forget_guest(self.store, user_id, self.partition)


async def forget_guest(store: Store, user_id: str, partition: str = GUESTS_PARTITION) -> None:
    """Drop guestctl's record of a guest: it starts again from the beginning of the stages."""
    record = await store.get(GUESTS_TABLE, partition, user_id)
    if record is not None:
        with contextlib.suppress(StaleVersionError):  # someone else changed or removed it: theirs stands
            await store.delete(record)


USER_STATE = {"$select": "id,userType,accountEnabled"}
# guestctl re-enables only while its own last word on the account is a disable that went through
ENABLING_HISTORY = frozenset({"guest.disable", "guest.disable.failed", "guest.enable", "guest.enable.failed"})


async def undo_delete(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    """guest.delete: restore the guest from deleted items (for 30 days), then re-enable it as for a disable."""
    user_path = f"/users/{entry.target_id}"
    current = await undo.read(user_path, USER_STATE)
    if current is not None:
        return await _re_enable(entry, undo, current, restored=False)
    restore_path = f"/directory/deletedItems/{entry.target_id}/restore"
    try:
        await undo.change(entry, "guest.restore", lambda: undo.graph.request("POST", restore_path, idempotent=True))
    except NotFoundError:
        return Outcome.SKIPPED, "not in deleted items (purged after 30 days?)"
    return await _re_enable(entry, undo, await undo.read(user_path, USER_STATE), restored=True)


async def undo_disable(entry: AuditEntry, undo: Undoing) -> tuple[Outcome, str]:
    """guest.disable: re-enable the guest, if guestctl's own last word on the account is still that disable."""
    return await _re_enable(entry, undo, await undo.read(f"/users/{entry.target_id}", USER_STATE), restored=False)


async def _re_enable(
    entry: AuditEntry, undo: Undoing, current: dict[str, Any] | None, *, restored: bool
) -> tuple[Outcome, str]:
    if current is None:
        return Outcome.SKIPPED, "not found (deleted since?)"
    if current.get("userType") != "Guest":
        return Outcome.SKIPPED, f"not a guest now (userType {current.get('userType')})"
    history = [e async for e in undo.store.read_audit(target_id=entry.target_id) if e.action in ENABLING_HISTORY]
    enabled = False
    if current.get("accountEnabled") is False and history and history[-1].action == "guest.disable":
        path, body = f"/users/{entry.target_id}", {"accountEnabled": True}
        await undo.change(
            history[-1], "guest.enable", lambda: undo.graph.request("PATCH", path, json_body=body, idempotent=True)
        )
        enabled = True
    await forget_guest(undo.store, entry.target_id)
    if restored or enabled:
        what = (("restored from deleted items", restored), ("re-enabled", enabled))
        return Outcome.DONE, " and ".join(words for words, done in what if done)
    if current.get("accountEnabled") is False:
        return Outcome.SKIPPED, "disabled, but not by guestctl: left as it is"
    return Outcome.ALREADY_DONE, "already restored and enabled"


UNDO: dict[str, UndoHandler] = {"guest.delete": undo_delete, "guest.disable": undo_disable}
