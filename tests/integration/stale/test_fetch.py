"""The stale-guest scan and directory lookups against the emulator: streamed, resumable, and safe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import UTC, datetime

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.errors import PermissionDeniedError
from shared.graph import Graph, GraphOptions
from shared.stale.fetch import (
    GroupNotFoundError,
    ScanCheckpoint,
    SignInActivityUnavailable,
    count_guests,
    directory_role_holders,
    read_checkpoint,
    resolve_groups,
    scan_guests,
    transitive_group_members,
)
from shared.stale.records import Guest, UnreadableUserError
from shared.store import Store
from tests.support.scripted_server import Handler, Reply, ScriptedServer

NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
GUESTS = 1_200
MEMBERS = 60


def tenant() -> object:
    return seed_tenant("stale-fetch", guests=GUESTS, members=MEMBERS, now=NOW)


@pytest.fixture
def big(emulator: EmulatorServer) -> EmulatorServer:
    """The emulator with a generated tenant of 1,200 guests, members, role holders and external members."""
    emulator.reset(tenant())
    emulator.control.clear_requests()
    return emulator


async def drain(scan: AsyncIterator[list[Guest]]) -> list[Guest]:
    return [guest async for page in scan for guest in page]


def guest_ids(em: EmulatorServer) -> set[str]:
    return {u.id for u in em.tenant.users.values() if u.userType == "Guest"}


def user_requests(em: EmulatorServer) -> list[dict]:
    return [r for r in em.control.requests(path="/v1.0/users", method="GET") if r["path"] == "/v1.0/users"]


async def test_scan_streams_every_guest_and_no_member(big: EmulatorServer, graph: Graph, store: Store) -> None:
    seen: list[Guest] = []
    sizes: list[int] = []
    async for page in scan_guests(graph, store, scan_id="all", page_size=250):
        sizes.append(len(page))
        seen.extend(page)

    ids = [g.id for g in seen]
    assert len(ids) == len(set(ids)), "every guest exactly once"
    assert set(ids) == guest_ids(big)
    non_guests = {u.id for u in big.tenant.users.values() if u.userType != "Guest"}
    assert non_guests, "the tenant has members and external members to leave out"
    assert not set(ids) & non_guests
    assert max(sizes) == 250
    assert sum(g.sign_in is not None for g in seen) > GUESTS // 2, "signInActivity was selected and decoded"


async def test_the_next_page_is_requested_while_the_consumer_works_on_this_one(
    big: EmulatorServer, graph: Graph, store: Store
) -> None:
    def requests_seen_holding_the_loop(wanted: int) -> int:
        """How many user pages Graph has been asked for, waiting (up to a deadline) for `wanted` while the
        event loop is held, as a consumer's CPU work holds it: only a request already sent can arrive."""
        deadline = time.monotonic() + 10
        while (seen := len(user_requests(big))) < wanted and time.monotonic() < deadline:
            time.sleep(0.01)  # a sync helper: it holds the loop, as the consumer's CPU work would
        return seen

    seen_by_graph = []
    async for _ in scan_guests(graph, store, scan_id="ahead", page_size=500):
        seen_by_graph.append(requests_seen_holding_the_loop(min(len(seen_by_graph) + 2, 3)))
    assert seen_by_graph == [2, 3, 3], "page N+1 was asked for before page N was handed over"
    assert len(user_requests(big)) == 3, "none after the last"


async def test_a_consumer_that_stops_early_leaves_no_request_running(
    big: EmulatorServer, graph: Graph, store: Store
) -> None:
    async with contextlib.aclosing(scan_guests(graph, store, scan_id="early", page_size=100)) as scan:
        async for _ in scan:
            break
    assert asyncio.all_tasks() == {asyncio.current_task()}, "the read-ahead was cancelled"
    checkpoint = await read_checkpoint(store, "early")
    assert checkpoint is not None
    assert checkpoint.pages == 0, "the page in hand was not confirmed"


