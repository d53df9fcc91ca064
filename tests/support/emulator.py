"""Shared pieces for the emulator's own tests: the small tenant, its token, and reading Graph's pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from emulator.seed import seed_tenant
from emulator.tenant import Tenant

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "emulator-test-token"


def small_tenant(seed: int = 7, guests: int = 60, members: int = 12) -> Tenant:
    """The default test tenant: M-sized (50-500 users), generated, fixed clock start."""
    return seed_tenant(seed, guests=guests, members=members, now=NOW)


class StaticToken:
    """A credential for the emulator: any non-empty bearer token is accepted."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(TOKEN, 4102444800)

    async def close(self) -> None:
        return None


def guest_ids(tenant: Tenant) -> set[str]:
    return {u.id for u in tenant.users.values() if u.userType == "Guest"}


def follow(client: httpx.Client, first: httpx.Response, headers: dict[str, str] | None = None) -> list[dict]:
    """Collect every page's `value` by following @odata.nextLink."""
    response = first
    items: list[dict] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        link = body.get("@odata.nextLink")
        if not link:
            return items
        response = client.get(link, headers=headers)
