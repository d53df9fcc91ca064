"""Error lines for people: one line, capped, whatever the input they quote; credential failures made short."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError

from shared.credentials import credential_error
from shared.errors import MAX_MESSAGE_CHARS, CredentialError, GraphError, InputError, cap


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("short", "short", id="short-unchanged"),
        pytest.param("a\nb\r\n  c", "a b c", id="line-breaks-joined"),
        pytest.param("x" * MAX_MESSAGE_CHARS, "x" * MAX_MESSAGE_CHARS, id="at-the-cap"),
        pytest.param("x" * (MAX_MESSAGE_CHARS + 1), "x" * (MAX_MESSAGE_CHARS - 1) + "…", id="over-the-cap"),
    ],
)
def test_cap(text: str, expected: str) -> None:
    assert cap(text) == expected


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(InputError("row 2: " + "é" * 3_800_000, hint="fix the file"), id="input-error"),
        pytest.param(GraphError("bad\n" * 100_000, status=400, code="BadRequest", method="GET", url="/x"), id="graph"),
    ],
)
def test_one_line_of_a_huge_message_is_short_and_keeps_its_hint(error: GraphError | InputError) -> None:
    line = error.one_line()
    assert "\n" not in line
    assert len(line) < 2 * MAX_MESSAGE_CHARS
    if error.hint:
        assert line.endswith("— fix the file")


@pytest.mark.parametrize(
    ("error", "auth", "reason"),
    [
        pytest.param(
            ClientAuthenticationError(
                message="DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                + "Attempted credentials:\n\tEnvironmentCredential: ...\n" * 200
            ),
            "default",
            "DefaultAzureCredential failed to retrieve a token from the included credentials.",
            id="default-chain",
        ),
        pytest.param(
            CredentialUnavailableError(message="ManagedIdentityCredential authentication unavailable."),
            "managed-identity",
            "ManagedIdentityCredential authentication unavailable.",
            id="no-managed-identity",
        ),
    ],
)
def test_authentication_failures_become_one_short_credential_error(error: Exception, auth: str, reason: str) -> None:
    mapped = credential_error(error, auth, purpose="Microsoft Graph at graph.microsoft.com")  # type: ignore[arg-type]
    assert isinstance(mapped, CredentialError)
    line = mapped.one_line()
    assert line.startswith(f"no Azure credential for Microsoft Graph at graph.microsoft.com (GUESTCTL_AUTH={auth}): ")
    assert reason in line
    assert "Attempted credentials" not in line
    assert len(line) < 600


def test_other_errors_are_not_credential_errors() -> None:
    assert credential_error(ValueError("x"), "default", purpose="Graph") is None