async def test_a_user_graph_sends_in_an_unexpected_shape_stops_the_scan_and_says_where(
    scripted_server: Callable[[Handler], ScriptedServer], store: Store
) -> None:
    users = [
        {"id": "g1", "userType": "Guest", "createdDateTime": "2024-01-01T00:00:00Z"},
        {"id": "g2", "userType": "Guest", "createdDateTime": "yesterday"},
    ]
    server = scripted_server(lambda _: Reply(200, json.dumps({"value": users}).encode()))
    graph = Graph(GraphOptions(base_url=server.base_url, auth="emulator"))
    try:
        with pytest.raises(UnreadableUserError, match=re.escape("at `$.value[1].createdDateTime`")):
            await drain(scan_guests(graph, store, scan_id="odd"))
    finally:
        await graph.close()
    checkpoint = await read_checkpoint(store, "odd")
    assert checkpoint is not None
    assert checkpoint.pages == 0, "nothing was confirmed past the unreadable page"


@pytest.mark.parametrize(
    ("page_size", "pages"),
    [
        pytest.param(500, 3, id="max-500-per-signInActivity-page"),
        pytest.param(100, 12, id="smaller-pages"),
    ],
)
async def test_page_size_is_sent_as_top(
    big: EmulatorServer, graph: Graph, store: Store, page_size: int, pages: int
) -> None:
    async for _ in scan_guests(graph, store, scan_id=f"top-{page_size}", page_size=page_size):
        pass
    requests = user_requests(big)
    assert len(requests) == pages
    assert {r["query"]["$top"] for r in requests} == {str(page_size)}
    assert all("signInActivity" in r["query"]["$select"] for r in requests)
    assert all(r["query"]["$filter"] == "userType eq 'Guest'" for r in requests)


@pytest.mark.parametrize("page_size", [0, 501, 999])
async def test_page_size_above_the_signInActivity_maximum_is_refused(
    graph: Graph, store: Store, page_size: int
) -> None:
    with pytest.raises(ValueError, match="page_size"):
        async for _ in scan_guests(graph, store, scan_id="bad", page_size=page_size):
            pass


async def test_finished_scan_is_recorded(big: EmulatorServer, graph: Graph, store: Store) -> None:
    async for _ in scan_guests(graph, store, scan_id="done", page_size=500):
        pass
    checkpoint = await read_checkpoint(store, "done")
    assert checkpoint is not None
    assert checkpoint.finished
    assert checkpoint.next_link is None
    assert (checkpoint.pages, checkpoint.guests) == (3, GUESTS)
    assert datetime.fromisoformat(checkpoint.started_at).tzinfo is not None


async def test_stopped_scan_resumes_from_its_checkpoint(big: EmulatorServer, graph: Graph, store: Store) -> None:
    processed: list[str] = []
    scan = scan_guests(graph, store, scan_id="weekly", page_size=100)
    async for page in scan:
        if len(processed) == 200:  # two pages processed; asking for the third confirmed the second
            break  # the third page is dropped unprocessed, as a timed-out invocation would
        processed.extend(g.id for g in page)
    await scan.aclose()

    checkpoint = await read_checkpoint(store, "weekly")
    assert checkpoint is not None
    assert (checkpoint.pages, checkpoint.guests, checkpoint.finished) == (2, 200, False)
    assert checkpoint.next_link is not None
    assert "$skiptoken" in checkpoint.next_link

    big.control.clear_requests()
    async for page in scan_guests(graph, store, scan_id="weekly", page_size=100):
        processed.extend(g.id for g in page)

    requests = user_requests(big)
    assert all("$skiptoken" in r["query"] for r in requests), "the first pages were not requested again"
    assert len(requests) == 10
    assert len(processed) == len(set(processed)) == GUESTS
    assert set(processed) == guest_ids(big)
    finished = await read_checkpoint(store, "weekly")
    assert finished is not None
    assert (finished.finished, finished.pages, finished.guests) == (True, 12, GUESTS)
    assert finished.started_at == checkpoint.started_at


