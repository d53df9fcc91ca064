"""The whole notification path, for real: the emulator delivers to our HTTP handlers served over real HTTP
(webhook mode) or writes CloudEvents into an Azurite queue (Event Grid mode); the queue worker runs delta
and records every redemption with Graph's time. Lost notifications are caught by the delta timer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import azure.functions as func
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.config import Settings, load_settings
from shared.graph import Graph
from shared.invitations import InvitationRow
from shared.invitations.service import invite_rows
from shared.notifications.service import ensure_subscription
from shared.redemptions.effects import load_all
from shared.redemptions.records import GuestState
from shared.redemptions.service import sync
from shared.store import open_state
from tests.support.functions_host import FunctionsHost

QUEUE = "graph-notifications"
SECRET = "pipeline-client-state-secret"
TOPIC = "guestctl-users"
EVENT_GRID_URL = f"EventGrid:?azuresubscriptionid=sub&resourcegroup=rg&partnertopic={TOPIC}&location=westeurope"
INVITED = 200
REDEEMED = 150


@pytest.fixture
def settings(
    emulator: EmulatorServer, host: FunctionsHost, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> Settings:
    """A small fresh tenant; our webhook served by `host` as the notification URL; state in SQLite."""
    emulator.reset(seed_tenant(43, guests=10, members=5))
    url = host.url("graph/notifications")
    return configure(monkeypatch, emulator, str(tmp_path / "state.db"), GUESTCTL_NOTIFICATION_URL=url)


@pytest.fixture
def host(functions: dict[str, func.FunctionBuilder], azurite: str) -> Iterator[FunctionsHost]:
    with FunctionsHost(functions, azurite) as host:
        host.queue(QUEUE).clear_messages()
        yield host


def configure(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, state: str, **settings: str) -> Settings:
    values = {
        "GUESTCTL_GRAPH_URL": emulator.base_url,
        "GUESTCTL_AUTH": "emulator",
        "GUESTCTL_STATE": state,
        "GUESTCTL_STATE_PREFIX": "p" + uuid.uuid4().hex[:12],
        "GUESTCTL_NOTIFICATION_SECRET": SECRET,
        "GUESTCTL_DELTA_MIN_INTERVAL": "0",  # no spacing between rounds: each drain syncs at once
        **settings,
    }
    for name in ("GUESTCTL_POLICY", "GUESTCTL_CLOUD", "GUESTCTL_LIFECYCLE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return load_settings()


async def invite_people(settings: Settings, count: int) -> list[str]:
    """`count` guests invited by guestctl's invitations capability (one batch), as `guestctl invite --apply`."""
    rows = [InvitationRow(row=i + 1, email=f"person{i:03d}@fabrikam.com") for i in range(count)]
    run = await invite_rows(settings, rows, batch_id="inv-pipeline", source="test", apply=True, actor="test")
    assert run.results is not None
    assert {r.result.value for r in run.results} == {"invited"}
    return [r.user_id for r in run.results if r.user_id]


async def redeem_and_deliver(emulator: EmulatorServer, host: FunctionsHost, user_ids: list[str]) -> None:
    for user_id in user_ids:
        emulator.control.redeem(user_id)
    assert emulator.control.wait_until_idle(timeout=30)


async def assert_recorded(emulator: EmulatorServer, settings: Settings, redeemed: list[str]) -> None:
    async with open_state(settings) as store:
        tracked = await load_all(store)
    assert {u for u, t in tracked.items() if t.state is GuestState.REDEEMED} >= set(redeemed)
    for user_id in redeemed:
        when = emulator.tenant.users[user_id].externalUserStateChangeDateTime
        assert tracked[user_id].redeemed_at == _utc(when)


