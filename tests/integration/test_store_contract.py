"""The store contract (docs/store.md): every test runs on SQLite and on Azure Tables (Azurite).

A backend is correct when it passes this file unchanged; the two must never differ in behaviour.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from shared.errors import AlreadyExistsError, StaleVersionError, StoreError
from shared.store import (
    MAX_DATA_CHARS,
    AuditEntry,
    InvalidRecordError,
    Record,
    Store,
    describe_location,
)
from shared.store.keys import sort_order
from tests.support.azurite import ACCOUNT_KEY, REPOSITORY_ROOT, StoreLocation

T = TypeVar("T")
NOW = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


async def collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


async def run_bounded(calls: Iterable[Awaitable[T]], limit: int = 32) -> list[T]:
    """Run many store calls concurrently, at most `limit` at a time (loopback Azurite on 2 cores)."""
    gate = asyncio.Semaphore(limit)

    async def bounded(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return await asyncio.gather(*(bounded(call) for call in calls))


def audit_entry(**overrides: Any) -> AuditEntry:
    fields: dict[str, Any] = {
        "action": "user.disable",
        "target_id": "guest-1",
        "actor": "guestctl-cli:admin@contoso.com",
        "reason": "last active 2024-10-01 (164 days)",
        "before": {"accountEnabled": True},
        "after": {"accountEnabled": False},
        "plan_digest": "sha256:5f1c",
        "run_id": "run-1",
    }
    return AuditEntry(**(fields | overrides))


# --- create / get ----------------------------------------------------------------------------------------


async def test_create_then_get_returns_the_same_record(store: Store) -> None:
    data = {
        "state": "flagged",
        "flagged_at": "2025-01-31T00:00:00+00:00",
        "reminders": 3,
        "score": 0.25,
        "exempt": False,
        "sponsor": None,
        "evidence": {"signIns": [{"at": "2024-10-01", "kind": "interactive"}], "note": 'Zoë "quoted" 😀\n\ufffe\uffff'},
    }
    created = await store.create("guests", "contoso", "ann", data)

    assert created == Record("guests", "contoso", "ann", data, created.version)
    assert await store.get("guests", "contoso", "ann") == created


async def test_get_of_a_missing_record_is_none(store: Store) -> None:
    assert await store.get("guests", "contoso", "ann") is None  # table never written
    await store.create("guests", "contoso", "ann", {})

    assert await store.get("guests", "contoso", "bob") is None
    assert await store.get("guests", "fabrikam", "ann") is None
    assert await store.get("invites", "contoso", "ann") is None


async def test_create_of_an_existing_key_is_refused_and_keeps_the_first(store: Store) -> None:
    first = await store.create("guests", "contoso", "ann", {"by": "worker-1"})

    with pytest.raises(AlreadyExistsError, match="already exists"):
        await store.create("guests", "contoso", "ann", {"by": "worker-2"})
    assert await store.get("guests", "contoso", "ann") == first


# --- conditional update / delete ---------------------------------------------------------------------------


async def test_update_with_the_current_version_replaces_data_and_version(store: Store) -> None:
    created = await store.create("guests", "contoso", "ann", {"state": "flagged", "extra": 1})

    updated = await store.update(created, {"state": "disabled"})

    assert updated.data == {"state": "disabled"}
    assert updated.version != created.version
    assert await store.get("guests", "contoso", "ann") == updated


async def test_update_with_a_stale_version_is_refused_and_changes_nothing(store: Store) -> None:
    created = await store.create("guests", "contoso", "ann", {"reminders": 1})
    current = await store.update(created, {"reminders": 2})

    with pytest.raises(StaleVersionError, match="changed or was deleted"):
        await store.update(created, {"reminders": 99})
    assert await store.get("guests", "contoso", "ann") == current


async def test_update_after_delete_is_refused_and_does_not_recreate(store: Store) -> None:
    created = await store.create("guests", "contoso", "ann", {"state": "flagged"})
    await store.delete(created)

    with pytest.raises(StaleVersionError):
        await store.update(created, {"state": "disabled"})
    assert await store.get("guests", "contoso", "ann") is None


async def test_delete_with_a_stale_version_is_refused(store: Store) -> None:
    created = await store.create("guests", "contoso", "ann", {"state": "flagged"})
    current = await store.update(created, {"state": "exempt"})

    with pytest.raises(StaleVersionError):
        await store.delete(created)
    assert await store.get("guests", "contoso", "ann") == current

    await store.delete(current)
    assert await store.get("guests", "contoso", "ann") is None


async def test_second_delete_from_the_same_read_is_refused(store: Store) -> None:
    created = await store.create("events", "hr", "evt-1", {})
    await store.delete(created)

    with pytest.raises(StaleVersionError):
        await store.delete(created)


async def test_an_old_version_does_not_match_a_recreated_record(store: Store) -> None:
    created = await store.create("guests", "contoso", "ann", {"generation": 1})
    await store.delete(created)
    recreated = await store.create("guests", "contoso", "ann", {"generation": 2})

    with pytest.raises(StaleVersionError):
        await store.update(created, {"generation": 1})
    with pytest.raises(StaleVersionError):
        await store.delete(created)
    assert await store.get("guests", "contoso", "ann") == recreated


async def test_upsert_creates_then_replaces_without_a_version(store: Store) -> None:
    first = await store.upsert("checkpoints", "stale-scan", "cursor", {"page": 1})
    assert await store.get("checkpoints", "stale-scan", "cursor") == first

    second = await store.upsert("checkpoints", "stale-scan", "cursor", {"page": 2})

    assert second.data == {"page": 2}
    assert second.version != first.version
    assert await store.get("checkpoints", "stale-scan", "cursor") == second
    with pytest.raises(StaleVersionError):  # conditional writers notice the unconditional write
        await store.update(first, {"page": 3})


async def test_two_updates_from_the_same_read_exactly_one_wins(store: Store) -> None:
    read = await store.create("runs", "stale", "run-1", {"state": "planned"})

    outcomes = await asyncio.gather(
        store.update(read, {"state": "applying", "by": "worker-a"}),
        store.update(read, {"state": "applying", "by": "worker-b"}),
        return_exceptions=True,
    )

    winners = [outcome for outcome in outcomes if isinstance(outcome, Record)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, StaleVersionError)]
    assert (len(winners), len(losers)) == (1, 1)
    assert await store.get("runs", "stale", "run-1") == winners[0]


async def test_two_stores_on_the_same_state_see_each_other_and_race_safely(store_location: StoreLocation) -> None:
    first, second = store_location.open(), store_location.open()
    created = await first.create("guests", "contoso", "ann", {"state": "flagged"})

    seen = await second.get("guests", "contoso", "ann")
    assert seen == created
    updated = await second.update(seen, {"state": "disabled"})

    with pytest.raises(StaleVersionError):
        await first.update(created, {"state": "exempt"})
    assert await first.get("guests", "contoso", "ann") == updated


INCREMENTER = """
import asyncio, os
from shared.errors import StaleVersionError
from shared.store import open_store

