"""Signed attestation tokens and the link settings: pure, no I/O beyond reading the two settings.

A token says "sponsor S may answer ACTION for guest G until EXPIRY", once (its nonce). It is 82 bytes,
base64url without padding (110 characters), so a link stays short in a plain-text email:

    version (1) · action (1) · guest id (16, a GUID; all zeros for "every guest in the digest") ·
    sponsor id (16) · expiry (4, unix seconds) · nonce (12) · HMAC-SHA256 of the 50 bytes before it (32)

The MAC is checked in constant time before anything in the token is trusted (forged and tampered tokens
are one error: nobody can tell them apart without the secret), then the expiry. Single use is the store's
job (`shared.attestation.service`): the nonce's record is created conditionally when a POST acts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from shared.app_secrets import required_secret
from shared.errors import ConfigError

URL_SETTING = "GUESTCTL_ATTESTATION_URL"
SECRET_SETTING = "GUESTCTL_ATTESTATION_SECRET"
ROUTE = "api/attest"
MIN_SECRET_CHARS = 32  # a 256-bit MAC key deserves at least 32 random characters
VERSION = 1
_BODY = struct.Struct(">BB16s16sI12s")
_MAC_BYTES = 32
TOKEN_BYTES = _BODY.size + _MAC_BYTES
TOKEN_CHARS = (TOKEN_BYTES * 4 + 2) // 3  # base64url without padding
_CONTEXT = b"guestctl attestation v1\x00"  # keys this MAC to this use of the secret
ALL = uuid.UUID(int=0)  # the guest of an "every guest in this digest" token


class Decision(StrEnum):
    KEEP = "keep"
    LET_GO = "letgo"


_CODES = {(Decision.KEEP, False): 1, (Decision.LET_GO, False): 2, (Decision.KEEP, True): 3, (Decision.LET_GO, True): 4}
_BY_CODE = {code: key for key, code in _CODES.items()}


class TokenError(Exception):
    """A token that cannot be acted on; `page` names the page that explains it."""

    page = "malformed"


class MalformedToken(TokenError):
    """Not a token at all: cut short in the email, pasted wrongly."""


class ForgedToken(TokenError):
    """The MAC does not match: changed after it was made, or made with another secret."""

    page = "forged"


class ExpiredToken(TokenError):
    """Genuine, but past its expiry (the guest's disable date)."""

    page = "expired"

    def __init__(self, token: Token) -> None:
        super().__init__(f"expired at {token.expires:%Y-%m-%d %H:%M} UTC")
        self.token = token


@dataclass(frozen=True, slots=True)
class Token:
    decision: Decision
    guest_id: str  # lower-case GUID, or "" for every guest in the digest (`nonce` names the digest)
    sponsor_id: str  # lower-case GUID
    expires: datetime
    nonce: str  # 24 hex characters: the single-use record's key

    @property
    def for_all(self) -> bool:
        return not self.guest_id


def attestation_secret() -> bytes:
    """The MAC key, read on each use so a rotated secret takes effect without a restart. Fails closed."""
    secret = required_secret(
        SECRET_SETTING,
        os.environ.get(SECRET_SETTING),
        unset_hint="set it (a Key Vault reference) to 32+ random characters",
    )
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"{SECRET_SETTING} is {len(secret)} characters; at least {MIN_SECRET_CHARS} are needed",
            hint="generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
        )
    return secret.encode()


class AttestationNotConfiguredError(ConfigError):
    """The link settings are set but unusable: sweeps stop before the first notice, every link is refused."""

    http_status = 503


@dataclass(frozen=True, slots=True)
class Links:
    base: str  # the Functions app's https base, without a trailing slash
    secret: bytes

    def url(self, token: str) -> str:
        return f"{self.base}/{ROUTE}?token={token}"


def configured_links() -> Links | None:
    """The link settings, read on each use; None when GUESTCTL_ATTESTATION_URL is unset (notices without links).
    Set but unusable (no secret, plain http to a public host) → ConfigError naming the setting."""
    base = os.environ.get(URL_SETTING, "").strip()
    if not base:
        return None
    parts = urlsplit(base)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not loopback):
        raise ConfigError(
            f"{URL_SETTING} must be the Function app's https base URL (got {base[:80]!r})",
            hint="e.g. https://guestctl-prod.azurewebsites.net (links go to <base>/api/attest)",
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{URL_SETTING} must not carry a query or fragment", hint="give the base URL only")
    return Links(base.rstrip("/"), attestation_secret())


def readiness() -> str:
    """For `GET /api/health`: `off` (GUESTCTL_ATTESTATION_URL unset: notices go without links), `ready`, or
    why the settings are unusable (one line naming the setting, never its value)."""
    try:
        return "off" if configured_links() is None else "ready"
    except ConfigError as error:
        return error.message


def sign(
    decision: Decision,
    *,
    guest_id: str | None,
    sponsor_id: str,
    expires: datetime,
    secret: bytes,
    nonce: str | None = None,
) -> str:
    """A token for `decision` on `guest_id` (None: every guest of the digest named by `nonce`)."""
    guest = ALL if guest_id is None else uuid.UUID(guest_id)
    body = _BODY.pack(
        VERSION,
        _CODES[decision, guest_id is None],
        guest.bytes,
        uuid.UUID(sponsor_id).bytes,
        int(expires.timestamp()),
        bytes.fromhex(nonce) if nonce is not None else secrets.token_bytes(12),
    )
    return base64.urlsafe_b64encode(body + _mac(body, secret)).rstrip(b"=").decode("ascii")


def new_nonce() -> str:
    return secrets.token_hex(12)


def verify(text: str, *, secret: bytes, now: datetime) -> Token:
    """The token's contents, or MalformedToken / ForgedToken / ExpiredToken."""
    if not isinstance(text, str) or len(text.strip()) != TOKEN_CHARS:
        raise MalformedToken(f"not a token (expected {TOKEN_CHARS} characters)")
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("not base64url") from None
    if len(raw) != TOKEN_BYTES:
        raise MalformedToken(f"not a token (expected {TOKEN_BYTES} bytes)")
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, _mac(body, secret)):
        raise ForgedToken("the signature does not match")
    version, code, guest, sponsor, expires, nonce = _BODY.unpack(body)
    if version != VERSION or code not in _BY_CODE:
        raise MalformedToken(f"unknown token version {version} or action {code}")  # signed by a newer guestctl
    decision, for_all = _BY_CODE[code]
    token = Token(
        decision,
        "" if for_all else str(uuid.UUID(bytes=guest)),
        str(uuid.UUID(bytes=sponsor)),
        datetime.fromtimestamp(expires, UTC),
        nonce.hex(),
    )
    if now >= token.expires:
        raise ExpiredToken(token)
    return token


def _mac(body: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + body, hashlib.sha256).digest()
