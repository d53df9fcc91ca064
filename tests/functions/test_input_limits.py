"""Issue 9 §3-§6 through real azure.functions objects: content types, body limits, short error bodies,
and queue messages that can never succeed parked in the poison queue at once, with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
import pytest

from emulator.testing import EmulatorServer
from functions.invitations import MAX_BODY_BYTES
from tests.support.functions import CapturedOut, submit_batch
from tests.support.invitations import LONG_ADDRESS


def error_of(response: func.HttpResponse) -> str:
    body = json.loads(response.get_body())
    assert set(body) == {"error"}
    return body["error"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "expected"),
    [
        pytest.param(
            b"<rows/>",
            {"Content-Type": "application/xml"},
            415,
            "Content-Type 'application/xml' is not read here — send CSV (text/csv, application/csv, text/plain) "
            "or JSON lines (application/x-ndjson, application/jsonl, application/json)",
            id="xml-415",
        ),
        pytest.param(
            b"email=a", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "is not read", id="form-415"
        ),
        pytest.param(
            b"email\na@fabrikam.com\n",
            {"Content-Length": str(MAX_BODY_BYTES + 1)},
            413,
            f"the request body is {MAX_BODY_BYTES + 1:,} bytes, the limit is {MAX_BODY_BYTES:,} (4 MiB)",
            id="content-length-over-limit-413",
        ),
        pytest.param(
            b"email\n" + b"a@fabrikam.com\n" * (MAX_BODY_BYTES // 15 + 1),
            {},
            413,
            "the limit is 4,194,304 (4 MiB)",
            id="body-over-limit-without-content-length-413",
        ),
        pytest.param(b"email\na@fabrikam.com\n", {"Content-Length": "lots"}, 400, "Content-Length", id="bad-length"),
        pytest.param(
            f"email\nok@fabrikam.com\n{LONG_ADDRESS}\n".encode(),
            {},
            400,
            "1 row(s) cannot be invited: row 2 (aaaa",
            id="overlong-address-names-its-row",
        ),
        pytest.param(
            b"email,email\na@fabrikam.com,b@fabrikam.com\n", {}, 400, "'email' appears twice", id="dup-column"
        ),
        pytest.param(b"email,\na@fabrikam.com,\n", {}, 400, "column 2 has no name", id="trailing-comma"),
        pytest.param(
            b'email,display_name\na@fabrikam.com,"Ann\nb@fabrikam.com,B\n',
            {},
            400,
            "line 2: a quote opened on this line is never closed",
            id="unterminated-quote",
        ),
    ],
)
async def test_refused_uploads_queue_nothing(
    functions: dict, settings_env: Path, body: bytes, headers: dict[str, str], status: int, expected: str
) -> None:
    response, queue = await submit_batch(functions, body, headers)
    assert response.status_code == status
    assert expected in error_of(response)
    assert len(response.get_body()) < 2_500
    assert not queue.was_set
    assert not (settings_env / "state.db").exists()


async def test_json_lines_keys_are_matched_like_csv_headers(functions: dict, settings_env: Path) -> None:
    body = b'{"Email": "ann.lee@fabrikam.com", " Display_Name ": "Ann"}\n{"EMAIL": "raj@fabrikam.com"}\n'
    response, queue = await submit_batch(functions, body, {"Content-Type": "application/x-ndjson; charset=utf-8"})
    assert response.status_code == 202
    rows = json.loads(queue.value[0])["rows"]
    assert [(r["email"], r["display_name"]) for r in rows] == [
        ("ann.lee@fabrikam.com", "Ann"),
        ("raj@fabrikam.com", None),
    ]


async def test_long_messages_are_chunked_to_fit_a_queue_message(functions: dict, settings_env: Path) -> None:
    policy = settings_env / "policy.yaml"
    policy.write_text("invitations:\n  sender_mailbox: invites@contoso.com\n")
    message = "é" * 9_000
    body = "email,message\n" + "".join(f"p{i}@fabrikam.com,{message}\n" for i in range(12))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GUESTCTL_POLICY", str(policy))
        response, queue = await submit_batch(functions, body.encode())
    assert response.status_code == 202
    assert sum(len(json.loads(m)["rows"]) for m in queue.value) == 12
    assert all(len(m.encode()) <= 48 * 1024 for m in queue.value), "each fits a base64-encoded queue message"


# --- queue workers ----------------------------------------------------------------------------------------


async def deliver(functions: dict, name: str, body: bytes, *outs: CapturedOut) -> CapturedOut:
    poison = CapturedOut()
    await functions[name].get_user_function()(func.QueueMessage(id="m1", body=body), *outs, poison)
    return poison


MALFORMED_ROWS = [
    pytest.param(b"not json", "malformed invitations queue message: JSON is malformed", id="not-json"),
    pytest.param(b"\xff\xfe", "malformed invitations queue message", id="not-utf8"),
    pytest.param(b'{"batch_id": "b\xff"}', "malformed invitations queue message: 'utf-8'", id="not-utf8-in-a-string"),
    pytest.param(b'{"batch_id": "b1", "source": "s"}', "missing required field `rows`", id="missing-rows"),
    pytest.param(
        b'{"batch_id": "b1", "source": "s", "rows": [{"row": "one", "email": "a@fabrikam.com"}]}',
        "Expected `int`, got `str` - at `$.rows[0].row`",
        id="wrong-type",
    ),
    pytest.param(
        b'{"batch_id": "b1", "source": "s", "rows": [{"row": 1, "mail": "a@fabrikam.com"}]}',
        "at `$.rows[0]`",
        id="unknown-row-field",
    ),
    pytest.param(b'{"batch_id": "b1", "source": "s", "rows": []}', "no batch_id or no rows", id="no-rows"),
    pytest.param(b"[1, 2]", "Expected `object`, got `array`", id="array"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED_ROWS)
async def test_malformed_invitation_messages_go_to_the_poison_queue_at_once(
    functions: dict, settings_env: Path, emulator: EmulatorServer, body: bytes, reason: str
) -> None:
    poison = await deliver(functions, "invite_rows", body)  # returns normally: no retry
    parked = json.loads(poison.value)
    assert reason in parked["reason"]
    assert parked["message"] == body.decode("utf-8", errors="replace")
    assert parked["message_id"] == "m1"
    assert emulator.control.requests(method="POST") == []


async def test_configuration_error_in_the_invitation_worker_is_poisoned_at_once_without_server_paths(
    functions: dict, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, queue = await submit_batch(functions, b"email\nann.lee@fabrikam.com\n")
    missing = settings_env / "no-such-policy.yaml"
    monkeypatch.setenv("GUESTCTL_POLICY", str(missing))
    poison = await deliver(functions, "invite_rows", queue.value[0].encode())
    parked = json.loads(poison.value)
    assert parked["reason"] == "the policy file (GUESTCTL_POLICY): file not found — check GUESTCTL_POLICY / --policy"
    assert str(settings_env) not in poison.value
    assert parked["message"] == queue.value[0]


async def test_a_bad_row_in_a_chunk_does_not_take_the_good_rows_with_it(
    functions: dict, settings_env: Path, emulator: EmulatorServer
) -> None:
    """A chunk made by hand (or by an older version) with a row the upload check would refuse."""
    rows = [
        {"row": 1, "email": "ok@fabrikam.com"},
        {"row": 2, "email": LONG_ADDRESS},
        {"row": 3, "email": "ok2@fabrikam.com"},
    ]
    body = json.dumps({"batch_id": "inv-hand", "source": "hand", "rows": rows}).encode()
    poison = await deliver(functions, "invite_rows", body)
    assert not poison.was_set
    assert sorted(m["to"][0] for m in emulator.control.outbox(kind="invitation")) == [
        "ok2@fabrikam.com",
        "ok@fabrikam.com",
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{", "malformed stale-sweeps queue message: Input data was truncated", id="not-json"),
        pytest.param(b"{}", 'exactly one of "scan_id" and "apply"', id="empty-object"),
        pytest.param(b'{"scan_id": "s", "apply": "p", "actor": "a"}', "exactly one of", id="both"),
        pytest.param(b'{"apply": "p"}', '"apply" needs an "actor"', id="apply-without-actor"),
        pytest.param(b'{"scan_id": 7}', "Expected `str | null`, got `int`", id="wrong-type"),
        pytest.param(b'{"scan": "s"}', "Object contains unknown field `scan`", id="unknown-key"),
        pytest.param(b'{"act\xffor": "a"}', "malformed stale-sweeps queue message: 'utf-8'", id="not-utf8-key"),
    ],
)
async def test_malformed_sweep_messages_go_to_the_poison_queue_at_once(
    functions: dict, settings_env: Path, body: bytes, reason: str
) -> None:
    more = CapturedOut()
    poison = await deliver(functions, "continue_stale_sweep", body, more)
    assert reason in json.loads(poison.value)["reason"]
    assert not more.was_set


async def test_configuration_error_in_the_sweep_worker_is_poisoned_at_once(
    functions: dict, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = settings_env / "policy.yaml"
    policy.write_text("safety:\n  max_percent: 500\n")
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy))
    more = CapturedOut()
    poison = await deliver(functions, "continue_stale_sweep", b'{"scan_id": "s1"}', more)
    reason = json.loads(poison.value)["reason"]
    assert reason.startswith("the policy file (GUESTCTL_POLICY): safety.max_percent")
    assert str(settings_env) not in poison.value
    assert not more.was_set


# --- health: short errors, no server paths --------------------------------------------------------------


async def test_health_with_a_huge_bad_policy_answers_briefly_without_server_paths(
    functions: dict, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = settings_env / "policy.yaml"
    policy.write_text("safety:\n  max_percent: [" + ", ".join(["123456789"] * 5_000) + "]\n")  # 45 KB, under the limits
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy))
    response = functions["health"].get_user_function()(func.HttpRequest(method="GET", url="/api/health", body=b""))
    assert response.status_code == 400
    assert len(response.get_body()) <= 2_100
    error = error_of(response)
    assert error.startswith("the policy file (GUESTCTL_POLICY): safety.max_percent")
    assert str(settings_env) not in error


def test_host_json_queue_settings_match_the_poison_handling() -> None:
    """Chunks are sized for base64 messages (48 KiB of 64 KiB); transient failures get 5 deliveries."""
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    queues = host["extensions"]["queues"]
    assert (queues["messageEncoding"], queues["maxDequeueCount"]) == ("base64", 5)


@pytest.mark.parametrize(
    "declared", [pytest.param(MAX_BODY_BYTES + 1, id="length-declared"), pytest.param(None, id="length-unknown")]
)
async def test_a_dropped_file_over_the_limit_is_refused_and_logged(
    functions: dict, settings_env: Path, caplog: pytest.LogCaptureFixture, declared: int | None
) -> None:
    data = (
        b"email\n" + b"a@fabrikam.com\n" * (MAX_BODY_BYTES // 15 + 1)
        if declared is None
        else b"email\na@fabrikam.com\n"
    )
    blob = func.blob.InputStream(data=data, name="invitations-inbox/huge.csv", length=declared)
    queue = CapturedOut()
    await functions["invitation_file_dropped"].get_user_function()(blob, queue)
    assert not queue.was_set
    assert "invitation file invitations-inbox/huge.csv refused" in caplog.text
    assert f"the limit is {MAX_BODY_BYTES:,}" in caplog.text
