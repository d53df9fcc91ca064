"""A small stand-in for the Functions host (Core Tools cannot be installed here): the app's HTTP functions
served over real HTTP on 127.0.0.1, their queue outputs written to real Azurite queues the way the host
writes them (host.json `messageEncoding`), and queue triggers fed from those queues.

It does what the host does for the parts our functions use, and no more: routes and methods from the
httpTrigger binding, response headers, the function key (`?code=` or `x-functions-key`), query parameters URL-decoded,
queue output bindings (a string or a list of strings), queue triggers with a dequeue count, and a message
that raised going back to the queue until maxDequeueCount, then to `<queue>-poison`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as QueueTriggerMessage
from azure.storage.queue import QueueClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.testing import _ThreadedServer
from tests.support.functions import CapturedOut
from tests.support.queues import REPOSITORY_ROOT, decode_message, host_message_encoding

FUNCTION_KEY = "test-function-key"


def host_queue_settings() -> dict[str, Any]:
    return json.loads((REPOSITORY_ROOT / "host.json").read_text())["extensions"]["queues"]


class FunctionsHost:
    """`with FunctionsHost(functions, connection_string) as host:` — `host.url(route)`, `host.drain(queue)`."""

    def __init__(self, functions: dict[str, func.FunctionBuilder], connection_string: str) -> None:
        self.functions = {name: json.loads(f.get_function_json()) for name, f in functions.items()}
        self.builders = functions
        self.connection_string = connection_string
        settings = host_queue_settings()
        self.encoding = host_message_encoding()
        self.max_dequeue = int(settings.get("maxDequeueCount", 5))
        routes = [
            Route(f"/api/{binding['route']}", self._http(name), methods=binding["methods"])
            for name, spec in self.functions.items()
            for binding in spec["bindings"]
            if binding["type"] == "httpTrigger"
        ]
        self._server = _ThreadedServer(Starlette(routes=routes))
        self.invocations: list[tuple[str, str]] = []  # (function, outcome) — for assertions

    def url(self, route: str, *, key: bool = True) -> str:
        return f"{self._server.root_url}/api/{route}" + (f"?code={FUNCTION_KEY}" if key else "")

    def queue(self, name: str) -> QueueClient:
        client = QueueClient.from_connection_string(self.connection_string, name)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client

    def _http(self, name: str) -> Any:
        spec = self.functions[name]
        trigger = next(b for b in spec["bindings"] if b["type"] == "httpTrigger")

        async def handle(request: Request) -> Response:
            if trigger.get("authLevel") == "FUNCTION":
                given = request.query_params.get("code") or request.headers.get("x-functions-key")
                if given != FUNCTION_KEY:
                    return Response(status_code=401)
            params = {k: v for k, v in request.query_params.items() if k != "code"}
            req = func.HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers),
                params=params,
                route_params=dict(request.path_params),
                body=await request.body(),
            )
            outputs = self._outputs(spec)
            response = await self._call(name, {trigger["name"]: req, **outputs})
            self._write_outputs(spec, outputs)
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
            return Response(
                response.get_body(), status_code=response.status_code, media_type=response.mimetype, headers=headers
            )

        return handle

    def _outputs(self, spec: dict[str, Any]) -> dict[str, CapturedOut]:
        return {b["name"]: CapturedOut() for b in spec["bindings"] if b["direction"] == "OUT" and b["type"] == "queue"}

    def _write_outputs(self, spec: dict[str, Any], outputs: dict[str, CapturedOut]) -> None:
        for binding in spec["bindings"]:
            out = outputs.get(binding["name"])
            if out is None or not out.was_set:
                continue
            values = out.value if isinstance(out.value, list) else [out.value]
            client = self.queue(binding["queueName"])
            for value in values:
                client.send_message(self.encode(value))

    def encode(self, text: str) -> str:
        return base64.b64encode(text.encode()).decode() if self.encoding == "base64" else text

    def _decode(self, text: str) -> bytes:
        return decode_message(text, self.encoding).encode()

    async def _call(self, name: str, arguments: dict[str, Any]) -> Any:
        function = self.builders[name].get_user_function()
        if inspect.iscoroutinefunction(function):
            return await function(**arguments)
        return await asyncio.to_thread(function, **arguments)

    def drain(self, queue: str, *, rounds: int = 50) -> int:
        """Feed `queue`'s messages to its trigger until it is empty; returns how many invocations ran."""
        name, spec = next(
            (n, s)
            for n, s in self.functions.items()
            if any(b["type"] == "queueTrigger" and b["queueName"] == queue for b in s["bindings"])
        )
        trigger = next(b for b in spec["bindings"] if b["type"] == "queueTrigger")
        client = self.queue(queue)
        ran = 0
        for _ in range(rounds):
            batch = list(client.receive_messages(messages_per_page=16, visibility_timeout=1))
            if not batch:
                return ran
            for message in batch:
                ran += 1
                self._deliver(name, spec, trigger, client, message)
        return ran

    def _deliver(
        self, name: str, spec: dict[str, Any], trigger: dict[str, Any], client: QueueClient, message: Any
    ) -> None:
        body = self._decode(message.content)
        # The class the host's worker hands a queue trigger: it carries the dequeue count.
        queue_message = QueueTriggerMessage(id=message.id, body=body, dequeue_count=message.dequeue_count)
        outputs = self._outputs(spec)
        try:
            asyncio.run(self._call(name, {trigger["name"]: queue_message, **outputs}))
        except Exception:
            self.invocations.append((name, "raised"))
            if message.dequeue_count >= self.max_dequeue:
                self.queue(trigger["queueName"] + "-poison").send_message(message.content)
                client.delete_message(message)
            else:
                client.update_message(message, visibility_timeout=0)
            return
        self.invocations.append((name, "ok"))
        self._write_outputs(spec, outputs)
        client.delete_message(message)

    def run_timer(self, name: str) -> None:
        asyncio.run(self._call(name, {"timer": None}))

    def __enter__(self) -> FunctionsHost:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
