"""A secret key kept in the state store, to sign what guestctl writes outside it (saved plans).

A plan's digest only shows that a file was not damaged by accident: anyone who can edit the file can
recompute it. An HMAC of the digest with a key that lives in the state store shows that guestctl itself,
with this store, wrote the plan. It does not stand against someone who can also read the store; that is
why apply re-derives every action from fresh data anyway (docs/stale.md, "A plan is a request").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from shared.errors import AlreadyExistsError
from shared.store.protocol import Store
from shared.store.registry import SIGNING_KEYS

KEYS_TABLE = SIGNING_KEYS
KEYS_PARTITION = "keys"
SIGNATURE_PREFIX = "hmac-sha256:"


async def signing_key(store: Store, name: str) -> bytes:
    """The store's key called `name`, made (32 random bytes) the first time it is asked for."""
    record = await store.get(KEYS_TABLE, KEYS_PARTITION, name)
    if record is None:
        fresh = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            record = await store.create(KEYS_TABLE, KEYS_PARTITION, name, {"key": fresh})
        except AlreadyExistsError:  # another process made it first: use theirs
            record = await store.get(KEYS_TABLE, KEYS_PARTITION, name)
            assert record is not None
    return base64.b64decode(record.data["key"])


def sign(key: bytes, message: str) -> str:
    return SIGNATURE_PREFIX + hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_by(key: bytes, message: str, signature: object) -> bool:
    """Whether `signature` is `key`'s signature of `message` (compared in constant time)."""
    return isinstance(signature, str) and hmac.compare_digest(sign(key, message), signature)
