"""Reading Azure Storage queues in tests the way the Functions host does.

The host decodes a queue message's text according to host.json's `extensions.queues.messageEncoding`
(`base64` or `none`), so `AzuriteQueue` reads raw text and decodes it with that same setting: a test that
passes here means the queue trigger would see the same JSON.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

REPOSITORY_ROOT: Final = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT_SECONDS: Final = 30


def host_message_encoding(host_json: Path = REPOSITORY_ROOT / "host.json") -> str:
    """host.json's queue messageEncoding; the Functions host's default is base64."""
    settings = json.loads(host_json.read_text())
    return settings.get("extensions", {}).get("queues", {}).get("messageEncoding", "base64").lower()


def decode_message(text: str, encoding: str) -> str:
    """What the Functions host hands the function for this message text (raises on undecodable text)."""
    if encoding == "none":
        return text
    if encoding == "base64":
        return base64.b64decode(text, validate=True).decode("utf-8")
    raise ValueError(f"unknown messageEncoding {encoding!r}")


def is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class QueueMessage:
    raw: str  # the message text exactly as stored in the queue
    text: str  # after decoding with the host's messageEncoding

    def json(self) -> Any:
        return json.loads(self.text)


class AzuriteQueue:
    """A fresh queue in Azurite (or any account) that a test reads every message from, in order."""

    def __init__(self, connection_string: str, name: str | None = None, *, encoding: str | None = None) -> None:
        self.connection_string = connection_string
        self.name = name or f"q{uuid.uuid4().hex[:20]}"
        self.encoding = encoding or host_message_encoding()
        # No decode policy: messages come back as the raw stored text.
        self._client = QueueClient.from_connection_string(connection_string, self.name)
        self.received: list[QueueMessage] = []

    def create(self) -> AzuriteQueue:
        with contextlib.suppress(ResourceExistsError):
            self._client.create_queue()
        return self

    def delete(self) -> None:
        self._client.delete_queue()
        self._client.close()

    def receive(self) -> list[QueueMessage]:
        """Take every message visible now (deleting it, as a successful trigger does); returns the new ones."""
        new: list[QueueMessage] = []
        while True:
            pages = self._client.receive_messages(messages_per_page=32, visibility_timeout=VISIBILITY_TIMEOUT_SECONDS)
            batch = list(pages)
            if not batch:
                break
            for message in batch:
                raw = message.content
                new.append(QueueMessage(raw, decode_message(raw, self.encoding)))
                self._client.delete_message(message)
        self.received.extend(new)
        return new

    def wait_for(self, count: int, timeout: float = 15.0) -> list[QueueMessage]:
        """Poll until at least `count` messages have been received in total; returns all received."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            if not self.receive():
                time.sleep(0.05)
        return list(self.received)

    def events(self) -> list[dict[str, Any]]:
        return [message.json() for message in self.received]

    def __enter__(self) -> AzuriteQueue:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.delete()
