"""Invitation functions through real azure.functions objects: bindings, refusals, queue round trip."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
import pytest

from emulator.testing import EmulatorServer
from tests.support.functions import CapturedOut, bindings, http_bindings, submit_batch

GOOD_CSV = (
    "email,display_name,groups,sponsors\n"
    "ann.lee@fabrikam.com,Ann Lee,Finance Partners,megan.bowen@contoso.com\n"
    "raj.patel@northwindtraders.com,Raj Patel,,\n"
    "adele.vance@contoso.com,Adele,,\n"
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "submit_invitation_batch",
            [
                {
                    "direction": "OUT",
                    "type": "queue",
                    "name": "queue",
                    "queueName": "invitations-rows",
                    "connection": "AzureWebJobsStorage",
                },
                *http_bindings("POST", "invitations/batches"),
            ],
            id="post-batches",
        ),
        pytest.param(
            "invitation_batch_status",
            [
                *http_bindings("GET", "invitations/batches/{batch_id}"),
            ],
            id="get-batch-status",
        ),
        pytest.param(
            "invite_rows",
            [
                {
                    "direction": "OUT",
                    "type": "queue",
                    "name": "poison",
                    "queueName": "invitations-rows-poison",
                    "connection": "AzureWebJobsStorage",
                },
                {
                    "direction": "IN",
                    "type": "queueTrigger",
                    "name": "message",
                    "queueName": "invitations-rows",
                    "connection": "AzureWebJobsStorage",
                },
            ],
            id="queue-worker",
        ),
        pytest.param(
            "invitation_file_dropped",
            [
                {
                    "direction": "OUT",
                    "type": "queue",
                    "name": "queue",
                    "queueName": "invitations-rows",
                    "connection": "AzureWebJobsStorage",
                },
                {
                    "direction": "IN",
                    "type": "blobTrigger",
                    "name": "blob",
                    "path": "invitations-inbox/{name}",
                    "connection": "AzureWebJobsStorage",
                    "source": "EventGrid",
                },
            ],
            id="blob-inbox-event-grid",
        ),
    ],
)
def test_bindings(functions: dict, name: str, expected: list[dict]) -> None:
    assert bindings(functions, name) == expected


async def post(functions: dict, body: bytes, content_type: str = "text/csv") -> tuple[func.HttpResponse, CapturedOut]:
    return await submit_batch(functions, body, {"Content-Type": content_type})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"email,group\na@fabrikam.com,x\n", "unknown column(s) 'group'", id="unknown-column"),
        pytest.param(b"", "request body: is empty", id="empty-body"),
        pytest.param(
            b"email\nok@fabrikam.com\nbad+1@fabrikam.com\nOK@fabrikam.com\n",
            "2 row(s) cannot be invited: row 2 (bad+1@fabrikam.com): email",
            id="row-level-reasons",
        ),
        pytest.param(b"email\xff\n", "not UTF-8", id="not-utf8"),
    ],
)
async def test_bad_bodies_are_refused_with_reasons_and_nothing_is_queued(
    functions: dict, settings_env: Path, body: bytes, expected: str
) -> None:
    response, queue = await post(functions, body)
    assert response.status_code == 400
    assert expected in json.loads(response.get_body())["error"]
    assert not queue.was_set
    assert not (settings_env / "state.db").exists(), "nothing was recorded either"


async def test_duplicate_reason_names_the_first_row(functions: dict, settings_env: Path) -> None:
    response, _ = await post(functions, b"email\nok@fabrikam.com\nOK@fabrikam.com\n")
    assert "row 2 (OK@fabrikam.com): duplicate of row 1" in json.loads(response.get_body())["error"]


async def test_batch_goes_through_the_queue_and_reports_status(
    functions: dict, settings_env: Path, emulator: EmulatorServer
) -> None:
    response, queue = await post(functions, GOOD_CSV.encode())
    accepted = json.loads(response.get_body())
    assert response.status_code == 202
    assert accepted["rows"] == 3
    assert accepted["status_url"] == f"/api/invitations/batches/{accepted['batch_id']}"
    assert len(queue.value) == 1

    async def status() -> dict:
        request = func.HttpRequest(
            method="GET", url=accepted["status_url"], body=b"", route_params={"batch_id": accepted["batch_id"]}
        )
        reply = await functions["invitation_batch_status"].get_user_function()(request)
        assert reply.status_code == 200
        return json.loads(reply.get_body())

    before = await status()
    assert (before["counts"], before["complete"]) == ({"pending": 3}, False)

    worker = functions["invite_rows"].get_user_function()
    for delivery in (1, 2):  # at-least-once: the same message twice changes nothing the second time
        await worker(func.QueueMessage(id=f"m{delivery}", body=queue.value[0].encode()), CapturedOut())

    after = await status()
    assert after["complete"] is True
    # the second delivery keeps what the first recorded: the batch still says who was invited
    assert after["counts"] == {"invited": 2, "skipped-member": 1, "pending": 0}
    assert [r["email"] for r in after["not_done"]] == ["adele.vance@contoso.com"]
    invited = {m["to"][0] for m in emulator.control.outbox(kind="invitation")}
    assert invited == {"ann.lee@fabrikam.com", "raj.patel@northwindtraders.com"}


async def test_a_redelivery_after_a_crash_before_the_results_were_kept_reports_who_was_invited(
    functions: dict, settings_env: Path, emulator: EmulatorServer
) -> None:
    """The first delivery invited the rows and died before it kept their results (found by the crash suite):
    the next delivery invites nobody again and records each row's real outcome from its own record."""
    from shared.config import load_settings
    from shared.invitations.batches import RESULTS_TABLE, batch_status
    from shared.store import open_state

    _, queue = await post(functions, GOOD_CSV.encode())
    batch_id = json.loads(queue.value[0])["batch_id"]
    worker = functions["invite_rows"].get_user_function()
    await worker(func.QueueMessage(id="m1", body=queue.value[0].encode()), CapturedOut())
    async with open_state(load_settings()) as store:
        first = await batch_status(store, batch_id)
        async for record in store.query(RESULTS_TABLE, batch_id):  # as if it died before recording them
            await store.delete(record)
    await worker(func.QueueMessage(id="m1", body=queue.value[0].encode()), CapturedOut())
    async with open_state(load_settings()) as store:
        again = await batch_status(store, batch_id)
    assert again == first
    assert again["counts"] == {"invited": 2, "skipped-member": 1, "pending": 0}
    assert len(emulator.control.outbox(kind="invitation")) == 2


