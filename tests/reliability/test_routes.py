"""Every HTTP route needs its function key, or is anonymous for a reason written down here and in the docs,
and then authenticates each request by itself (docs/reliability.md#secrets-and-privacy).

The routes come from the app object the host indexes (function_app.app), not from a list kept by hand: a new
anonymous route fails this test until it is justified below.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from emulator.testing import EmulatorServer
from shared.attestation.tokens import Decision, sign
from tests.reliability.figures import Figures
from tests.support.functions import point_at_emulator


@dataclass(frozen=True, slots=True)
class Route:
    function: str
    route: str
    methods: tuple[str, ...]
    auth_level: str


# (route, method) → why it is anonymous, and where that is documented. Nothing else may be anonymous.
JUSTIFIED = {
    ("attest", "GET"): (
        "sponsors open the link from an email without a function key; the signed, expiring, single-use token in "
        "the link is the credential, and GET changes nothing",
        "functions/attestation.py, docs/attestation.md#get-shows-post-acts",
    ),
    ("attest", "POST"): (
        "the confirmation form posts the same signed token; it acts once and re-checks the sponsorship with Graph",
        "functions/attestation.py, docs/attestation.md#get-shows-post-acts",
    ),
}
# Graph's validation handshake (POST /api/graph/notifications?validationToken=…) needs no exception: Graph
# calls the notification URL with its ?code= function key, so both graph routes keep AuthLevel.FUNCTION.


def http_routes(functions: dict[str, func.FunctionBuilder], default: str) -> list[Route]:
    """Each HTTP trigger's route, methods and auth level as the host indexes them (the app's default when a
    trigger names none)."""
    found = []
    for name, builder in functions.items():
        for binding in json.loads(builder.get_function_json())["bindings"]:
            if binding["type"] == "httpTrigger":
                level = str(binding.get("authLevel") or default).upper()
                found.append(Route(name, binding.get("route") or name, tuple(binding.get("methods") or ()), level))
    return found


def audit(routes: list[Route]) -> list[str]:
    """Anonymous routes without a justification, and justifications whose route is no longer anonymous."""
    problems = []
    anonymous = set()
    for route in routes:
        if route.auth_level != "ANONYMOUS":
            continue
        for method in route.methods or ("(any method)",):
            anonymous.add((route.route, method))
            if (route.route, method) not in JUSTIFIED:
                problems.append(f"{method} /api/{route.route} ({route.function}) is anonymous and not justified")
    problems += [
        f"{m} /api/{r} is justified but not anonymous: drop it" for r, m in JUSTIFIED if (r, m) not in anonymous
    ]
    return problems


def app_default_level() -> str:
    import function_app

    return str(function_app.app.auth_level.name)


def test_only_justified_routes_are_anonymous(functions: dict[str, func.FunctionBuilder], figures: Figures) -> None:
    default = app_default_level()
    routes = http_routes(functions, default)
    problems = audit(routes)
    if default == "ANONYMOUS":
        problems.append("the app's default http_auth_level is ANONYMOUS")
    print(f"\nroutes: {len(routes)} HTTP routes, {sum(r.auth_level == 'ANONYMOUS' for r in routes)} anonymous")
    for route in sorted(routes, key=lambda r: r.route):
        print(f"  {','.join(route.methods):5} /api/{route.route:36} {route.auth_level}")
    figures.add("routes", violations=len(problems))
    assert len(routes) >= 10, "the app's HTTP routes were not found"
    assert problems == []


def test_the_audit_fails_on_an_unjustified_anonymous_route(functions: dict[str, func.FunctionBuilder]) -> None:
    routes = http_routes(functions, app_default_level())
    leaked = Route("debug_dump", "debug/dump", ("GET",), "ANONYMOUS")
    assert audit([*routes, leaked]) == ["GET /api/debug/dump (debug_dump) is anonymous and not justified"]
    hr = next(r for r in routes if r.route == "hr/events")
    opened = Route(hr.function, hr.route, hr.methods, "ANONYMOUS")
    assert audit([*routes, opened]) == ["POST /api/hr/events (hr_events) is anonymous and not justified"]
    closed = [r if r.route != "attest" else Route(r.function, r.route, r.methods, "FUNCTION") for r in routes]
    assert len(audit(closed)) == 2  # a stale justification is reported too


# -- each anonymous route authenticates by itself --------------------------------------------------------------
SECRET = "routes-attestation-secret-0123456789abcdef"


def snapshot(folder: Path, emulator: EmulatorServer) -> tuple[list[Any], list[str]]:
    """Every store row (all SQLite tables) and Graph's writes: what a refused request must leave as it was."""
    rows: list[Any] = []
    database = folder / "state.db"
    if database.exists():
        with sqlite3.connect(database) as connection:
            tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in sorted(tables):
                rows += [(table, *row) for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY 1')]
    writes = [f"{r['method']} {r['path']}" for r in emulator.control.requests() if r["method"] != "GET"]
    return rows, writes


def forged(guest: str, sponsor: str) -> str:
    """A well-formed token for a real guest and sponsor, signed with a secret the app does not have."""
    from datetime import UTC, datetime, timedelta

    expires = datetime.now(UTC) + timedelta(days=7)
    return sign(Decision.KEEP, guest_id=guest, sponsor_id=sponsor, expires=expires, secret=b"not-the-apps-secret")


@pytest.mark.parametrize(
    ("name", "method", "token"),
    [
        ("attest_page", "GET", None),
        ("attest_page", "GET", "forged"),
        ("attest_confirm", "POST", None),
        ("attest_confirm", "POST", "forged"),
    ],
)
def test_an_anonymous_route_refuses_a_request_without_its_credential(
    functions: dict[str, func.FunctionBuilder],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    method: str,
    token: str | None,
) -> None:
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_POLICY")
    monkeypatch.setenv("GUESTCTL_ATTESTATION_SECRET", SECRET)
    monkeypatch.setenv("GUESTCTL_ATTESTATION_URL", "https://guestctl.example.net")
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest")
    sponsor = next(u for u in emulator.tenant.users.values() if u.userType == "Member")
    text = forged(guest.id, sponsor.id) if token else ""
    emulator.control.clear_requests()
    before = snapshot(tmp_path, emulator)
    if method == "GET":
        request = func.HttpRequest(method="GET", url="/api/attest", body=b"", params={"token": text} if text else {})
    else:
        body = f"token={text}".encode() if text else b""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        request = func.HttpRequest(method="POST", url="/api/attest", body=body, headers=headers)
    response = asyncio.run(functions[name].get_user_function()(request))
    assert 400 <= response.status_code < 500, response.status_code
    assert snapshot(tmp_path, emulator) == before
    assert emulator.control.requests() == [], "a refused request reached Graph"
