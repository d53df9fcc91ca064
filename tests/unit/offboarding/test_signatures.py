"""Standard Webhooks v1: every malformed or wrong delivery is exactly `Unauthenticated`, nothing else."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConfigError
from shared.offboarding.signatures import Unauthenticated, parse_secrets, sign, verify

SECRET = "whsec_" + base64.b64encode(b"current-secret-32-bytes-long!!!!").decode()
NEXT = "whsec_" + base64.b64encode(b"the-next-secret-32-bytes-long!!!").decode()
OTHER = "whsec_" + base64.b64encode(b"somebody-elses-secret-32-bytes!!").decode()
BODY = b'{"type":"worker.terminated"}'
SENT = 1_764_583_200
NOW = datetime.fromtimestamp(SENT, UTC)


def headers(secret: str = SECRET, *, body: bytes = BODY, msg_id: str = "msg_1", at: int = SENT) -> dict[str, str]:
    return sign(secret, msg_id, at, body)


def test_the_published_standard_webhooks_vector() -> None:
    """The specification's test vector: any Standard Webhooks library verifies what sign() makes."""
    made = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert made["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("keys", "sent", "offset"),
    [
        pytest.param((SECRET,), headers(), 0, id="valid"),
        pytest.param((SECRET, NEXT), headers(NEXT), 0, id="second-rotated-secret"),
        pytest.param((NEXT, SECRET), headers(), 0, id="first-of-two-secrets"),
        pytest.param((SECRET,), headers(at=SENT - 300), 0, id="exactly-5-minutes-old"),
        pytest.param((SECRET,), headers(at=SENT + 300), 0, id="exactly-5-minutes-ahead"),
        pytest.param(
            (SECRET,),
            {**headers(), "webhook-signature": "v1a,AAAA v1,@@@ " + headers()["webhook-signature"]},
            0,
            id="other-versions-and-bad-entries-ignored",
        ),
        pytest.param((SECRET,), {k.upper(): v for k, v in headers().items()}, 0, id="header-names-any-case"),
    ],
)
def test_accepted(keys: tuple[str, ...], sent: dict[str, str], offset: int) -> None:
    assert verify(parse_secrets(" ".join(keys)), sent, BODY, NOW + timedelta(seconds=offset)) == "msg_1"


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in headers().items() if key != name}


@pytest.mark.parametrize(
    ("sent", "body", "reason"),
    [
        pytest.param(headers(OTHER), BODY, "no v1 signature", id="wrong-secret"),
        pytest.param(headers(at=SENT - 301), BODY, "old", id="expired-301s"),
        pytest.param(headers(at=SENT + 301), BODY, "ahead", id="future-301s"),
        pytest.param(headers(), BODY + b" ", "no v1 signature", id="tampered-body"),
        pytest.param({**headers(), "webhook-id": "msg_2"}, BODY, "no v1 signature", id="other-id"),
        pytest.param(without("webhook-id"), BODY, "missing", id="missing-id"),
        pytest.param(without("webhook-timestamp"), BODY, "missing", id="missing-timestamp"),
        pytest.param(without("webhook-signature"), BODY, "missing", id="missing-signature"),
        pytest.param({}, BODY, "missing", id="no-headers"),
        pytest.param({**headers(), "webhook-signature": "garbage"}, BODY, "no v1", id="signature-without-comma"),
        pytest.param({**headers(), "webhook-signature": "v1,@@@notbase64"}, BODY, "no v1", id="bad-base64"),
        pytest.param(
            {**headers(), "webhook-signature": "v2," + headers()["webhook-signature"][3:]},
            BODY,
            "no v1",
            id="only-another-version",
        ),
        pytest.param({**headers(), "webhook-timestamp": "soon"}, BODY, "whole seconds", id="non-integer-timestamp"),
        pytest.param({**headers(), "webhook-timestamp": "1.5e9"}, BODY, "whole seconds", id="float-timestamp"),
        pytest.param({**headers(), "webhook-timestamp": "-1"}, BODY, "whole seconds", id="negative-timestamp"),
        pytest.param({**headers(), "webhook-timestamp": "١٧٦٤٥٨٣٢٠٠"}, BODY, "whole seconds", id="unicode-digits"),
        pytest.param({**headers(), "webhook-id": "msg.1"}, BODY, "usable id", id="dot-in-id"),
        pytest.param({**headers(), "webhook-id": "x" * 257}, BODY, "usable id", id="id-too-long"),
        pytest.param(headers(), b"\xff\xfe" + BODY, "no v1 signature", id="non-utf8-body"),
    ],
)
def test_refused(sent: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        verify(parse_secrets(SECRET), sent, body, NOW)
    assert reason in refused.value.reason
    assert refused.value.http_status == 401
    assert refused.value.message == "the request is not authenticated"  # the answer says nothing more


def test_a_non_utf8_body_signed_correctly_is_authentic() -> None:
    """The MAC is over bytes: whether the body is JSON is the event parser's question (400, not 401)."""
    body = b"\xff\xfe not json"
    assert verify(parse_secrets(SECRET), headers(body=body), body, NOW) == "msg_1"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("", "is not set", id="empty"),
        pytest.param("   ", "is not set", id="blank"),
        pytest.param(None, "is not set", id="unset"),
        pytest.param(
            "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/hr/)",
            "unresolved Key Vault",
            id="key-vault-reference",
        ),
        pytest.param("c2VjcmV0LXdpdGhvdXQtdGhlLXByZWZpeC0xMjM0", "does not start with whsec_", id="no-prefix"),
        pytest.param("whsec_not*base64!", "not base64", id="bad-base64"),
        pytest.param("whsec_" + base64.b64encode(b"23-bytes-is-too-short!!").decode(), "23 bytes", id="short"),
        pytest.param(f"{SECRET} {NEXT} {OTHER}", "holds 3 secrets", id="three-secrets"),
        pytest.param(f"{SECRET} whsec_@@", "secret 2 of 2", id="second-bad"),
    ],
)
def test_secrets_setting_refused(value: str | None, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_secrets(value)
    line = refused.value.one_line()
    assert problem in line
    assert "GUESTCTL_HR_WEBHOOK_SECRETS" in line
    for secret in (SECRET, NEXT, OTHER):  # the value is never echoed
        assert secret.removeprefix("whsec_") not in line


def test_two_secrets_are_two_keys() -> None:
    assert len(parse_secrets(f"{SECRET} {NEXT}")) == 2
