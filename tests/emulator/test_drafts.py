"""Draft messages: create in Drafts, read, send once; a sent draft's id no longer resolves."""

from __future__ import annotations

import httpx

from emulator.testing import EmulatorServer

SENDER = "adele.vance@contoso.com"


def draft(graph_http: httpx.Client, to: str = "ann@fabrikam.com") -> dict:
    response = graph_http.post(
        f"/users/{SENDER}/messages",
        json={
            "subject": "Hello",
            "body": {"contentType": "Text", "content": "Hi"},
            "toRecipients": [{"emailAddress": {"address": to}}],
        },
    )
    assert response.status_code == 201
    return response.json()


def test_draft_is_created_read_and_sent_once(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    message = draft(graph_http)
    assert message["isDraft"] is True
    read = graph_http.get(f"/users/{SENDER}/messages/{message['id']}", params={"$select": "isDraft"})
    assert read.json() == {"id": message["id"], "isDraft": True}
    assert emulator.control.outbox(kind="mail") == []

    sent = graph_http.post(f"/users/{SENDER}/messages/{message['id']}/send")
    assert sent.status_code == 202
    [mail] = emulator.control.outbox(kind="mail")
    assert (mail["to"], mail["subject"], mail["body"]) == (["ann@fabrikam.com"], "Hello", "Hi")

    again = graph_http.post(f"/users/{SENDER}/messages/{message['id']}/send")
    gone = graph_http.get(f"/users/{SENDER}/messages/{message['id']}")
    assert (again.status_code, gone.status_code) == (404, 404)
    assert gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert len(emulator.control.outbox(kind="mail")) == 1


def test_another_mailbox_cannot_see_the_draft(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    message = draft(graph_http)
    other = graph_http.get(f"/users/megan.bowen@contoso.com/messages/{message['id']}")
    assert other.status_code == 404


def test_draft_without_recipients_cannot_be_sent(emulator: EmulatorServer, graph_http: httpx.Client) -> None:
    response = graph_http.post(f"/users/{SENDER}/messages", json={"subject": "x"})
    sent = graph_http.post(f"/users/{SENDER}/messages/{response.json()['id']}/send")
    assert sent.status_code == 400
    assert sent.json()["error"]["code"] == "ErrorInvalidRecipients"
