"""Crash-and-resume machinery for tests/reliability/test_crash.py: run a guestctl command (or a queue-triggered
function) as a child, enumerate its kill points, kill it at one, and read the end state in a form two runs
with different object ids and times can be compared in.

Kill points: the n-th Graph request (emulator/crash.py: `before` it ran, or `after` it ran and before the
reply) and the n-th store operation (tests/reliability/killer.py, before it runs).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.tenant import Tenant
from emulator.testing import EmulatorServer
from shared.store.sqlite import SqliteStore
from tests.reliability.killer import WRITES, counted, run_function
from tests.support.cli import emulator_settings, guestctl_env

KILLER = [sys.executable, "-m", "tests.reliability.killer"]
TIMEOUT = 120


@dataclass(frozen=True)
class Point:
    kind: str  # "graph" | "store"
    n: int
    moment: str = "before"
    write: bool = False

    def __str__(self) -> str:
        return f"{self.kind}#{self.n}-{self.moment}{' (write)' if self.write else ''}"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    graph: list[dict[str, Any]]  # the emulator's request log entries of this run
    store_ops: list[str]


def start(
    emulator: EmulatorServer, folder: Path, args: list[str], *, store_op: int | None = None, ops: Path | None = None
) -> subprocess.Popen[str]:
    options = [*(["--store-op", str(store_op)] if store_op else []), *(["--ops", str(ops)] if ops else [])]
    env = guestctl_env(settings(emulator, folder))
    return subprocess.Popen(
        [*KILLER, *options, "--", *args], cwd=folder, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def settings(emulator: EmulatorServer, folder: Path) -> dict[str, str]:
    """The emulator, the store and the policy (policy.yaml) in `folder` (every flow writes one)."""
    return emulator_settings(emulator, folder, folder / "policy.yaml")


@contextlib.contextmanager
def here(emulator: EmulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """This process set up as a run in `folder` is (its GUESTCTL_* settings, its working folder), then put back."""
    with monkeypatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("GUESTCTL_")]:
            patch.delenv(name)
        for name, value in settings(emulator, folder).items():
            patch.setenv(name, value)
        patch.chdir(folder)
        yield patch


def run_here(emulator: EmulatorServer, folder: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `args` to its end in this process (cheap: no interpreter to start), counting its store operations.
    Only a run that is to be killed needs a child process."""
    from shared import cli

    first = len(emulator.state.request_log)
    ops: list[str] = []
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with here(emulator, folder, monkeypatch) as patch:
        for name, method in counted(None, ops).items():
            patch.setattr(SqliteStore, name, method)
        patch.setattr(sys, "argv", ["guestctl", *args])
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                run_function(*args[1:4]) if args[:1] == ["function"] else cli.main()
            except SystemExit as exited:
                code = exited.code if isinstance(exited.code, int) else 1
    return Run(code, out.getvalue(), err.getvalue(), list(emulator.state.request_log)[first:], ops)


def snapshot(tenant: Tenant) -> Tenant:
    """A copy of the tenant to start each point from (its lock new, its clock shared, no listeners: the
    emulator attaches its own when the copy replaces the tenant)."""
    kept = {id(tenant.lock): threading.RLock(), id(tenant.clock): tenant.clock, id(tenant.listeners): []}
    return copy.deepcopy(tenant, kept)


def run(emulator: EmulatorServer, folder: Path, args: list[str], *, point: Point | None = None) -> Run:
    """Run `args` in a child to its end, or until `point` kills it; with no point, record its store operations."""
    ops = folder / "ops.txt" if point is None else None
    first = len(emulator.state.request_log)
    store_op = point.n if point is not None and point.kind == "store" else None
    process = start(emulator, folder, args, store_op=store_op, ops=ops)
    if point is not None and point.kind == "graph":
        emulator.arm_crash(process.pid, request=point.n, moment=point.moment)  # type: ignore[arg-type]
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    emulator.state.crash.disarm()
    graph = list(emulator.state.request_log)[first:]
    store_ops = ops.read_text().split() if ops is not None and ops.exists() else []
    return Run(process.returncode, stdout, stderr, graph, store_ops)


def is_write(entry: dict[str, Any]) -> bool:
    if entry["path"].endswith("/$batch"):
        return any(r.get("method", "GET") != "GET" for r in (entry["body"] or {}).get("requests", []))
    return entry["method"] != "GET"


