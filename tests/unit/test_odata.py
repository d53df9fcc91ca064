"""The shared OData pieces: literals, chunks, and finding groups named by id or display name."""

from __future__ import annotations

import pytest

from shared.graph.odata import GroupRef, chunks, group_filters, index_groups, literal, matching_groups

FINANCE = {"id": "0b1f4c1e-0000-4000-8000-000000000001", "displayName": "Finance"}
PROJECTS_1 = {"id": "0b1f4c1e-0000-4000-8000-000000000002", "displayName": "Projects"}
PROJECTS_2 = {"id": "0b1f4c1e-0000-4000-8000-000000000003", "displayName": "projects"}
# a group whose display name is another group's id: the id wins
TRICKY = {"id": "0b1f4c1e-0000-4000-8000-000000000004", "displayName": FINANCE["id"]}
DYNAMIC = {"id": "0b1f4c1e-0000-4000-8000-000000000005", "displayName": "All", "groupTypes": ["DynamicMembership"]}


@pytest.fixture
def index() -> dict[str, list[GroupRef]]:
    built: dict[str, list[GroupRef]] = {}
    index_groups(built, [FINANCE, PROJECTS_1, PROJECTS_2, TRICKY, DYNAMIC])
    index_groups(built, [FINANCE])  # found by two lookups: listed once
    return built


@pytest.mark.parametrize(
    ("key", "ids"),
    [
        pytest.param("Finance", [FINANCE["id"]], id="by-name"),
        pytest.param("  FINANCE ", [FINANCE["id"]], id="name-any-case-trimmed"),
        pytest.param(FINANCE["id"].upper(), [FINANCE["id"]], id="by-id-beats-a-name-that-looks-like-it"),
        pytest.param("Projects", [PROJECTS_1["id"], PROJECTS_2["id"]], id="ambiguous-name"),
        pytest.param("Nobody", [], id="not-found"),
    ],
)
def test_matching_groups(index: dict[str, list[GroupRef]], key: str, ids: list[str]) -> None:
    assert [g.id for g in matching_groups(key, index)] == ids


def test_dynamic_membership_is_read_from_group_types(index: dict[str, list[GroupRef]]) -> None:
    assert [g.dynamic for g in matching_groups("All", index)] == [True]


def test_group_filters_look_up_guids_by_id_and_every_key_by_name() -> None:
    filters = group_filters([FINANCE["id"], "O'Brien team"])
    assert filters == [f"id in ('{FINANCE['id']}')", f"displayName in ('{FINANCE['id']}','O''Brien team')"]


def test_long_lists_are_chunked_to_graphs_in_limit() -> None:
    keys = [f"group {i}" for i in range(31)]
    assert [len(c) for c in chunks(keys)] == [15, 15, 1]
    assert len(group_filters(keys)) == 3


def test_literal_doubles_single_quotes() -> None:
    assert literal("it's") == "'it''s'"
