"""The core's exactly-once email and action progress: drafts through the real Graph client against the
emulator, action records in the real store (SQLite and Azurite)."""

from __future__ import annotations

import json

import pytest

from emulator.testing import EmulatorServer
from shared.core.apply import Progress
from shared.core.mail import Mail, send_once
from shared.errors import ConfigError, StaleVersionError
from shared.graph import Graph
from shared.store import Store
from tests.support.invitations import NOW

TABLE = "mailtest"
MAIL = Mail("kim@partner.example", "Hello", "a notice")


def sender_of(emulator: EmulatorServer) -> str:
    member = next(
        u
        for u in emulator.tenant.users.values()
        if u.userType == "Member" and u.mail and "#EXT#" not in u.userPrincipalName
    )
    return member.userPrincipalName


async def progress_of(store: Store, **data: object) -> Progress:
    return Progress(store, await store.create(TABLE, "run-1", "notice", {"attempts": 2, **data}), lambda: NOW)


async def compose() -> Mail:
    return MAIL


def sent_to(emulator: EmulatorServer) -> list[str]:
    return [m["to"][0] for m in emulator.control.outbox(kind="mail")]


async def test_a_new_email_is_drafted_recorded_then_sent(emulator: EmulatorServer, graph: Graph, store: Store) -> None:
    progress = await progress_of(store, draft_id=None)
    assert await send_once(graph, sender_of(emulator), progress, compose, stage="drafted") is True
    record = await store.get(TABLE, "run-1", "notice")
    assert record is not None
    assert record.data["draft_id"]
    assert record.data["stage"] == "drafted"
    assert sent_to(emulator) == ["kim@partner.example"]


async def test_a_recorded_draft_left_unsent_by_a_crash_is_sent_once(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    sender = sender_of(emulator)
    draft = await graph.request("POST", f"/users/{sender}/messages", json_body=MAIL.draft())
    progress = await progress_of(store, draft_id=json.loads(draft.content)["id"])

    async def must_not_compose() -> Mail:
        raise AssertionError("a recorded draft is sent as it is")

    assert await send_once(graph, sender, progress, must_not_compose) is True
    assert await send_once(graph, sender, progress, must_not_compose) is False, "sent: never a second time"
    assert sent_to(emulator) == ["kim@partner.example"]


async def test_a_missing_sender_mailbox_is_a_configuration_error(
    emulator: EmulatorServer, graph: Graph, store: Store
) -> None:
    progress = await progress_of(store, draft_id=None)
    with pytest.raises(ConfigError, match=r"the sender mailbox 'nobody@contoso\.com' cannot be used"):
        await send_once(graph, "nobody@contoso.com", progress, compose)
    with pytest.raises(ConfigError, match="needs a sender mailbox"):
        await send_once(graph, None, progress, compose)
    assert sent_to(emulator) == []


async def test_two_workers_on_one_record_cannot_both_move_it_on(store: Store) -> None:
    record = await store.create(TABLE, "run-1", "row", {"attempts": 1, "stage": "new"})
    first, second = Progress(store, record, lambda: NOW), Progress(store, record, lambda: NOW)
    assert first.resumed is False
    await first.save(stage="inviting")
    with pytest.raises(StaleVersionError):
        await second.save(stage="inviting")
    saved = await store.get(TABLE, "run-1", "row")
    assert saved is not None
    assert saved.data["stage"] == "inviting"