def kill_points(baseline: Run, *, full: bool, sample: tuple[str, ...]) -> list[Point]:
    """Every point (full), or the `sample` (short): "write-before" / "write-after" (the first Graph write),
    "store-write" (the middle store write), "last" (the last Graph request)."""
    graph = [Point("graph", i, "before", is_write(e)) for i, e in enumerate(baseline.graph, 1)]
    after = [Point("graph", p.n, "after", True) for p in graph if p.write]
    store = [Point("store", i, "before", op in WRITES) for i, op in enumerate(baseline.store_ops, 1)]
    if full:
        return [*graph, *after, *store]
    writes = [p for p in graph if p.write]
    store_writes = [p for p in store if p.write]
    chosen = {
        "write-before": writes[:1],
        "write-after": after[:1],
        "store-write": store_writes[len(store_writes) // 2 :][:1],
        "last": graph[-1:],
    }
    return [point for name in sample for point in chosen[name]]


# ---- end state ------------------------------------------------------------------------------------
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")


# Bookkeeping of tries, not changes: a rerun after a kill is one more try ("attempts"), and its note says so
# ("detail": "disabled by the interrupted run"); the outcome and state are compared. `full` says whether the
# last delta round was a full one: a sync killed after it kept its delta link goes on with a delta round.
VOLATILE = frozenset({"attempts", "detail", "full"})
GENERATED = frozenset({"draft_id"})  # ids Graph makes up per request (a mail draft's): "<id>" in both runs
DELTA_TOKEN = re.compile(r"(\$deltatoken=)[^&\"]+")


class Names:
    """Object ids → stable names (mail / UPN / group name), so runs that created different ids compare."""

    def __init__(self, tenant: Tenant) -> None:
        self.names: dict[str, str] = {}
        for user in [*tenant.users.values(), *(d.user for d in tenant.deleted.values())]:
            self.names[user.id.lower()] = (user.mail or user.userPrincipalName).lower()
        for group in tenant.groups.values():
            self.names[group.id.lower()] = f"group:{group.displayName}"

    def name(self, value: str) -> str:
        return self.names.get(value.lower(), value)

    def text(self, value: str) -> str:
        value = UUID.sub(lambda m: self.names.get(m.group(0).lower(), "<id>"), value)
        value = DELTA_TOKEN.sub(r"\1<token>", value)  # Graph's delta token encodes when it was issued
        return TIME.sub("<time>", value)

    @staticmethod
    def outcome(key: str, value: Any) -> Any:
        """`already-done` (a rerun found the change made) and `done` both say the change is in place, once."""
        return "done" if key == "outcome" and value == "already-done" else value

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {
                self.text(k): "<id>" if k in GENERATED and v else self.outcome(k, self.json(v))
                for k, v in value.items()
                if k not in VOLATILE
            }
        return value


def tenant_state(tenant: Tenant) -> dict[str, Any]:
    names = Names(tenant)
    users = {
        names.name(u.id): {
            "type": u.userType,
            "enabled": u.accountEnabled,
            "state": u.externalUserState,
            "groups": sorted(names.name(g) for g in tenant.member_of.get(u.id, ())),
            "sponsors": sorted(names.name(s) for s in u.sponsors),
        }
        for u in tenant.users.values()
    }
    return {
        "users": users,
        "deleted": sorted(names.name(d) for d in tenant.deleted),
        "partners": names.json(tenant.policy_partners),
        "default": names.json(tenant.policy_default),
        "mail": sorted(Counter(f"{m['kind']}:{m['to'][0].lower()}" for m in tenant.outbox).items()),
    }


def changes(tenant: Tenant, since: int) -> Counter[str]:
    """The change journal since `since`, by user name, kind and properties: each change must happen once."""
    names = Names(tenant)
    return Counter(
        f"{names.name(c.user_id)} {c.kind} {','.join(sorted(c.props or ('*',)))}"
        for _, c in tenant.changes_since(since)
    )


def store_state(database: Path, tenant: Tenant) -> dict[str, Any]:
    """Records (keys and data) and audit entries, ids named and times and run ids blanked."""
    names = Names(tenant)
    if not database.exists():
        return {"records": [], "audit": []}
    with sqlite3.connect(database) as connection:
        records = sorted(
            json.dumps(names.json([t, p, r, json.loads(d)]), sort_keys=True)
            for t, p, r, d in connection.execute("SELECT tbl, partition, row, data FROM records")
        )
        audit = Counter()
        for (text,) in connection.execute("SELECT entry FROM audit"):
            entry = json.loads(text)
            audit[f"{entry.get('action')} {names.text(entry.get('target_id', ''))}"] += 1
    return {"records": records, "audit": sorted(audit.items())}