async def main() -> None:
    location, prefix = os.environ["STORE_LOCATION"], os.environ["STORE_PREFIX"]
    async with open_store(location, prefix=prefix) as store:
        done = 0
        while done < int(os.environ["INCREMENTS"]):
            budget = await store.get("pacing", "graph", "writes")
            try:
                await store.update(budget, {"used": budget.data["used"] + 1})
            except StaleVersionError:
                continue
            done += 1

asyncio.run(main())
"""


async def test_processes_sharing_a_counter_lose_no_update(store_location: StoreLocation, store: Store) -> None:
    """The pacer's shared budget (docs/architecture.md#scale): read, conditional update, retry on conflict."""
    increments, processes = 20, 2
    await store.create("pacing", "graph", "writes", {"used": 0})
    environment = os.environ | {
        "STORE_LOCATION": store_location.location,
        "STORE_PREFIX": store_location.prefix,
        "INCREMENTS": str(increments),
        "PYTHONPATH": str(REPOSITORY_ROOT),
    }

    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", INCREMENTER, env=environment, cwd=REPOSITORY_ROOT)
        for _ in range(processes)
    ]
    exit_codes = await asyncio.wait_for(asyncio.gather(*(worker.wait() for worker in workers)), timeout=60)

    assert exit_codes == [0] * processes
    budget = await store.get("pacing", "graph", "writes")
    assert budget is not None
    assert budget.data == {"used": increments * processes}


