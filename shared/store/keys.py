"""Key order and the reversible key encoding the Azure Tables backend needs.

The contract orders keys by UTF-16 code units, because that is the order Azure Table Storage (and Azurite)
returns; the SQLite backend gets the same order by storing text as UTF-16BE (see sqlite.py).

Azure Tables forbids `/ \\ # ?` and control characters in keys, and `%` and `'` break some of its
operations (Azure/Azurite #1377, #1418). Guest UPNs contain `#EXT#`, so such keys are escaped. Plain
percent-encoding would change the order (`#` would sort as `%`), so the escape keeps order instead:

- every escaped character lives in a "gap" of neighbouring code points; one allowed character of the gap
  (its *lead*) is escaped too, and each character of the gap becomes `lead + DIGITS[position in gap]`;
- so escapes are two characters, sort exactly where the original character sorted, and no encoding is a
  prefix of another (prefix queries stay exact). A key of 255 characters encodes to ≤ 510 UTF-16 units,
  under Azure's 1 KiB key limit.

Examples: `ann_contoso.com#EXT#@x.onmicrosoft.com` → `ann_contoso.0com"1EXT"1@x.0onmicrosoft.0com`,
`a/b` → `a.1b`, a space → ` W`.
"""

from __future__ import annotations

from typing import Final

# Ascending in code-point order, so a digit sorts like the position it stands for.
DIGITS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# (first, last, lead) code points of each gap; the lead is the one character of the gap Azure accepts.
_GAPS: Final[tuple[tuple[int, int, int], ...]] = (
    (0x00, 0x20, 0x20),  # control characters, lead: space
    (0x22, 0x27, 0x22),  # " # $ % & '  (# forbidden; % and ' break Azure operations), lead: "
    (0x2E, 0x2F, 0x2E),  # . /, lead: .
    (0x3E, 0x3F, 0x3E),  # > ?, lead: >
    (0x5B, 0x5C, 0x5B),  # [ \, lead: [
    (0x7F, 0xA0, 0xA0),  # DEL and C1 controls, lead: no-break space
)

_ENCODE: Final[dict[int, str]] = {
    code: chr(lead) + DIGITS[code - first] for first, last, lead in _GAPS for code in range(first, last + 1)
}
_DECODE_GAP: Final[dict[str, int]] = {chr(lead): first for first, _last, lead in _GAPS}
_NEVER_ENCODED: Final[frozenset[int]] = frozenset(_ENCODE) - {lead for _first, _last, lead in _GAPS}


def encode_key(key: str) -> str:
    """Turn any valid key into one Azure Tables accepts, keeping the order and reversibility."""
    return key.translate(_ENCODE)


def decode_key(encoded: str) -> str:
    """Invert `encode_key`."""
    if not any(lead in encoded for lead in _DECODE_GAP):
        return encoded
    characters: list[str] = []
    position = 0
    while position < len(encoded):
        character = encoded[position]
        first = _DECODE_GAP.get(character)
        if first is None:
            characters.append(character)
            position += 1
            continue
        digit = encoded[position + 1 : position + 2]
        if not digit or digit not in DIGITS:
            raise ValueError(f"not an encoded key: {encoded!r}")
        characters.append(chr(first + DIGITS.index(digit)))
        position += 2
    return "".join(characters)


def sort_order(key: str) -> bytes:
    """The contract's key order (UTF-16 code units), as a sort key for Python's `sorted`."""
    return key.encode("utf-16-be", "surrogatepass")


def prefix_end(prefix: str, *, encoded: bool = False) -> str | None:
    """The smallest string sorting after every string that starts with `prefix` (None: no such bound).

    Order is by UTF-16 code units. With `encoded`, characters that never occur in an encoded key are
    skipped, so the bound itself is a clean OData literal.
    """
    characters = list(prefix)
    while characters:
        following = _next_character(ord(characters.pop()), skip_never_encoded=encoded)
        if following is not None:
            return "".join(characters) + following
    return None


def _next_character(code: int, *, skip_never_encoded: bool) -> str | None:
    """The next character in UTF-16 code-unit order, or None when `code` is the last one.

    U+FFFD is the last: keys never contain the noncharacters U+FFFE/U+FFFF (SQLite turns them into U+FFFD,
    so a bound made of them would be wrong there).
    """
    while True:
        if 0xFFFD <= code <= 0xFFFF:
            return None
        if code == 0xD7FF:
            # U+D800..DFFF are surrogates; the next valid text in code-unit order is U+10000 (D800 DC00).
            return chr(0x10000)
        if code == 0x10FFFF:
            # DBFF DFFF is the largest pair; the next code unit that can start a character is U+E000.
            return chr(0xE000)
        code += 1
        if not (skip_never_encoded and code in _NEVER_ENCODED):
            return chr(code)