async def test_unknown_batch_is_404(functions: dict, settings_env: Path) -> None:
    request = func.HttpRequest(
        method="GET", url="/api/invitations/batches/nope", body=b"", route_params={"batch_id": "nope"}
    )
    reply = await functions["invitation_batch_status"].get_user_function()(request)
    assert reply.status_code == 404


async def test_dropped_file_is_queued_like_a_post(functions: dict, settings_env: Path) -> None:
    queue = CapturedOut()
    blob = func.blob.InputStream(data=GOOD_CSV.encode(), name="invitations-inbox/partners.csv")
    await functions["invitation_file_dropped"].get_user_function()(blob, queue)
    chunk = json.loads(queue.value[0])
    assert [r["email"] for r in chunk["rows"]] == [
        "ann.lee@fabrikam.com",
        "raj.patel@northwindtraders.com",
        "adele.vance@contoso.com",
    ]


async def test_dropped_bad_file_queues_nothing(functions: dict, settings_env: Path) -> None:
    queue = CapturedOut()
    blob = func.blob.InputStream(data=b"mail\nx@y.com\n", name="invitations-inbox/bad.csv")
    await functions["invitation_file_dropped"].get_user_function()(blob, queue)
    assert not queue.was_set


async def test_transient_graph_failure_hands_the_chunk_back_to_the_queue(
    functions: dict, settings_env: Path, emulator: EmulatorServer
) -> None:
    from shared.errors import RetryLaterError

    _, queue = await post(functions, b"email\nann.lee@fabrikam.com\nraj.patel@northwindtraders.com\n")
    worker = functions["invite_rows"].get_user_function()
    emulator.control.set_faults(rate_503=1.0, path_prefix="/invitations")
    with pytest.raises(RetryLaterError, match=r"2 row\(s\) of batch .* failed for now"):
        await worker(func.QueueMessage(id="m1", body=queue.value[0].encode()), CapturedOut())
    assert emulator.control.outbox(kind="invitation") == []

    emulator.control.clear_faults()
    await worker(func.QueueMessage(id="m1", body=queue.value[0].encode()), CapturedOut())  # the queue's next delivery
    assert sorted(m["to"][0] for m in emulator.control.outbox(kind="invitation")) == [
        "ann.lee@fabrikam.com",
        "raj.patel@northwindtraders.com",
    ]


async def test_a_chunk_still_at_work_is_retried_later_while_the_other_chunks_of_its_batch_go_on(
    functions: dict, settings_env: Path, emulator: EmulatorServer
) -> None:
    from shared.config import load_settings
    from shared.core.apply import leased_part
    from shared.errors import RetryLaterError
    from shared.invitations.apply import ROWS_TABLE, lease_scope_for
    from shared.store import open_state
    from shared.store.lease import lease

    addresses = [f"guest{i}@fabrikam.com" for i in range(25)]
    _, queue = await post(functions, ("email\n" + "\n".join(addresses) + "\n").encode())
    assert len(queue.value) == 2, "two chunks of one batch"
    first = json.loads(queue.value[0])
    worker = functions["invite_rows"].get_user_function()
    async with open_state(load_settings()) as store:
        first_lease = leased_part(first["batch_id"], lease_scope_for(r["email"] for r in first["rows"]))
        # the first chunk's earlier delivery is still at work
        async with lease(store, ROWS_TABLE, first_lease, what="an earlier delivery"):
            with pytest.raises(RetryLaterError, match="is in progress elsewhere"):
                await worker(func.QueueMessage(id="m1", body=queue.value[0].encode()), CapturedOut())
            await worker(func.QueueMessage(id="m2", body=queue.value[1].encode()), CapturedOut())
    invited = sorted(m["to"][0] for m in emulator.control.outbox(kind="invitation"))
    assert invited == sorted(addresses[20:]), "the other chunk was not held up, the busy one not worked twice"


async def test_a_sender_without_a_mailbox_sends_the_chunk_to_the_poison_queue_at_once(
    functions: dict, settings_env: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = settings_env / "policy.yaml"
    policy.write_text("invitations:\n  sender_mailbox: nobody@contoso.com\n  message_template: 'Hi {redeem_url}'\n")
    monkeypatch.setenv("GUESTCTL_POLICY", str(policy))
    _, queue = await post(functions, b"email\nann.lee@fabrikam.com\n")
    poison = CapturedOut()
    await functions["invite_rows"].get_user_function()(func.QueueMessage(id="m1", body=queue.value[0].encode()), poison)
    assert "the sender mailbox 'nobody@contoso.com' cannot be used" in json.loads(poison.value)["reason"]
    assert emulator.control.outbox(kind="mail") == []