# --- query -------------------------------------------------------------------------------------------------

QUERY_KEYS = [("b", "2"), ("a", "10"), ("b", "1"), ("a", "1"), ("c", "1x"), ("a", "2"), ("a", "1y")]


async def create_all(store: Store, table: str, keys: Iterable[tuple[str, str]]) -> None:
    await run_bounded(store.create(table, partition, row, {"key": [partition, row]}) for partition, row in keys)


async def test_query_returns_records_ordered_by_partition_then_row(store: Store) -> None:
    await create_all(store, "items", QUERY_KEYS)

    found = await collect(store.query("items"))

    assert [(record.partition, record.row) for record in found] == [
        ("a", "1"),
        ("a", "10"),
        ("a", "1y"),
        ("a", "2"),
        ("b", "1"),
        ("b", "2"),
        ("c", "1x"),
    ]
    assert found[0] == await store.get("items", "a", "1")


@pytest.mark.parametrize(
    ("partition", "row_prefix", "expected"),
    [
        pytest.param("a", None, [("a", "1"), ("a", "10"), ("a", "1y"), ("a", "2")], id="one-partition"),
        pytest.param("a", "1", [("a", "1"), ("a", "10"), ("a", "1y")], id="partition-and-row-prefix"),
        pytest.param(
            None,
            "1",
            [("a", "1"), ("a", "10"), ("a", "1y"), ("b", "1"), ("c", "1x")],
            id="row-prefix-in-every-partition",
        ),
        pytest.param("a", "10", [("a", "10")], id="prefix-equal-to-a-whole-key"),
        pytest.param("a", "3", [], id="prefix-matching-nothing"),
        pytest.param("z", None, [], id="partition-with-no-records"),
    ],
)
async def test_query_filters_by_partition_and_row_prefix(
    store: Store, partition: str | None, row_prefix: str | None, expected: list[tuple[str, str]]
) -> None:
    await create_all(store, "items", QUERY_KEYS)

    found = await collect(store.query("items", partition, row_prefix=row_prefix))

    assert [(record.partition, record.row) for record in found] == expected


async def test_query_sees_only_its_own_table(store: Store) -> None:
    await store.create("guests", "contoso", "ann", {})
    await store.create("invites", "contoso", "bob", {})

    assert [record.row for record in await collect(store.query("guests"))] == ["ann"]
    assert await collect(store.query("reports")) == []


async def test_query_streams_past_one_azure_page(store: Store) -> None:
    """Azure returns at most 1,000 entities per response; the query must follow continuation tokens."""
    rows = [f"guest-{number:05d}" for number in range(1_050)]
    await run_bounded(store.create("scans", "contoso", row, {"n": number}) for number, row in enumerate(rows))
    await store.create("scans", "fabrikam", "guest-00000", {"n": -1})

    found = await collect(store.query("scans", "contoso"))

    assert [record.row for record in found] == rows
    assert [record.data["n"] for record in found] == list(range(1_050))
    assert len(await collect(store.query("scans"))) == 1_051
    assert len(await collect(store.query("scans", "contoso", row_prefix="guest-01"))) == 50


