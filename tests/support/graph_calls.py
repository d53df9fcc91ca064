"""Record every Graph call the engine makes against the emulator, as (method, path template).

The session's emulator keeps its request log in process (`EmulatorState.request_log`); `RecordingLog` replaces
that deque and templates each entry as the gateway appends it (inner `$batch` requests included), so the suite
pays one regex pass per request and no extra HTTP. docs/permissions.md's "Every call, checked" table is then
compared with what was recorded (tests/conftest.py's session hooks, `compare`).
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERMISSIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
GRAPH_ROOTS = ("/v1.0", "/beta")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CALL_ARGUMENT = re.compile(r"\((\w+)='[^']*'\)")  # findTenantInformationByDomainName(domainName='x')
_KEY = re.compile(r"^(\w+)\('[^']*'\)$")  # users('x') key syntax
# Collections whose next segment is a key (unless it is a function, a cast or `$ref`/`$count`).
_KEYED = {
    "users",
    "groups",
    "members",
    "owners",
    "sponsors",
    "messages",
    "subscriptions",
    "teams",
    "channels",
    "deletedItems",
    "partners",
    "servicePrincipals",
    "appRoleAssignments",
    "roleAssignments",
}
_NOT_KEYS = {"delta", "default"}


def template(method: str, path: str, select: str = "") -> str:
    """`PATCH /v1.0/users/3f…` → `PATCH /users/{id}`: ids (GUIDs, UPNs and addresses, `19:…@thread…` channel ids,
    channel membership ids) become `{id}`, function arguments `{name}`. Reading `signInActivity` needs
    AuditLog.Read.All on top of the path's permission, so a `$select` naming it is kept as `?$select=signInActivity`."""
    for root in GRAPH_ROOTS:
        if path.startswith(root + "/"):
            path = path[len(root) :]
            break
    segments = []
    previous = ""
    for segment in path.strip("/").split("/"):
        keyed = previous in _KEYED and segment not in _NOT_KEYS and not segment.startswith(("$", "microsoft.graph."))
        if (keyed and "(" not in segment) or _GUID.match(segment) or "@" in segment or segment.startswith("19:"):
            segment = "{id}"
        else:
            segment = _CALL_ARGUMENT.sub(lambda m: "(" + m.group(1) + "='{" + m.group(1) + "}')", segment)
            segment = _KEY.sub(lambda m: m.group(1) + "('{id}')", segment)
        segments.append(segment)
        previous = segment
    call = f"{method.upper()} /{'/'.join(segments)}"
    if "signinactivity" in select.lower():
        call += "?$select=signInActivity"
    return call


class RecordingLog(collections.deque):  # type: ignore[type-arg]
    """The emulator's request log, also noting each request's template while `recording` is on."""

    def __init__(self, maxlen: int | None, calls: set[str]) -> None:
        super().__init__(maxlen=maxlen)
        self.recording = False
        self.calls = calls

    def append(self, entry: dict[str, Any]) -> None:
        super().append(entry)
        if self.recording:
            select = entry.get("query", {}).get("$select", "")
            self.calls.add(template(entry["method"], entry["path"], select))


# Listed calls whose code no engine test reaches yet (measured on the whole suite). A full run fails when one of
# these IS made (take it off this list) as well as when any other listed call is not.
NOT_YET_EXERCISED = frozenset(
    {
        "PATCH /subscriptions/{id}",  # the renewal timer (shared/notifications/subscriptions.py)
        "POST /users/{id}/sendMail",  # guestctl report --send
        "GET /tenantRelationships/findTenantInformationByTenantId(tenantId='{tenantId}')",  # partners trust
    }
)


@dataclass(frozen=True)
class Row:
    permissions: frozenset[str]  # the least-privileged application permissions (backticked names outside brackets)
    capabilities: frozenset[str]


def documented_calls(text: str | None = None) -> dict[str, Row]:
    """docs/permissions.md's "Every call, checked" table: call template → its permissions and capabilities."""
    text = PERMISSIONS_DOC.read_text() if text is None else text
    section = text.split("## Every call, checked", 1)[1].split("\n## ", 1)[0]
    calls: dict[str, Row] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Za-z][\w-]*(?:\.[\w-]+)+)`", re.sub(r"\([^)]*\)", "", cells[1]))
        capabilities = {name.strip() for name in cells[2].split(",") if name.strip()}
        calls[cells[0].strip("`")] = Row(frozenset(names), frozenset(capabilities))
    return calls


def compare(recorded: set[str], documented: dict[str, Row], *, complete: bool) -> list[str]:
    """Problems: a recorded call missing from the table (or listed without a permission); when the run was
    complete, a listed call never made."""
    problems = [
        f"{call}: made by the tests but not in docs/permissions.md" for call in sorted(recorded - set(documented))
    ]
    problems += [
        f"{call}: listed without a permission"
        for call in sorted(recorded)
        if call in documented and not documented[call].permissions and call != "POST /$batch"
    ]
    if complete:
        unmade = set(documented) - recorded - NOT_YET_EXERCISED
        problems += [f"{call}: listed in docs/permissions.md but never made" for call in sorted(unmade)]
        problems += [
            f"{call}: made now: take it off NOT_YET_EXERCISED (tests/support/graph_calls.py)"
            for call in sorted(NOT_YET_EXERCISED & recorded)
        ]
    return problems
