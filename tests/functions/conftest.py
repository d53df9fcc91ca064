"""The Functions app indexed once per session (a second get_functions() raises, docs/architecture.md#library-facts)."""

from __future__ import annotations

from typing import Any

import azure.functions as func
import pytest


@pytest.fixture(scope="session")
def functions() -> dict[str, func.FunctionBuilder]:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


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