# --- keys --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("ann_contoso.com#EXT#@tenant.onmicrosoft.com", id="guest-upn-with-EXT"),
        pytest.param("a/b\\c", id="slash-and-backslash"),
        pytest.param("why?not", id="question-mark"),
        pytest.param("100% 'single' \"double\"", id="percent-and-quotes"),
        pytest.param("tab\tnew\nline\x00nul\x7fdel\x85c1", id="control-characters"),
        pytest.param("Zoë Ålborg 東京 ﬀ", id="unicode"),
        pytest.param("😀\U0010ffff\ufffd", id="beyond-the-bmp"),
        pytest.param(' .0"1 W[0>1\xa00', id="looks-like-an-escape"),
        pytest.param(" padded ", id="leading-and-trailing-spaces"),
        pytest.param("x" * 255, id="255-characters"),
        pytest.param("#" * 255, id="255-escaped-characters"),
        pytest.param("😀" * 255, id="255-characters-beyond-the-bmp"),
    ],
)
async def test_any_key_round_trips(store: Store, key: str) -> None:
    created = await store.create("guests", key, key, {"key": key})

    assert await store.get("guests", key, key) == created
    assert await collect(store.query("guests", key)) == [created]
    assert await collect(store.query("guests", row_prefix=key)) == [created]
    updated = await store.update(created, {"key": key, "updated": True})
    await store.delete(updated)
    assert await store.get("guests", key, key) is None


HOSTILE_CHARACTERS = 'aZ09-_@~ #/?\\%\'".>[]"W\x00\x01\x1f\x7f\x85\x9f\xa0é\xff\ud7ff\ue000\ufffd😀\U0010ffff東'


async def test_keys_sort_by_utf16_code_units_on_every_backend(store: Store) -> None:
    """The documented order; a key encoding that reorders `#` or `/` would break resumable scans."""
    generator = random.Random(20250314)  # fixed: the same keys on every run and backend
    keys = sorted({"".join(generator.choices(HOSTILE_CHARACTERS, k=generator.randint(1, 5))) for _ in range(160)})
    generator.shuffle(keys)
    await run_bounded(store.create("orders", "p", key, {"row": key}) for key in keys)

    found = await collect(store.query("orders", "p"))

    assert [record.row for record in found] == sorted(keys, key=sort_order)
    assert all(record.data == {"row": record.row} for record in found)


PREFIX_KEYS = [
    "an",
    "ann",
    "ann#",
    "ann#EXT#",
    "ann#EXT#@x",
    "ann.",
    "ann/",
    "anna",
    "ann\ufffd",
    "ann\ufffdx",
    "ann😀",
    "ann😁",
    "ao",
]


@pytest.mark.parametrize(
    "row_prefix",
    [
        pytest.param("ann", id="plain"),
        pytest.param("ann#", id="escaped-character"),
        pytest.param("ann#EXT#", id="guest-upn-part"),
        pytest.param("ann.", id="escape-lead-character"),
        pytest.param("ann\ufffd", id="ends-above-the-surrogates"),
        pytest.param("ann😀", id="ends-beyond-the-bmp"),
    ],
)
async def test_row_prefix_matches_exactly_the_rows_starting_with_it(store: Store, row_prefix: str) -> None:
    await run_bounded(store.create("prefixes", "p", key, {}) for key in PREFIX_KEYS)

    found = await collect(store.query("prefixes", "p", row_prefix=row_prefix))

    expected = sorted((key for key in PREFIX_KEYS if key.startswith(row_prefix)), key=sort_order)
    assert [record.row for record in found] == expected


@pytest.mark.parametrize(
    ("partition", "row"),
    [
        pytest.param("", "ann", id="empty-partition-key"),
        pytest.param("contoso", "", id="empty-row-key"),
        pytest.param("contoso", "x" * 256, id="longer-than-255"),
        pytest.param("contoso", "bad\ud800text", id="lone-surrogate"),
        pytest.param("contoso", "bad\uffff", id="noncharacter"),
        pytest.param(42, "ann", id="not-text"),
    ],
)
async def test_invalid_keys_are_refused(store: Store, partition: Any, row: Any) -> None:
    with pytest.raises(InvalidRecordError, match="key"):
        await store.create("guests", partition, row, {})
    with pytest.raises(InvalidRecordError, match="key"):
        await store.get("guests", partition, row)
    with pytest.raises(InvalidRecordError, match="key"):
        await store.upsert("guests", partition, row, {})


