"""Undo a run from the audit log: every capability's changes, each undo audited exactly once.

The audit log says what a run changed; an entry followed by `<name>.failed` did not happen. Each change
that did is undone, newest first, by the undo its capability registered for the entry's name
(`guest.disable` → enable, `guest.delete` → restore from deleted items, ...). Every undo is itself a
change: audited just before it is made, under the run it undoes, and only once — a restore stopped by a
crash is simply run again.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.clock import Clock, utc_now
from shared.core.apply import Outcome
from shared.core.audit import RunAudit
from shared.errors import GraphError, InputError, NotFoundError, UnknownItemError
from shared.graph import Graph
from shared.graph.odata import is_object_id
from shared.store import AuditEntry, Store

# undoes one change a run made (its audit entry): (outcome, what a person reads)
UndoHandler = Callable[[AuditEntry, "Undoing"], Awaitable[tuple[Outcome, str]]]


@dataclass(frozen=True, slots=True)
class Restorable:
    """What a capability tells restore: its run ids, where its runs keep their action records, and the undo
    for each change it audits, keyed by the audit entry's name."""

    noun: str  # "sweep": "no sweep run … is known", "… is not a sweep run id"
    run_id: re.Pattern[str]
    example: str  # how a run id looks, for the hint
    printed_by: str  # the command that prints run ids, for the hint
    actions_table: str  # a run with action records is known, even when it changed nothing
    undo: Mapping[str, UndoHandler]


# Every capability whose changes can be undone: the module defining its `RESTORABLE` (imported on use, so
# the core does not load the capabilities).
CAPABILITIES: Final = (
    "shared.stale.apply",
    "shared.partners.trust_apply",
    "shared.partners.retire_apply",
    "shared.partners.migrate_apply",
    "shared.offboarding.apply",
)


def restorables() -> list[Restorable]:
    return [importlib.import_module(module).RESTORABLE for module in CAPABILITIES]


