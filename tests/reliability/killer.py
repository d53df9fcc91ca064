"""Run guestctl, or one queue-triggered function, and SIGKILL it at its n-th store operation (crash tests).

    python -m tests.reliability.killer [--store-op N] [--ops FILE] -- <guestctl arguments>
    python -m tests.reliability.killer [--store-op N] [--ops FILE] -- function NAME MESSAGE_ID BODY_FILE

The store's methods (shared/store/sqlite.py) are wrapped here, in the child, so production code carries no
test hooks: every get/create/update/upsert/delete/query/append_audit/read_audit counts as one operation;
at the N-th the process kills itself before the operation runs. `--ops FILE` writes the operations of an
uninterrupted run (one name a line), which is how the test enumerates the kill points.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import os
import signal
import sys
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from shared.store.sqlite import SqliteStore

OPERATIONS = ("get", "create", "update", "upsert", "delete", "query", "append_audit", "read_audit")
WRITES = frozenset({"create", "update", "upsert", "delete", "append_audit"})
seen: list[str] = []


def counted(kill_at: int | None, record: list[str]) -> dict[str, Callable[..., Any]]:
    """The store's methods, each appending its name to `record` and, the `kill_at`-th, SIGKILLing the process."""
    wrapped = {}
    for name in OPERATIONS:
        original = getattr(SqliteStore, name)

        def wrap(original: Callable[..., Any] = original, name: str = name) -> Callable[..., Any]:
            @wraps(original)
            def call(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
                record.append(name)
                if len(record) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return original(self, *args, **kwargs)

            return call

        wrapped[name] = wrap()
    return wrapped


def instrument(kill_at: int | None) -> None:
    for name, method in counted(kill_at, seen).items():
        setattr(SqliteStore, name, method)


@cache
def indexed() -> dict[str, Any]:
    """The Functions app's functions, indexed once per process (a second get_functions() raises)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def run_function(name: str, message_id: str, body_file: str) -> None:
    """The queue-triggered function `name` with the message, as the host calls it (output bindings captured)."""
    import azure.functions as func

    from tests.support.functions import CapturedOut

    user_function = indexed()[name].get_user_function()
    outputs = list(inspect.signature(user_function).parameters)[1:]
    message = func.QueueMessage(id=message_id, body=Path(body_file).read_bytes())
    captured = {name: CapturedOut() for name in outputs}
    asyncio.run(user_function(message, *captured.values()))
    poison = captured.get("poison")
    if poison is not None and poison.was_set:  # parked without retry: say why, and fail the run
        print(poison.value, file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str]) -> None:
    split = argv.index("--")
    options, rest = argv[:split], argv[split + 1 :]
    kill_at = int(options[options.index("--store-op") + 1]) if "--store-op" in options else None
    if "--ops" in options:
        target = Path(options[options.index("--ops") + 1])
        atexit.register(lambda: target.write_text("".join(f"{op}\n" for op in seen)))
    instrument(kill_at)
    if rest[:1] == ["function"]:
        run_function(*rest[1:4])
        return
    from shared.cli import main as guestctl

    sys.argv = ["guestctl", *rest]
    guestctl()


if __name__ == "__main__":
    main(sys.argv[1:])