# --- table names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    [
        pytest.param("ab", id="shorter-than-3"),
        pytest.param("a" * 32, id="longer-than-31"),
        pytest.param("Guests", id="uppercase"),
        pytest.param("1guests", id="starts-with-a-digit"),
        pytest.param("guest-states", id="dash"),
        pytest.param("guest_states", id="underscore"),
        pytest.param("", id="empty"),
    ],
)
async def test_invalid_table_names_are_refused(store: Store, table: str) -> None:
    with pytest.raises(InvalidRecordError, match="table name"):
        await store.create(table, "p", "r", {})
    with pytest.raises(InvalidRecordError, match="table name"):
        await store.get(table, "p", "r")
    with pytest.raises(InvalidRecordError, match="table name"):
        store.query(table)


@pytest.mark.parametrize(
    "table", [pytest.param("abc", id="3-characters"), pytest.param("a" + "9" * 30, id="31-characters")]
)
async def test_table_names_at_the_limits_are_accepted(store: Store, table: str) -> None:
    created = await store.create(table, "p", "r", {})

    assert await collect(store.query(table)) == [created]


# --- data --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"when": datetime(2025, 1, 1, tzinfo=UTC)}, id="datetime-store-iso-text-instead"),
        pytest.param({"ids": {1, 2}}, id="set"),
        pytest.param({"ratio": math.nan}, id="nan"),
        pytest.param({"nested": [{"x": math.inf}]}, id="infinity"),
        pytest.param({1: "one"}, id="non-text-object-key"),
        pytest.param(["not", "a", "dict"], id="not-a-dict"),
        pytest.param({"text": "bad\udc00"}, id="lone-surrogate"),
    ],
)
async def test_data_that_is_not_json_is_refused(store: Store, data: Any) -> None:
    with pytest.raises(InvalidRecordError, match="guests/'contoso'/'ann'"):
        await store.create("guests", "contoso", "ann", data)
    assert await store.get("guests", "contoso", "ann") is None


def json_of_size(size: int, character: str = "x") -> dict[str, str]:
    """Data whose compact JSON is exactly `size` UTF-16 code units (`character` counted as it is stored)."""
    overhead = len('{"blob":""}')
    units = 2 if ord(character) > 0xFFFF else 1
    count, remainder = divmod(size - overhead, units)
    return {"blob": character * count + "x" * remainder}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(json_of_size(MAX_DATA_CHARS), id="ascii-at-the-limit"),
        pytest.param(json_of_size(MAX_DATA_CHARS, "é"), id="accented-at-the-limit"),
        pytest.param(json_of_size(MAX_DATA_CHARS, "😀"), id="beyond-the-bmp-at-the-limit"),
    ],
)
async def test_data_at_the_size_limit_is_stored(store: Store, data: dict[str, str]) -> None:
    created = await store.create("reports", "weekly", "2025-11", data)

    assert await store.get("reports", "weekly", "2025-11") == created


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(json_of_size(MAX_DATA_CHARS + 1), id="one-character-over"),
        pytest.param(json_of_size(MAX_DATA_CHARS + 1, "😀"), id="beyond-the-bmp-counts-twice"),
    ],
)
async def test_oversized_data_is_refused_naming_the_record_and_size(store: Store, data: dict[str, str]) -> None:
    existing = await store.create("reports", "weekly", "2025-11", {"blob": ""})

    with pytest.raises(InvalidRecordError, match=r"reports/'weekly'/'2025-12': data is 30,001 characters"):
        await store.create("reports", "weekly", "2025-12", data)
    with pytest.raises(InvalidRecordError, match="30,001"):
        await store.update(existing, data)
    with pytest.raises(InvalidRecordError, match="30,001"):
        await store.upsert("reports", "weekly", "2025-11", data)
    assert await store.get("reports", "weekly", "2025-11") == existing
    assert await store.get("reports", "weekly", "2025-12") is None


# --- audit -------------------------------------------------------------------------------------------------