@pytest.mark.parametrize("mode", ["webhook", "eventgrid"])
async def test_redemptions_arrive_as_notifications_and_are_all_recorded(
    mode: str,
    emulator: EmulatorServer,
    graph: Graph,
    host: FunctionsHost,
    azurite: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pytest.TempPathFactory,
) -> None:
    emulator.reset(seed_tenant(41, guests=10, members=5))
    if mode == "webhook":
        settings = configure(
            monkeypatch, emulator, str(tmp_path / "state.db"), GUESTCTL_NOTIFICATION_URL=host.url("graph/notifications")
        )
    else:
        emulator.control.map_event_grid_topic(TOPIC, azurite, QUEUE)
        settings = configure(
            monkeypatch,
            emulator,
            azurite,  # and the state in Azure Tables, so both stores carry the pipeline
            GUESTCTL_NOTIFICATION_DELIVERY="eventgrid",
            GUESTCTL_NOTIFICATION_URL=EVENT_GRID_URL,
        )
    invited = await invite_people(settings, INVITED)
    assert (await ensure_subscription(settings)).action == "created"
    await sync(settings)  # the first, full round: everyone tracked, the delta link kept
    assert emulator.control.wait_until_idle(timeout=30)
    await asyncio.to_thread(host.drain, QUEUE)  # the invitations' own notifications

    await redeem_and_deliver(emulator, host, invited[:REDEEMED])
    assert await asyncio.to_thread(host.drain, QUEUE) > 0
    assert ("graph_notifications_worker", "raised") not in host.invocations
    await assert_recorded(emulator, settings, invited[:REDEEMED])
    async with open_state(settings) as store:
        tracked = await load_all(store)
    assert sum(t.state is GuestState.PENDING for u, t in tracked.items() if u in invited) == INVITED - REDEEMED
    assert {(tracked[u].source.value, tracked[u].batch_id) for u in invited} == {("batch", "inv-pipeline")}
    assert all(tracked[u].seconds_to_redeem is not None for u in invited[:REDEEMED])


async def test_lost_notifications_are_caught_by_the_delta_timer(
    emulator: EmulatorServer,
    graph: Graph,
    host: FunctionsHost,
    settings: Settings,
) -> None:
    invited = await invite_people(settings, 40)
    await ensure_subscription(settings)
    await sync(settings)
    await redeem_and_deliver(emulator, host, invited[:30])
    host.queue(QUEUE).clear_messages()  # every notification lost

    await asyncio.to_thread(host.run_timer, "delta_sync")
    await assert_recorded(emulator, settings, invited[:30])


async def test_a_reauthorization_request_is_answered(
    emulator: EmulatorServer,
    host: FunctionsHost,
    settings: Settings,
) -> None:
    state = await ensure_subscription(settings)
    emulator.control.clear_requests()
    emulator.control.lifecycle(state.subscription_id, "reauthorizationRequired")
    assert emulator.control.wait_until_idle(timeout=30)
    await asyncio.to_thread(host.drain, QUEUE)
    reauthorized = emulator.control.requests(path=f"/v1.0/subscriptions/{state.subscription_id}/reauthorize")
    assert len(reauthorized) == 1


async def test_forged_queue_messages_change_nothing(
    emulator: EmulatorServer,
    host: FunctionsHost,
    settings: Settings,
) -> None:
    state = await ensure_subscription(settings)
    emulator.control.clear_requests()
    forged = {"value": [{"subscriptionId": state.subscription_id, "clientState": "guess", "resource": "Users/x"}]}
    host.queue(QUEUE).send_message(host.encode(json.dumps(forged)))
    await asyncio.to_thread(host.drain, QUEUE)
    assert emulator.control.requests(path="/v1.0/users/delta") == []


def _utc(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC) if value is not None else None


async def test_a_removed_subscription_is_created_again(
    emulator: EmulatorServer,
    host: FunctionsHost,
    settings: Settings,
) -> None:
    first = await ensure_subscription(settings)
    emulator.control.lifecycle(first.subscription_id, "subscriptionRemoved")  # Graph removed it
    assert emulator.control.wait_until_idle(timeout=30)
    await asyncio.to_thread(host.drain, QUEUE)
    subscriptions = list(emulator.tenant.subscriptions.values())
    assert len(subscriptions) == 1
    assert subscriptions[0]["id"] != first.subscription_id
    assert (await ensure_subscription(settings)).subscription_id == subscriptions[0]["id"]
