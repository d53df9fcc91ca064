"""Bulk invitation throughput under Graph's write budget, against the emulator in its own process.

3,000 rows, each with one group and one sponsor (3 writes per row), limits on and time-scaled, 150-300 ms
added latency per request. Prints achieved writes/s ÷ the write budget, the 429 count, and the speed-up
over a plain sequential msgraph-sdk loop measured in the same run (on the first rows, extrapolated).
Run: python bench/invite_throughput.py [--rows 3000] [--time-scale 0.2] [--baseline-rows 40]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from emulator.testing import ControlClient, EmulatorProcess  # noqa: E402
from shared.config import Policy  # noqa: E402
from shared.graph import Budget, Graph, GraphOptions, RetryPolicy  # noqa: E402
from shared.invitations import InvitationRow, apply_invitations, plan_rows  # noqa: E402
from shared.store import open_store  # noqa: E402

WRITES_PER_WINDOW = 3_000  # docs/graph-contract.md#throttling: per app+tenant, per 150 s
WINDOW_SECONDS = 150.0


def make_rows(base_url: str, count: int, offset: int = 0) -> list[InvitationRow]:
    """Rows naming real (non-dynamic) groups and member sponsors of the emulated tenant."""
    headers = {"Authorization": "Bearer bench"}
    groups = httpx.get(f"{base_url}/groups?$select=displayName,groupTypes", headers=headers).json()["value"]
    groups = [g["displayName"] for g in groups if "DynamicMembership" not in g.get("groupTypes", [])]
    members = httpx.get(
        f"{base_url}/users?$filter=userType eq 'Member'&$select=userPrincipalName&$top=999", headers=headers
    ).json()["value"]
    members = [m["userPrincipalName"] for m in members if "#EXT#" not in m["userPrincipalName"]]
    return [
        InvitationRow(
            i + 1,
            f"bench{offset + i}@partner{i % 13}.example",
            display_name=f"Bench {i}",
            groups=(groups[i % len(groups)],),
            sponsors=(members[i % len(members)],),
        )
        for i in range(count)
    ]


async def run_guestctl(base_url: str, rows: list[InvitationRow], time_scale: float, state: Path) -> tuple[float, int]:
    budget = Budget.for_tenant("L", 1.0, time_scale)
    graph = Graph(
        GraphOptions(
            base_url=base_url, auth="emulator", budget=budget, max_concurrency=32, retry=RetryPolicy(budget_seconds=600)
        )
    )
    plan = await plan_rows(
        rows, graph, Policy(), batch_id="bench", source="bench", tenant_id=None, now=datetime.now(UTC)
    )
    started = time.perf_counter()
    async with open_store(str(state)) as store:
        results = await apply_invitations(plan, graph, store, mailer=None, actor="bench")
    elapsed = time.perf_counter() - started
    await graph.close()
    failed = [r for r in results if r.result.value != "invited"]
    if failed:
        raise RuntimeError(f"{len(failed)} rows not invited, e.g. {failed[0]}")
    return elapsed, graph.pacer.throttled


async def run_sdk_loop(base_url: str, rows: list[InvitationRow]) -> float:
    """What a script would do: the msgraph-sdk's own client and models, one request after another."""
    from azure.core.credentials import AccessToken
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.invitation import Invitation
    from msgraph.generated.models.reference_create import ReferenceCreate

    class Token:
        async def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken("bench", 4102444800)

    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(Token(), allowed_hosts=["127.0.0.1"]))
    adapter.base_url = base_url
    client = GraphServiceClient(request_adapter=adapter)
    groups = {g.display_name: g.id for g in (await client.groups.get()).value}
    started = time.perf_counter()
    for row in rows:
        invitation = await client.invitations.post(
            Invitation(
                invited_user_email_address=row.email,
                invite_redirect_url="https://myapplications.microsoft.com",
                send_invitation_message=True,
            )
        )
        user_id = invitation.invited_user.id
        await client.groups.by_group_id(groups[row.groups[0]]).members.ref.post(
            ReferenceCreate(odata_id=f"{base_url}/directoryObjects/{user_id}")
        )
        sponsor = await client.users.by_user_id(row.sponsors[0]).get()
        await client.users.by_user_id(user_id).sponsors.ref.post(
            ReferenceCreate(odata_id=f"{base_url}/users/{sponsor.id}")
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3_000)
    parser.add_argument("--time-scale", type=float, default=0.2)
    parser.add_argument("--baseline-rows", type=int, default=40)
    args = parser.parse_args()
    tenant = ("--seed", "5", "--guests", "200", "--members", "50", "--time-scale", str(args.time_scale))
    with EmulatorProcess(*tenant) as em:
        base_url = em.base_url
        control = ControlClient(em.root_url)
        try:
            control.set_faults(seed=1, latency_ms=[150, 300])
            control.set_limits(enabled=True, time_scale=args.time_scale, sign_in_activity_limit=False)
            rows = make_rows(base_url, args.rows)
            with tempfile.TemporaryDirectory() as folder:
                elapsed, throttled = asyncio.run(run_guestctl(base_url, rows, args.time_scale, Path(folder) / "s.db"))
            writes = 3 * len(rows)
            window = WINDOW_SECONDS * args.time_scale
            budget_rate = WRITES_PER_WINDOW / window
            requests = 3 * len(rows)  # Graph evaluates each $batch item as one request
            fastest = (math.ceil(writes / WRITES_PER_WINDOW) - 1) * window
            control.set_limits(enabled=False)
            baseline_rows = make_rows(base_url, args.baseline_rows, offset=10 * args.rows)
            baseline = asyncio.run(run_sdk_loop(base_url, baseline_rows))
            baseline_full = baseline / len(baseline_rows) * len(rows)
        finally:
            control.close()
    print(
        f"guestctl: {len(rows)} rows, {writes} writes in {elapsed:.1f} s "
        f"(write budget {WRITES_PER_WINDOW} per {window:.0f} s = {budget_rate:.0f}/s, latency 150-300 ms)"
    )
    print(
        f"  achieved writes/s ÷ budget: {writes / elapsed / budget_rate:.2f}"
        + (f"   (fastest any client could finish: {fastest:.0f} s)" if fastest else "")
    )
    print(f"  429 responses: {throttled} of {requests} requests ({throttled / requests:.2%})")
    print(
        f"sequential msgraph-sdk loop: {baseline:.1f} s for {len(baseline_rows)} rows → "
        f"{baseline_full:.0f} s for {len(rows)} (extrapolated)"
    )
    print(f"  speed-up: {baseline_full / elapsed:.1f}x")


if __name__ == "__main__":
    main()