async def test_append_fills_id_and_time_from_the_clock(store_location: StoreLocation) -> None:
    store = store_location.open(clock=lambda: NOW)

    appended = await store.append_audit(audit_entry())

    assert appended == replace(audit_entry(), at=NOW, id=appended.id)
    assert appended.id
    assert await collect(store.read_audit()) == [appended]


async def test_entries_read_back_chronologically_with_every_field(store: Store) -> None:
    moments = [
        datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2025, 2, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))),  # still January 31 in UTC
        datetime(2024, 12, 31, 0, 0, tzinfo=UTC),
    ]
    appended = [
        await store.append_audit(audit_entry(at=moment, target_id=f"guest-{number}"))
        for number, moment in enumerate(moments)
    ]
    appended.append(
        await store.append_audit(
            AuditEntry(
                action="invite.send", target_id="bob@fabrikam.com", actor="fn:invite", reason="batch 7 row 3", at=NOW
            )
        )
    )

    found = await collect(store.read_audit())

    assert found == sorted(appended, key=lambda entry: entry.at or NOW)
    assert [entry.target_id for entry in found] == ["guest-3", "guest-2", "guest-1", "guest-0", "bob@fabrikam.com"]
    assert found[-1].before is None
    assert found[-1].run_id is None
    assert all(entry.at is not None and entry.at.tzinfo is UTC for entry in found)


async def test_entries_at_the_same_moment_are_all_kept(store: Store) -> None:
    appended = [await store.append_audit(audit_entry(at=NOW, target_id=f"guest-{number}")) for number in range(3)]

    found = await collect(store.read_audit())

    assert sorted(entry.target_id for entry in found) == ["guest-0", "guest-1", "guest-2"]
    assert len({entry.id for entry in found}) == 3
    assert found == sorted(appended, key=lambda entry: entry.id or "")  # ties: by id, on every backend


AUDIT_LOG = [  # (reason as a label, at, run_id, target_id)
    ("jan-run1-ann", datetime(2025, 1, 10, tzinfo=UTC), "run-1", "ann"),
    ("jan-run1-bob", datetime(2025, 1, 20, tzinfo=UTC), "run-1", "bob"),
    ("feb-run2-ann", datetime(2025, 2, 5, tzinfo=UTC), "run-2", "ann"),
    ("feb-none-cat", datetime(2025, 2, 28, 23, 59, tzinfo=UTC), None, "cat"),
    ("mar-run3-ann", datetime(2025, 3, 1, tzinfo=UTC), "run-3", "it's-ann"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, [label for label, *_ in AUDIT_LOG], id="no-filter"),
        pytest.param({"run_id": "run-1"}, ["jan-run1-ann", "jan-run1-bob"], id="by-run"),
        pytest.param({"target_id": "ann"}, ["jan-run1-ann", "feb-run2-ann"], id="by-target"),
        pytest.param({"target_id": "it's-ann"}, ["mar-run3-ann"], id="by-target-with-a-quote"),
        pytest.param({"run_id": "run-1", "target_id": "bob"}, ["jan-run1-bob"], id="by-run-and-target"),
        pytest.param(
            {"since": datetime(2025, 1, 20, tzinfo=UTC)},
            ["jan-run1-bob", "feb-run2-ann", "feb-none-cat", "mar-run3-ann"],
            id="since-is-inclusive",
        ),
        pytest.param(
            {"until": datetime(2025, 2, 5, tzinfo=UTC)}, ["jan-run1-ann", "jan-run1-bob"], id="until-is-exclusive"
        ),
        pytest.param(
            {"since": datetime(2025, 1, 15, tzinfo=UTC), "until": datetime(2025, 3, 1, tzinfo=UTC)},
            ["jan-run1-bob", "feb-run2-ann", "feb-none-cat"],
            id="window-across-months",
        ),
        pytest.param(
            {"since": datetime(2025, 2, 1, tzinfo=UTC), "target_id": "ann"}, ["feb-run2-ann"], id="since-and-target"
        ),
        pytest.param({"run_id": "run-9"}, [], id="no-match"),
    ],
)
async def test_read_audit_filters(store: Store, filters: dict[str, Any], expected: list[str]) -> None:
    for label, at, run_id, target_id in AUDIT_LOG:
        await store.append_audit(audit_entry(reason=label, at=at, run_id=run_id, target_id=target_id))

    found = await collect(store.read_audit(**filters))

    assert [entry.reason for entry in found] == expected


