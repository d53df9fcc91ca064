"""Standard Webhooks v1 (symmetric): verify a delivery, sign one, and read the secrets setting.

Written here rather than wrapping the `standardwebhooks` package: the scheme is a few lines, and the package
raises ValueError on a signature without a comma and UnicodeDecodeError on a non-UTF-8 body instead of its
verification error. Here every malformed input is one `Unauthenticated`, whose `reason` is for the log
line only: the HTTP answer stays generic (docs/offboarding.md#the-inbound-contract).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from shared.app_secrets import required_secret
from shared.errors import ConfigError, GuestctlError

SECRETS_SETTING = "GUESTCTL_HR_WEBHOOK_SECRETS"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the spec's range for symmetric secrets: 24 to 64 random bytes
MAX_SECRET_BYTES = 64
MAX_SECRETS = 2  # the current one and the next, during a rotation
TOLERANCE = timedelta(minutes=5)  # each way, as the reference libraries do
MAX_ID_CHARS = 256
MAX_SIGNATURES = 10  # a sender lists one per secret it signs with; more is not a sender
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() would also take "١٢" and " 12"


class Unauthenticated(GuestctlError):
    """The request is not from a sender holding our secret (or is too old or too new to tell). The message is
    deliberately generic; `reason` says what failed, for the log and never for the sender."""

    http_status = 401

    def __init__(self, reason: str) -> None:
        super().__init__("the request is not authenticated")
        self.reason = reason


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Header `name`, whatever its case (HTTP names are case-insensitive; a plain dict is not)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def signed_digest(key: bytes, msg_id: str, timestamp: str, body: bytes, algorithm: str = "sha256") -> bytes:
    """HMAC over `id.timestamp.body` (the raw bytes, never re-serialised JSON)."""
    return digest(key, f"{msg_id}.{timestamp}.".encode() + body, algorithm)


def verify(keys: tuple[bytes, ...], headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """The `webhook-id` of a delivery signed with one of `keys` within `TOLERANCE` of `now`; else Unauthenticated."""
    msg_id = header(headers, "webhook-id")
    timestamp = header(headers, "webhook-timestamp")
    signatures = header(headers, "webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise Unauthenticated("a webhook-id, webhook-timestamp or webhook-signature header is missing")
    if len(msg_id) > MAX_ID_CHARS or "." in msg_id or not msg_id.isprintable():
        raise Unauthenticated("webhook-id is not a usable id (too long, a dot, or a control character)")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Unauthenticated("webhook-timestamp is not whole seconds since 1970")
    check_age(int(timestamp), now)
    given = [_decode(item) for item in signatures.split(" ")[:MAX_SIGNATURES]]
    expected = [signed_digest(key, msg_id, timestamp, body) for key in keys]
    # Every pair is compared, in constant time each, so the time taken does not say which one matched.
    matched = [hmac.compare_digest(mac, want) for mac in given if mac is not None for want in expected]
    if not any(matched):
        raise Unauthenticated("no v1 signature matches a configured secret")
    return msg_id


def check_age(timestamp: int, now: datetime) -> None:
    """Unauthenticated unless `timestamp` (unix seconds) is within `TOLERANCE` of `now`, either way."""
    drift = timestamp - now.timestamp()
    if drift < -TOLERANCE.total_seconds():
        raise Unauthenticated(f"the timestamp is {int(-drift)} s old (at most {int(TOLERANCE.total_seconds())})")
    if drift > TOLERANCE.total_seconds():
        raise Unauthenticated(f"the timestamp is {int(drift)} s ahead (at most {int(TOLERANCE.total_seconds())})")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers a sender holding `secret` (whsec_…) sends with `body`."""
    if not msg_id or "." in msg_id:
        raise ValueError("a webhook id must be non-empty and contain no '.'")
    key = secret_key(secret, "the secret")
    mac = signed_digest(key, msg_id, str(timestamp), body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def parse_secrets(value: str | None, setting: str = SECRETS_SETTING) -> tuple[bytes, ...]:
    """The HMAC keys in a Standard Webhooks secrets setting (`whsec_…`, space-separated, at most two).
    ConfigError names the setting and what is wrong, never the value: the receiver refuses to start."""
    secrets = secret_values(value, setting)
    return tuple(
        secret_key(secret, f"{setting}: secret {number} of {len(secrets)}", setting)
        for number, secret in enumerate(secrets, 1)
    )


def secret_values(value: str | None, setting: str) -> tuple[str, ...]:
    """The secrets in a setting (space-separated: the current one and, during a rotation, the next), or
    ConfigError for an empty value, an unresolved Key Vault reference or too many."""
    value = required_secret(setting, value, unset_hint="set it to the secret the HR sender signs with").strip()
    secrets = tuple(value.split())
    if len(secrets) > MAX_SECRETS:
        raise ConfigError(
            f"{setting} holds {len(secrets)} secrets; at most {MAX_SECRETS}",
            hint="keep the current secret and, during a rotation, the next one",
        )
    return secrets


def vendor_keys(value: str | None, setting: str) -> tuple[bytes, ...]:
    """A vendor's keys (their own format, used as UTF-8 bytes, as the vendors' samples do) from a setting."""
    return tuple(secret.encode() for secret in secret_values(value, setting))


def secret_key(secret: str, what: str, setting: str | None = None) -> bytes:
    """The key inside one `whsec_<base64>` secret, or ConfigError saying `what` is wrong (never the value)."""
    hint = "a secret is whsec_ followed by the base64 of 24 to 64 random bytes" + (
        f"; fix {setting}" if setting else ""
    )
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(f"{what} does not start with {SECRET_PREFIX}", hint=hint)
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not base64 after {SECRET_PREFIX}", hint=hint) from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ConfigError(f"{what} is {len(key)} bytes; {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} are needed", hint=hint)
    return key


def _decode(item: str) -> bytes | None:
    """The MAC in one `v1,<base64>` entry; None for another version or a malformed entry."""
    version, comma, encoded = item.partition(",")
    if version != "v1" or not comma:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def digest_matches(given: str | None, expected: bytes, *, encodings: tuple[str, ...] = ("hex",)) -> bool:
    """Whether a header's MAC (`given`, in one of `encodings`: hex or base64) equals `expected`, compared
    in constant time. Used by the adapters whose vendors sign without Standard Webhooks."""
    if not given:
        return False
    given = given.strip()
    for encoding in encodings:
        try:
            mac = bytes.fromhex(given) if encoding == "hex" else base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(mac, expected):
            return True
    return False


def digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    """HMAC of `message` with `key`."""
    return hmac.new(key, message, algorithm).digest()