async def test_finished_checkpoint_starts_a_new_scan(big: EmulatorServer, graph: Graph, store: Store) -> None:
    async for _ in scan_guests(graph, store, scan_id="again", page_size=500):
        pass
    big.control.clear_requests()
    again = [g.id async for page in scan_guests(graph, store, scan_id="again", page_size=500) for g in page]
    assert set(again) == guest_ids(big)
    assert "$skiptoken" not in user_requests(big)[0]["query"]


async def test_refused_cursor_restarts_from_the_first_page(
    big: EmulatorServer, graph: Graph, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    scan = scan_guests(graph, store, scan_id="expired", page_size=400)
    await anext(scan)
    await anext(scan)  # the first page is confirmed: the checkpoint holds the second page's nextLink
    await scan.aclose()
    big.reset(tenant())  # same directory, new tenant instance: Graph no longer accepts the old skip token

    with caplog.at_level(logging.WARNING, logger="guestctl.stale"):
        delivered = [g.id async for page in scan_guests(graph, store, scan_id="expired", page_size=400) for g in page]

    requests = user_requests(big)
    assert [r["status"] for r in requests[:1]] == [400]
    assert "$skiptoken" not in requests[1]["query"], "restarted from the first page"
    assert sorted(delivered) == sorted(guest_ids(big))
    assert any("restarting from the first page" in r.getMessage() for r in caplog.records)
    checkpoint = await read_checkpoint(store, "expired")
    assert checkpoint is not None
    assert (checkpoint.finished, checkpoint.restarts, checkpoint.guests) == (True, 1, GUESTS)


async def test_checkpoint_keeps_no_redeem_url_or_token(big: EmulatorServer, graph: Graph, store: Store) -> None:
    scan = scan_guests(graph, store, scan_id="secrets", page_size=100)
    await anext(scan)
    await anext(scan)
    await scan.aclose()
    record = await store.get("scans", "stale", "secrets")
    assert record is not None
    assert set(record.data) == {
        "next_link",
        "pages",
        "guests",
        "started_at",
        "finished",
        "sign_in_activity",
        "restarts",
    }
    text = str(record.data).lower()
    assert "redeem" not in text
    assert "bearer" not in text
    assert "emulator-token" not in text


async def test_no_signInActivity_is_reported_and_scan_without_it_still_works(
    big: EmulatorServer, graph: Graph, store: Store
) -> None:
    big.control.set_sign_in_activity_available(False)

    with pytest.raises(SignInActivityUnavailable) as raised:
        await drain(scan_guests(graph, store, scan_id="no-p1"))
    assert raised.value.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert "P1" in raised.value.one_line()

    guests = [g async for page in scan_guests(graph, store, scan_id="no-p1", sign_in_activity=False) for g in page]
    assert {g.id for g in guests} == guest_ids(big)
    assert all(g.sign_in is None for g in guests)
    pending = {g.id for g in guests if g.pending}
    expected_pending = {
        u.id for u in big.tenant.users.values() if u.userType == "Guest" and u.externalUserState == "PendingAcceptance"
    }
    assert pending == expected_pending != set(), "never-redeemed detection still has its evidence"
    selects = {r["query"]["$select"] for r in user_requests(big) if r["status"] == 200 and r["query"]["$top"] != "1"}
    assert selects
    assert all("signInActivity" not in s for s in selects)


@pytest.mark.parametrize(
    ("forced", "sign_in_activity", "expected", "says"),
    [
        pytest.param([403], True, SignInActivityUnavailable, "AuditLog.Read.All", id="403-only-with-signInActivity"),
        pytest.param([403, 403], True, PermissionDeniedError, "permission", id="403-also-without-it-is-not-masked"),
        pytest.param([403], False, PermissionDeniedError, "permission", id="403-on-a-plain-scan"),
    ],
)
async def test_which_403_means_no_signInActivity(
    big: EmulatorServer,
    graph: Graph,
    store: Store,
    forced: list[int],
    sign_in_activity: bool,
    expected: type[Exception],
    says: str,
) -> None:
    # The emulator has no permission model: forced 403s stand in for "no AuditLog.Read.All" (the first
    # request only) and for "no User.Read.All" (every request, including the probe).
    big.control.set_faults(sequence=forced)
    with pytest.raises(expected) as raised:
        await drain(scan_guests(graph, store, scan_id="perm", sign_in_activity=sign_in_activity))
    assert type(raised.value) is expected
    assert says in raised.value.one_line()


async def test_directory_role_holders_are_every_role_holder_in_any_form(big: EmulatorServer, graph: Graph) -> None:
    truth = big.control.ground_truth()

    holders = await directory_role_holders(graph)

    assert holders == big.tenant.all_role_principals(expand_groups=True)
    assert set(truth["role_holding_guests"]) <= holders
    for form in ("eligible_role_guests", "scoped_role_guests", "custom_role_guests"):
        assert truth[form], f"the seed has {form}"
        assert set(truth[form]) <= holders, f"{form} are role holders"
    assert set(truth["admins"]) <= holders


async def test_without_a_pim_licence_active_assignments_still_count(big: EmulatorServer, graph: Graph) -> None:
    big.control.set_pim_available(False)
    truth = big.control.ground_truth()

    holders = await directory_role_holders(graph)

    assert set(truth["role_holding_guests"]) | set(truth["scoped_role_guests"]) <= holders
    assert not set(truth["eligible_role_guests"]) & holders, "no P2: no eligibility to honour"


async def test_transitive_members_include_nested_groups(emulator: EmulatorServer, graph: Graph) -> None:
    groups = emulator.control.ground_truth()["groups"]
    outer, inner = groups["All Partners"], groups["Finance Partners"]
    live = emulator.tenant.groups
    assert inner in live[outer].members, "the demo tenant nests Finance Partners in All Partners"

    def people(group_id: str) -> set[str]:
        found: set[str] = set()
        for member in live[group_id].members:
            found |= people(member) if member in live else {member}
        return found

    members = await transitive_group_members(graph, [outer, groups["Guest Cleanup Exemptions"]])

    assert members == people(outer) | people(groups["Guest Cleanup Exemptions"])
    assert people(inner) - set(live[outer].members), "some people are only reachable through the nested group"
    assert inner not in members, "groups themselves are not exempt people"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("Finance Partners", id="display-name"),
        pytest.param("finance partners", id="name-is-case-insensitive"),
        pytest.param("<id>", id="object-id"),
    ],
)
async def test_resolve_groups_by_name_or_id(emulator: EmulatorServer, graph: Graph, key: str) -> None:
    group_id = emulator.control.ground_truth()["groups"]["Finance Partners"]
    key = group_id if key == "<id>" else key
    assert await resolve_groups(graph, [key]) == {key: group_id}


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("Finance Partnerz", id="unknown-name"),
        pytest.param("00000000-0000-0000-0000-000000000001", id="unknown-id"),
        pytest.param("O'Brien & Partners", id="quote-in-name"),
    ],
)
async def test_resolve_groups_names_the_unknown_group(graph: Graph, key: str) -> None:
    with pytest.raises(GroupNotFoundError, match=f'"{key}" not found'):
        await resolve_groups(graph, ["Finance Partners", key])


async def test_the_guest_count_for_progress_matches_the_scan(big: EmulatorServer, graph: Graph) -> None:
    assert await count_guests(graph) == GUESTS


async def test_a_cursor_for_another_host_starts_over_and_says_so(
    big: EmulatorServer, graph: Graph, store: Store
) -> None:
    foreign = ScanCheckpoint(
        "https://graph.example.invalid/v1.0/users?$skiptoken=x", 2, 1000, "2026-01-01", False, True
    )
    await store.upsert("scans", "stale", "moved", asdict(foreign))

    delivered = [g.id async for page in scan_guests(graph, store, scan_id="moved") for g in page]

    assert sorted(delivered) == sorted(guest_ids(big))
    checkpoint = await read_checkpoint(store, "moved")
    assert checkpoint is not None
    assert (checkpoint.finished, checkpoint.restarts, checkpoint.guests) == (True, 1, GUESTS), "a restart, counted"