AUDIT_BYPASSES: dict[str, Callable[[Store], Awaitable[Any]]] = {
    "get": lambda store: store.get("audit", "2025-01", "x"),
    "create": lambda store: store.create("audit", "2025-01", "x", {}),
    "upsert": lambda store: store.upsert("audit", "2025-01", "x", {}),
    "update": lambda store: store.update(Record("audit", "2025-01", "x", {}, "1"), {}),
    "delete": lambda store: store.delete(Record("audit", "2025-01", "x", {}, "1")),
    "query": lambda store: collect(store.query("audit")),
}


@pytest.mark.parametrize("method", AUDIT_BYPASSES)
async def test_generic_methods_cannot_reach_the_audit_log(store: Store, method: str) -> None:
    appended = await store.append_audit(audit_entry())

    with pytest.raises(InvalidRecordError, match="append-only audit log"):
        await AUDIT_BYPASSES[method](store)
    assert await collect(store.read_audit()) == [appended]


async def test_the_store_has_no_other_way_to_change_state(store: Store) -> None:
    """Append-only audit: the only audit methods append and read; nothing else is public."""
    public = {name for name in dir(store) if not name.startswith("_")}

    assert public == {"get", "create", "update", "upsert", "delete", "query", "append_audit", "read_audit", "close"}


async def test_an_entry_is_appended_once(store: Store) -> None:
    appended = await store.append_audit(audit_entry())

    with pytest.raises(InvalidRecordError, match="already has an id"):
        await store.append_audit(appended)
    assert await collect(store.read_audit()) == [appended]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"reason": ""}, id="empty-reason"),
        pytest.param({"actor": " "}, id="blank-actor"),
        pytest.param({"action": None}, id="missing-action"),
        pytest.param({"before": {"photo": "x" * MAX_DATA_CHARS}}, id="oversized-before"),
        pytest.param({"after": {"when": datetime(2025, 1, 1, tzinfo=UTC)}}, id="after-not-json"),
        pytest.param({"run_id": 7}, id="run-id-not-text"),
    ],
)
async def test_invalid_audit_entries_are_refused(store: Store, overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecordError, match="audit entry"):
        await store.append_audit(audit_entry(**overrides))
    assert await collect(store.read_audit()) == []


async def test_naive_datetimes_are_refused(store: Store) -> None:
    naive = datetime(2025, 1, 1, 12, 0)

    with pytest.raises(ValueError, match="timezone-aware"):
        await store.append_audit(audit_entry(at=naive))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.read_audit(since=naive)


# --- lifecycle ---------------------------------------------------------------------------------------------


async def test_reads_of_fresh_state_create_nothing(store_location: StoreLocation, store: Store) -> None:
    """`guestctl status` on a new machine must not leave a state file (or tables) behind."""
    assert await store.get("guests", "contoso", "ann") is None
    assert await collect(store.query("guests")) == []
    assert await collect(store.read_audit()) == []
    assert not await store_location.has_state()

    await store.create("guests", "contoso", "ann", {})

    assert await store_location.has_state()


async def test_location_descriptions_and_reprs_never_show_the_account_key(
    store_location: StoreLocation, store: Store
) -> None:
    await store.upsert("guests", "contoso", "ann", {})

    for text in (describe_location(store_location.location), repr(store)):
        assert ACCOUNT_KEY not in text
        assert ACCOUNT_KEY[:12] not in text


async def test_a_closed_store_refuses_calls(store_location: StoreLocation) -> None:
    async with store_location.open() as store:
        await store.upsert("guests", "contoso", "ann", {})

    with pytest.raises(StoreError, match="closed"):
        await store.get("guests", "contoso", "ann")
