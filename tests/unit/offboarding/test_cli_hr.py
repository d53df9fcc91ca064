"""`guestctl hr sign` and `hr verify`: what an integrator runs to test their HR side; never prints the secret."""

from __future__ import annotations

from pathlib import Path

from shared.errors import ExitCode
from tests.support.cli import guestctl_env, run_guestctl

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type":"worker.terminated","timestamp":"2026-11-27T10:00:00Z","data":{"source":{"system":"workday"},"worker":{"email":"jane@partner.example"},"effectiveDate":"2026-12-01","effectiveTimeZone":"Europe/Berlin"}}'  # noqa: E501


def test_sign_then_verify_round_trips_and_a_wrong_secret_exits_2(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_bytes(BODY)
    env = guestctl_env({"GUESTCTL_HR_WEBHOOK_SECRETS": SECRET})
    signed = run_guestctl(
        "hr", "sign", "event.json", "--id", "msg_1", "--curl", "https://app/api/hr/events", cwd=tmp_path, env=env
    )
    assert signed.returncode == 0, signed.stderr
    headers = signed.stdout.splitlines()[:3]
    assert [line.split(":")[0] for line in headers] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert "--data-binary @event.json" in signed.stdout
    (tmp_path / "headers.txt").write_text(signed.stdout)

    verified = run_guestctl("hr", "verify", "event.json", "--headers", "headers.txt", cwd=tmp_path, env=env)
    assert verified.returncode == 0, verified.stderr
    assert (
        "event: worker.terminated for email jane@partner.example, due at 2026-11-30T23:00:00+00:00" in verified.stdout
    )

    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    args = ["hr", "verify", "event.json", *(part for line in headers for part in ("-H", line)), "--secret", other]
    refused = run_guestctl(*args, cwd=tmp_path, env=guestctl_env())
    assert refused.returncode == ExitCode.BAD_INPUT
    assert "the signature would be refused (401): no v1 signature matches a configured secret" in refused.stderr
    for result in (signed, verified, refused):
        assert SECRET.removeprefix("whsec_") not in result.stdout + result.stderr
        assert other.removeprefix("whsec_") not in result.stdout + result.stderr
