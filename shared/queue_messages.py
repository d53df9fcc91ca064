"""Decoding a queue message the app wrote: one place for what a malformed one means.

A malformed message is never worth a retry, so it is an InputError: the worker parks it in the poison queue at
once with this one-line reason. msgspec raises UnicodeDecodeError, not its DecodeError, on bad UTF-8 inside a
JSON string or key; both are caught here.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from shared.errors import InputError, cap

T = TypeVar("T")
MAX_REASON_CHARS = 300


def decode_message(body: bytes | str, type_: type[T], queue: str) -> T:
    """The message as `type_`, or InputError naming the queue and what is wrong."""
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise InputError(f"malformed {queue} queue message: {cap(str(error), MAX_REASON_CHARS)}") from None
