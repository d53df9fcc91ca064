"""`guestctl hr sign` and `guestctl hr verify`: test an HR integration against the native contract.

`sign` prints the Standard Webhooks headers a sender holding the secret would send with a file (and a curl
command that sends it); `verify` checks a delivery (the body and its headers) the way the receiver does,
and says why it would be refused. Neither prints a secret. Registered on the main app by shared/cli.py.
"""

from __future__ import annotations

import json
import secrets
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from shared.cli import JsonFlag, app
from shared.errors import InputError
from shared.offboarding.signatures import SECRETS_SETTING, Unauthenticated, header, parse_secrets, sign, verify

hr_app = typer.Typer(help="Sign and verify HR events as the receiver checks them (docs/offboarding.md).")
app.add_typer(hr_app, name="hr")

BodyFile = Annotated[Path, typer.Argument(help="The event body, sent byte for byte as signed.")]
Secret = Annotated[
    str,
    typer.Option(
        "--secret",
        envvar=SECRETS_SETTING,
        show_envvar=True,
        help="whsec_… (verify: one, or two space-separated as during a rotation). Prefer the setting: a flag "
        "stays in the shell history.",
    ),
]


@hr_app.command("sign")
def sign_command(
    file: BodyFile,
    secret: Secret,
    msg_id: Annotated[str | None, typer.Option("--id", help="webhook-id; default: a new msg_… id.")] = None,
    timestamp: Annotated[int | None, typer.Option(help="webhook-timestamp (unix seconds); default: now.")] = None,
    curl: Annotated[
        str | None, typer.Option("--curl", metavar="URL", help="Also print a curl command that posts it to URL.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the headers a sender holding the secret sends with FILE (webhook-id, -timestamp, -signature)."""
    (key_secret,) = _one_secret(secret)
    body = _read(file)
    stamp = timestamp if timestamp is not None else int(datetime.now(UTC).timestamp())
    try:
        headers = sign(key_secret, msg_id or f"msg_{secrets.token_hex(8)}", stamp, body)
    except ValueError as error:
        raise InputError(f"--id: {error}") from None
    if as_json:
        print(json.dumps(headers, indent=2))
        return
    for name, value in headers.items():
        print(f"{name}: {value}")
    if curl:
        lines = [f"curl -sS -X POST {shlex.quote(curl)}", "-H 'Content-Type: application/json'"]
        lines += [f"-H {shlex.quote(f'{name}: {value}')}" for name, value in headers.items()]
        lines.append(f"--data-binary @{shlex.quote(str(file))}")
        print(" \\\n  ".join(lines))


@hr_app.command("verify")
def verify_command(
    file: BodyFile,
    secret: Secret,
    headers: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="'name: value' as sent; repeat for each webhook-* header."),
    ] = None,
    headers_file: Annotated[
        Path | None,
        typer.Option("--headers", help="A file of 'name: value' lines (what `hr sign` prints, or curl -D)."),
    ] = None,
    any_age: Annotated[
        bool, typer.Option("--any-age", help="Check a captured delivery: skip the 5-minute timestamp window.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check FILE and its headers as POST /api/hr/events does: signature, timestamp, then the event itself.
    Exit 0: it would be accepted; 2: it would be refused (the reason says which check failed)."""
    from shared.offboarding.events import parse_event

    keys = parse_secrets(secret, "--secret")
    given = _headers(
        [*(headers or []), *(_read(headers_file).decode("utf-8", "replace").splitlines() if headers_file else [])]
    )
    body = _read(file)
    stamp = header(given, "webhook-timestamp") or ""
    now = (
        datetime.fromtimestamp(int(stamp), UTC)
        if any_age and stamp.isascii() and stamp.isdigit()
        else datetime.now(UTC)
    )
    try:
        msg_id = verify(keys, given, body, now)
    except Unauthenticated as error:
        # Here the reason is for the integrator holding the secret; the receiver answers 401 without it.
        raise InputError(f"the signature would be refused (401): {error.reason}") from None
    event = parse_event(body)  # EventError: the receiver's 400, with the field path
    result = {"webhookId": msg_id, "type": event.type.value, "dueAt": event.due_at.isoformat()}
    if as_json:
        print(json.dumps({"ok": True, **result}, indent=2))
        return
    worker = ", ".join(f"{name} {value}" for name, value in event.data.worker.identifiers())
    print(f"valid: webhook-id {msg_id} is signed with a configured secret")
    print(f"event: {event.type.value} for {worker}, due at {result['dueAt']}")


def _one_secret(value: str) -> tuple[str]:
    parse_secrets(value, "--secret")  # the same checks as the receiver's setting, naming the flag not the value
    found = value.split()
    if len(found) != 1:
        raise InputError("--secret: sign with one secret (the new one, during a rotation)")
    return (found[0],)


def _headers(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not line.strip() or line.startswith(("HTTP/", "curl ", "  ", "-")):
            continue
        if not colon or not name.strip():
            raise InputError(f"not a 'name: value' header: {line[:60]!r}")
        found[name.strip().lower()] = value.strip()
    return found


def _read(path: Path) -> bytes:
    from shared.offboarding.inbox import MAX_BODY_BYTES  # not at import: it loads pydantic for every command

    with path.open("rb") as file:
        content = file.read(MAX_BODY_BYTES + 1)
    if len(content) > MAX_BODY_BYTES:
        raise InputError(f"{path}: larger than {MAX_BODY_BYTES // 1024} KiB, more than the receiver accepts")
    return content
