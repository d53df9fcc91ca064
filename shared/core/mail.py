"""Email sent exactly once per action, the way Exchange allows it: a draft, its id recorded, then sent.

`sendMail` cannot be made idempotent: a crash between sending and recording it sends the email again on
the rerun. Instead a draft is created in the sender's mailbox, its id saved in the action's record
(`draft_id`), and the draft is sent. Resuming an action whose record holds a draft id, the draft is read
first: still a draft → send it; gone from the mailbox (404 `ErrorItemNotFound`: a sent draft moves to
Sent Items under a new id) or no longer a draft → it was sent. A crash before the id was saved leaves an
unsent draft behind, never a second email (docs/graph-contract.md#mail).

A sender that has no mailbox (no such user, or one without Exchange Online) is a setting to fix: a
`ConfigError`, never retried as if Graph had failed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.core.apply import Progress
from shared.errors import ConfigError, NotFoundError
from shared.graph import Graph

DRAFT_GONE = "ErrorItemNotFound"  # the draft id no longer resolves: sent (moved to Sent Items)
SENDER_HINT = "set invitations.sender_mailbox in the policy to a member's mailbox (Exchange Online)"


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str

    def draft(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "body": {"contentType": "Text", "content": self.text},
            "toRecipients": [{"emailAddress": {"address": self.to}}],
        }


async def send_once(
    graph: Graph,
    sender: str | None,
    progress: Progress,
    compose: Callable[[], Awaitable[Mail]],
    **drafted: Any,
) -> bool:
    """Send this action's one email; False if an earlier attempt already sent it.

    `compose` is called only when there is no draft yet (what it puts in the email — a redeem URL — stays
    in memory). `drafted` are saved with the draft id (a capability's stage, say).
    """
    if not sender:
        raise ConfigError("sending email needs a sender mailbox", hint=SENDER_HINT)
    messages = f"/users/{sender}/messages"
    draft_id = progress.data.get("draft_id")
    if draft_id is None:
        mail = await compose()
        with _mailbox(sender):
            response = await graph.request("POST", messages, json_body=mail.draft())
        draft_id = json.loads(response.content)["id"]
        await progress.save(draft_id=draft_id, **drafted)
    elif await _was_sent(graph, sender, f"{messages}/{draft_id}"):
        return False
    with contextlib.suppress(NotFoundError), _mailbox(sender):  # our own retried attempt already sent it
        await graph.request("POST", f"{messages}/{draft_id}/send", idempotent=True)
    return True


async def _was_sent(graph: Graph, sender: str, draft: str) -> bool:
    try:
        with _mailbox(sender):
            found = await graph.get_json(draft, params={"$select": "isDraft"})
    except NotFoundError:
        return True
    return not found.get("isDraft", True)


@contextlib.contextmanager
def _mailbox(sender: str) -> Iterator[None]:
    """A 404 about the mailbox itself (not the draft) becomes a ConfigError naming the setting."""
    try:
        yield
    except NotFoundError as error:
        if error.code == DRAFT_GONE:
            raise
        raise ConfigError(
            f"the sender mailbox {sender!r} cannot be used: {error.one_line()}", hint=SENDER_HINT
        ) from None
