"""Graph → what attestation needs of a guest: who they are and who sponsors them now (one request each)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from shared.errors import GraphError, NotFoundError
from shared.graph import Graph
from shared.graph.batch import BatchRequest
from shared.graph.odata import is_object_id

# `$expand=sponsors` on one user: the guest and their sponsors in one request (docs/graph-contract.md#users)
USER_WITH_SPONSORS = (
    "/users/{id}?$select=id,displayName,mail,userPrincipalName,userType&$expand=sponsors($select=id,displayName,mail)"
)
GUEST_SELECT = "id,displayName,mail,userPrincipalName,userType"


@dataclass(frozen=True, slots=True)
class SponsoredGuest:
    id: str
    display: str  # "Name <address>"
    user_type: str
    sponsors: dict[str, str]  # sponsor id (lower-case) → display name (or address)


def display(user: dict[str, object]) -> str:
    address = user.get("mail") or user.get("userPrincipalName") or user.get("id")
    return f"{user.get('displayName') or '?'} <{address}>"


def _decode(body: dict[str, object]) -> SponsoredGuest:
    sponsors = {
        str(s["id"]).lower(): str(s.get("displayName") or s.get("mail") or s["id"])
        for s in body.get("sponsors") or []  # type: ignore[union-attr]
        if isinstance(s, dict) and s.get("id")
    }
    return SponsoredGuest(str(body["id"]).lower(), display(body), str(body.get("userType") or ""), sponsors)


async def guests_with_sponsors(graph: Graph, guest_ids: Sequence[str]) -> dict[str, SponsoredGuest | None]:
    """Each guest as Graph has them now, with their sponsors; None for a guest that no longer exists."""
    requests = [BatchRequest(str(i), "GET", USER_WITH_SPONSORS.format(id=g)) for i, g in enumerate(guest_ids)]
    responses = await graph.batch(requests)
    found: dict[str, SponsoredGuest | None] = {}
    for index, guest_id in enumerate(guest_ids):
        response = responses.get(str(index))
        if response is None or response.status == 404:
            found[guest_id] = None
        elif not response.ok:
            code = ((response.body or {}).get("error") or {}).get("code")
            raise GraphError(
                f"reading guest {guest_id} failed: {response.status} {code or ''}".rstrip(),
                status=response.status,
                code=code,
            )
        else:
            found[guest_id] = _decode(response.body or {})
    return found


async def find_guest(graph: Graph, guest: str) -> dict[str, object] | None:
    """A user by object id or userPrincipalName (what `guestctl attest` accepts), or None."""
    if not is_object_id(guest) and "@" not in guest:
        return None
    try:
        # a guest's UPN has `#EXT#`: percent-encoded, or the rest would be taken for a URL fragment
        return await graph.get_json(f"/users/{quote(guest, safe='@')}", params={"$select": GUEST_SELECT})
    except NotFoundError:
        return None
