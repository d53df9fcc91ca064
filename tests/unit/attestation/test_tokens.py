"""Attestation tokens: what verifies, and which error each kind of bad token gets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.attestation.tokens import (
    SECRET_SETTING,
    TOKEN_CHARS,
    Decision,
    ExpiredToken,
    ForgedToken,
    MalformedToken,
    TokenError,
    attestation_secret,
    sign,
    verify,
)
from shared.errors import ConfigError

SECRET = b"s" * 40
GUEST = "0b9b8e2e-8a4c-4c2b-9f3e-1a2b3c4d5e6f"
SPONSOR = "a1b2c3d4-0000-4000-8000-123456789abc"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=14)


def token(decision: Decision = Decision.KEEP, guest: str | None = GUEST, secret: bytes = SECRET) -> str:
    return sign(decision, guest_id=guest, sponsor_id=SPONSOR, expires=EXPIRES, secret=secret)


def flip(text: str, index: int) -> str:
    """The token with one bit of byte `index` changed, still valid base64url."""
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[index] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("decision", list(Decision))
@pytest.mark.parametrize("guest", [GUEST, None], ids=["one-guest", "all"])
def test_a_token_carries_what_it_was_signed_with(decision: Decision, guest: str | None) -> None:
    text = token(decision, guest)
    found = verify(text, secret=SECRET, now=NOW)
    carried = (found.decision, found.guest_id, found.sponsor_id, found.expires)
    assert carried == (decision, guest or "", SPONSOR, EXPIRES)
    assert found.for_all is (guest is None)
    assert len(text) == TOKEN_CHARS, "compact"
    assert text.replace("-", "").replace("_", "").isalnum(), "URL-safe"


def test_every_token_has_its_own_nonce() -> None:
    assert verify(token(), secret=SECRET, now=NOW).nonce != verify(token(), secret=SECRET, now=NOW).nonce


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param(lambda: token(), None, id="valid"),
        pytest.param(lambda: flip(token(), 1), ForgedToken, id="tampered-action"),
        pytest.param(lambda: flip(token(), 2), ForgedToken, id="tampered-guest"),
        pytest.param(lambda: flip(token(), 40), ForgedToken, id="tampered-expiry"),
        pytest.param(lambda: flip(token(), 70), ForgedToken, id="tampered-signature"),
        pytest.param(lambda: token(secret=b"another secret of forty characters......"), ForgedToken, id="forged"),
        pytest.param(lambda: token()[:-1], MalformedToken, id="cut-short"),
        pytest.param(lambda: token()[:-1] + "*", MalformedToken, id="not-base64url"),
        pytest.param(lambda: "", MalformedToken, id="empty"),
    ],
)
def test_each_bad_token_gets_its_error(text, error: type[TokenError] | None) -> None:
    if error is None:
        verify(text(), secret=SECRET, now=NOW)
        return
    with pytest.raises(error):
        verify(text(), secret=SECRET, now=NOW)


def test_a_token_expires_at_its_expiry() -> None:
    verify(token(), secret=SECRET, now=EXPIRES - timedelta(seconds=1))
    with pytest.raises(ExpiredToken) as expired:
        verify(token(), secret=SECRET, now=EXPIRES)
    assert expired.value.token.guest_id == GUEST, "genuine: who tried is known (and audited)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", f"{SECRET_SETTING} is not set"),
        ("   ", f"{SECRET_SETTING} is not set"),
        ("@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/a/)", "unresolved Key Vault reference"),
        ("short-secret", f"{SECRET_SETTING} is 12 characters; at least 32"),
    ],
)
def test_an_unusable_secret_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv(SECRET_SETTING, value)
    with pytest.raises(ConfigError) as refused:
        attestation_secret()
    assert message in refused.value.one_line()
    assert value.strip() == "" or value not in refused.value.one_line()
