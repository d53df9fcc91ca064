"""Calling the Functions app's functions as the host would: bindings, output bindings, settings."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from emulator.testing import EmulatorServer


class CapturedOut(func.Out[Any]):
    """An output binding as the host provides it: the function sets a value, the host reads it."""

    def __init__(self) -> None:
        self.value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self.value = val
        self.was_set = True

    def get(self) -> Any:
        return self.value


def bindings(functions: dict[str, func.FunctionBuilder], name: str) -> list[dict[str, Any]]:
    """A function's bindings as the host indexes them (its function.json)."""
    return json.loads(functions[name].get_function_json())["bindings"]


def timer_schedules() -> dict[str, str]:
    """Every timer's schedule setting with its default, as a deployment sets them (infra/main.bicep)."""
    from shared.config import ENV_PREFIX, TIMER_SCHEDULES, Settings

    return {ENV_PREFIX + name.upper(): Settings.model_fields[name].default for name in TIMER_SCHEDULES}


def resolved(schedule: str) -> str:
    """A timer binding's schedule as the host resolves it with the deployed settings (%NAME% → its value)."""
    return timer_schedules()[schedule.strip("%")] if schedule.startswith("%") else schedule


def http_bindings(method: str, route: str) -> list[dict[str, Any]]:
    """The bindings of an HTTP function with a function key, as the host indexes them."""
    return [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": [method],
            "authLevel": "FUNCTION",
            "route": route,
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]


def point_at_emulator(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, folder: Path, *unset: str) -> None:
    """App settings for the emulator, with the state in `folder`; `unset` (and GUESTCTL_CLOUD) removed."""
    for name in ("GUESTCTL_CLOUD", *unset):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GUESTCTL_GRAPH_URL", emulator.base_url)
    monkeypatch.setenv("GUESTCTL_AUTH", "emulator")
    monkeypatch.setenv("GUESTCTL_STATE", str(folder / "state.db"))


async def submit_batch(
    functions: dict[str, func.FunctionBuilder], body: bytes, headers: dict[str, str] | None = None
) -> tuple[func.HttpResponse, CapturedOut]:
    """POST /api/invitations/batches (CSV unless `headers` say otherwise): the response and what was queued."""
    queue = CapturedOut()
    request = func.HttpRequest(
        method="POST",
        url="/api/invitations/batches",
        body=body,
        headers={"Content-Type": "text/csv", **(headers or {})},
    )
    return await functions["submit_invitation_batch"].get_user_function()(request, queue), queue


@contextmanager
def exported_logs(logger: str) -> Iterator[Callable[[], list[Any]]]:
    """The OpenTelemetry log records `logger` produces, through the OpenTelemetry SDK's logging handler as the
    Python worker installs it (host.json telemetryMode OpenTelemetry): each record's body and attributes."""
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    provider, exporter = LoggerProvider(), InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with warnings.catch_warnings():  # the SDK's handler is deprecated for the instrumentation package's, the same
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield lambda: [record.log_record for record in exporter.get_finished_logs()]
    finally:
        logging.getLogger(logger).removeHandler(handler)
        provider.shutdown()
