"""Texts longer than one store record (a saved plan, one page's share of a sweep plan).

A text is compressed (zlib) and base64-encoded, then split into records `{key}-00000`, `{key}-00001`, …
in one partition, each carrying the number of parts and the id of the write it belongs to: a rewrite
that stopped half way leaves parts of two writes, which never pass for one text. base64 needs no JSON
escaping, so every part's size is known exactly and stays under MAX_DATA_CHARS whatever the text contains
(quotes, non-Latin names).
Plans compress about tenfold, which also saves store round trips on Azure Tables.
"""

from __future__ import annotations

import base64
import uuid
import zlib

from shared.store.protocol import Store
from shared.store.rules import MAX_DATA_CHARS

PART_CHARS = MAX_DATA_CHARS - 1_000  # room for the record's other fields


async def put_text(store: Store, table: str, partition: str, key: str, text: str) -> int:
    """Keep `text` under `key`; returns the number of parts. Writing again under a key replaces it."""
    packed = base64.b64encode(zlib.compress(text.encode(), 1)).decode("ascii")
    parts = [packed[i : i + PART_CHARS] for i in range(0, len(packed), PART_CHARS)]
    write = uuid.uuid4().hex
    for number, part in enumerate(parts):
        await store.upsert(table, partition, f"{key}-{number:05d}", {"z": part, "parts": len(parts), "write": write})
    return len(parts)


async def read_texts(store: Store, table: str, partition: str, prefix: str = "") -> dict[str, str]:
    """Every complete text in the partition whose key starts with `prefix`, by key.

    A text whose parts are not all there (a writer stopped half way) is left out; parts beyond the
    count (left by a longer earlier text under the same key) are ignored.
    """
    found: dict[str, dict[int, dict[str, object]]] = {}
    async for record in store.query(table, partition, row_prefix=prefix):
        key, _, number = record.row.rpartition("-")
        if key and number.isdigit() and "z" in record.data:
            found.setdefault(key, {})[int(number)] = record.data
    texts = {}
    for key, parts in found.items():
        head = parts.get(0, {})
        count, write = head.get("parts"), head.get("write")
        if not isinstance(count, int) or any(
            (parts.get(n, {}).get("parts"), parts.get(n, {}).get("write")) != (count, write) for n in range(count)
        ):
            continue
        packed = "".join(str(parts[n]["z"]) for n in range(count))
        texts[key] = zlib.decompress(base64.b64decode(packed)).decode()
    return texts


async def read_text(store: Store, table: str, partition: str, key: str) -> str | None:
    """The text kept under `key`, or None if it is missing or incomplete."""
    return (await read_texts(store, table, partition, prefix=f"{key}-")).get(key)
