"""The Azure key encoding keeps order, round-trips, and never emits a character Azure refuses."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from shared.store.keys import decode_key, encode_key, prefix_end, sort_order

AZURE_REFUSES = re.compile(r"[\x00-\x1f\x7f-\x9f/\\#?%']")  # forbidden, plus % and ' (Azurite #1377, #1418)
keys = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\ufffe\uffff"), min_size=1, max_size=12)


@given(keys)
def test_encoding_round_trips_and_is_azure_safe(key: str) -> None:
    encoded = encode_key(key)

    assert decode_key(encoded) == key
    assert not AZURE_REFUSES.search(encoded)
    assert len(encoded.encode("utf-16-le")) <= 2 * 2 * len(key)  # 255 characters stay under 1 KiB


@given(keys, keys)
def test_encoding_keeps_utf16_order(first: str, second: str) -> None:
    assert (sort_order(first) < sort_order(second)) == (sort_order(encode_key(first)) < sort_order(encode_key(second)))


@given(keys, st.text(max_size=6), st.booleans())
def test_prefix_bounds_are_exact(prefix: str, suffix: str, extend: bool) -> None:
    key = prefix + suffix if extend else prefix[:-1] + suffix
    if not key:
        return
    for low, high, candidate in (
        (prefix, prefix_end(prefix), key),
        (encode_key(prefix), prefix_end(encode_key(prefix), encoded=True), encode_key(key)),
    ):
        inside = sort_order(low) <= sort_order(candidate) and (high is None or sort_order(candidate) < sort_order(high))
        assert inside == key.startswith(prefix)
