"""Texts longer than one record (plans): kept compressed in parts, read back whole, on SQLite and Azurite."""

from __future__ import annotations

import random

import pytest

from shared.store import MAX_DATA_CHARS, Store
from shared.store.text import PART_CHARS, put_text, read_text, read_texts


def incompressible(length: int, seed: int = 1) -> str:
    """Random text from a wide alphabet (quotes, backslashes, non-Latin letters, emoji, U+FFFE)."""
    alphabet = "abc\"\\\n'Zoë京都😀\ufffeé" + "".join(chr(c) for c in range(0x400, 0x430))
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param('{"a": "Zoë \\"quoted\\" 😀"}', id="small"),
        pytest.param(incompressible(120_000), id="several-parts"),
    ],
)
async def test_a_text_reads_back_exactly(store: Store, text: str) -> None:
    parts = await put_text(store, "plans", "p1", "plan", text)
    assert await read_text(store, "plans", "p1", "plan") == text
    records = [r async for r in store.query("plans", "p1")]
    assert len(records) == parts >= 1
    assert all(len(r.data["z"]) <= PART_CHARS < MAX_DATA_CHARS for r in records)
    if len(text) > 100_000:
        assert parts > 1


async def test_a_shorter_text_replaces_a_longer_one_under_the_same_key(store: Store) -> None:
    await put_text(store, "plans", "p1", "page-000001", incompressible(120_000))
    await put_text(store, "plans", "p1", "page-000001", "short")
    assert await read_text(store, "plans", "p1", "page-000001") == "short"


async def test_an_incomplete_text_is_left_out_and_others_are_read(store: Store) -> None:
    await put_text(store, "plans", "p1", "page-000001", incompressible(120_000, seed=2))
    await put_text(store, "plans", "p1", "page-000002", "whole")
    last = [r async for r in store.query("plans", "p1", row_prefix="page-000001-")][-1]
    await store.delete(last)  # as if the writer stopped before its last part

    assert await read_texts(store, "plans", "p1", prefix="page-") == {"page-000002": "whole"}
    assert await read_text(store, "plans", "p1", "page-000001") is None
    assert await read_text(store, "plans", "p1", "missing") is None


async def test_a_rewrite_that_stopped_half_way_never_mixes_with_the_old_text(store: Store) -> None:
    await put_text(store, "plans", "p1", "page-000001", incompressible(120_000, seed=3))
    first_part_of_old = await store.get("plans", "p1", "page-000001-00000")
    await put_text(store, "plans", "p1", "page-000001", incompressible(120_000, seed=4))
    assert first_part_of_old is not None
    # As if the rewrite had stopped after every part but the first: the old first part is still there.
    await store.upsert("plans", "p1", "page-000001-00000", first_part_of_old.data)

    assert await read_text(store, "plans", "p1", "page-000001") is None
