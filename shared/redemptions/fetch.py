"""Delta rounds over users: every user once (a full round), or what changed since the kept deltaLink.

Notifications are only hints (Graph may delay or drop them); delta is the truth. A deltaLink older than
7 days is refused by Graph (410 / syncStateNotFound): `DeltaExpiredError`, and the caller starts a full
round (docs/graph-contract.md#delta).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from shared.errors import GraphError, GuestctlError
from shared.graph import Graph
from shared.redemptions.records import DELTA_SELECT, DeltaPage

EXPIRED_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})


class DeltaExpiredError(GuestctlError):
    """The kept deltaLink is too old (or otherwise refused): only a full round can continue."""


async def delta_pages(graph: Graph, delta_link: str | None) -> AsyncIterator[DeltaPage]:
    """The pages of one round; the last one carries `delta_link`, the link to keep for the next round."""
    url: str | None = delta_link or graph.url("/users/delta", {"$select": DELTA_SELECT})
    while url:
        try:
            response = await graph.request("GET", url)
        except GraphError as error:
            if delta_link is not None and _expired(error):
                raise DeltaExpiredError(f"the delta link was refused ({error.status} {error.code})") from error
            raise
        page = msgspec.json.decode(response.content, type=DeltaPage)
        yield page
        url = page.next_link


def _expired(error: GraphError) -> bool:
    return error.status == 410 or (error.code or "").lower() in EXPIRED_CODES