@dataclass(frozen=True, slots=True)
class Restored:
    target_id: str
    outcome: Outcome  # DONE, ALREADY_DONE (a rerun), SKIPPED (cannot be undone) or FAILED (try again)
    detail: str

    def line(self) -> str:
        return f"{self.target_id}: {self.outcome.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Undoing:
    """What an undo handler works with: Graph, the store, and `change` to audit and make each undo."""

    graph: Graph
    store: Store
    actor: str
    clock: Clock
    because: str | None = None  # what asked for the restore (an HR event's provenance), first in each reason

    async def read(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        return await read_object(self.graph, path, params)

    async def change(self, entry: AuditEntry, name: str, send: Callable[[], Awaitable[object]]) -> None:
        """Audit the undo of `entry` as `name`, then make it; a refusal by Graph is audited as `.failed`.

        Written once: after a crash between the entry and the change, the rerun finds it (the newest of
        these names for the target, after what it undoes) and makes the change without a second entry.
        """
        related = {entry.action, name, f"{name}.failed"}
        history = [e async for e in self.store.read_audit(target_id=entry.target_id) if e.action in related]
        written = bool(history) and history[-1].action == name and _at(history[-1]) >= _at(entry)
        audit = RunAudit(self.store, entry.run_id or "", self.actor, None, self.clock)
        await audit.change(
            entry.target_id,
            name,
            reason=f"{self.because + ': ' if self.because else ''}restore of {entry.action} from run {entry.run_id}",
            before=entry.after or {},
            after=entry.before or {},
            send=send,
            resumed=written,
        )


async def read_object(graph: Graph, path: str, params: dict[str, str]) -> dict[str, Any] | None:
    """The object at `path`, or None when Graph has no such object."""
    try:
        return await graph.get_json(path, params=params)
    except NotFoundError:
        return None


def _at(entry: AuditEntry) -> datetime:
    return entry.at or datetime.min.replace(tzinfo=UTC)  # entries read back always have their time


async def restore(
    graph: Graph,
    store: Store,
    *,
    actor: str,
    run_id: str | None = None,
    user_id: str | None = None,
    clock: Clock = utc_now,
    because: str | None = None,
) -> list[Restored]:
    """Undo a run's (or one user's) changes, newest first, one result per change; `because` (what asked
    for it) starts each undo's audit reason.

    Safe to run again: what is already undone is reported, not changed or audited twice. A Graph failure on
    one change is reported and the others are still undone.
    """
    capabilities = _capabilities_for(run_id, user_id)
    handlers = {name: undo for capability in capabilities for name, undo in capability.undo.items()}
    entries = [entry async for entry in store.read_audit(run_id=run_id, target_id=user_id)]
    changes = [entry for entry in happened(entries) if entry.action in handlers]
    if not changes:
        await _check_nothing_to_undo(graph, store, capabilities, run_id=run_id, user_id=user_id)
    undoing = Undoing(graph, store, actor, clock, because)
    results = []
    for entry in reversed(changes):
        try:
            outcome, detail = await handlers[entry.action](entry, undoing)
        except GraphError as error:
            outcome, detail = Outcome.FAILED, error.one_line()
        results.append(Restored(entry.target_id, outcome, detail))
    return results


def happened(entries: Iterable[AuditEntry]) -> list[AuditEntry]:
    """The changes that went through: each `<name>.failed` (same target and run) cancels one entry of that
    change, the earliest (a resumed run that then made the change wrote a new entry after the refusal)."""
    listed = list(entries)
    refusals = Counter(
        (e.action.removesuffix(".failed"), e.target_id, e.run_id) for e in listed if e.action.endswith(".failed")
    )
    standing = []
    for entry in listed:
        if entry.action.endswith(".failed"):
            continue
        key = (entry.action, entry.target_id, entry.run_id)
        if refusals[key] > 0:
            refusals[key] -= 1
        else:
            standing.append(entry)
    return standing


def _capabilities_for(run_id: str | None, user_id: str | None) -> list[Restorable]:
    """The capabilities whose changes are undone: the one whose run this is, or all of them for a user."""
    if not run_id and not user_id:
        raise InputError("restore needs a run id or a user id")
    capabilities = restorables()
    if run_id is not None:
        capabilities = [c for c in capabilities if c.run_id.fullmatch(run_id)][:1]
        if not capabilities:
            every = restorables()
            raise InputError(
                f"{run_id[:80]!r} is not a {_either(c.noun for c in every)} run id",
                hint="run ids look like " + ", ".join(c.example for c in every),
            )
    if user_id is not None and not is_object_id(user_id):
        raise InputError(f"{user_id[:80]!r} is not a user id", hint="give the user's object id (a GUID)")
    return capabilities


def _either(nouns: Iterable[str]) -> str:
    """ "sweep, partners or partners migrate": the kinds of run id there are, as people write a list."""
    listed = list(nouns)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]


async def _check_nothing_to_undo(
    graph: Graph, store: Store, capabilities: list[Restorable], *, run_id: str | None, user_id: str | None
) -> None:
    """With nothing to undo, say why when it is a mistake: a run this store never saw, or a non-guest."""
    if run_id is not None:
        (capability,) = capabilities
        async for _ in store.query(capability.actions_table, run_id):
            break
        else:
            raise UnknownItemError(
                f"no {capability.noun} run {run_id} is known to this state store",
                hint=f"use a run id that {capability.printed_by} printed, with the same GUESTCTL_STATE",
            )
    if user_id is not None:
        user = await read_object(graph, f"/users/{user_id}", {"$select": "id,userType"})
        if user is not None and user.get("userType") != "Guest":
            raise InputError(
                f"user {user_id} is not a guest (userType {user.get('userType')}): guestctl never changes "
                "members, so there is nothing to restore",
                hint="give the id of a guest that guestctl disabled or deleted",
            )
        if user is None and not [e async for e in store.read_audit(target_id=user_id)]:
            raise UnknownItemError(
                f"no user {user_id} exists, and guestctl has no record of it", hint="check the id; nothing was changed"
            )
