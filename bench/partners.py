"""Partner discovery at scale: `--guests` guests in `--domains` mail domains, measured in one run.

The emulator runs in this process (its tenant is built here: 4 of 5 domains belong to a partner tenant,
the rest have none) with limits off. Printed:

- guestctl's `discover_with`: time, peak RSS (ru_maxrss of this process), Graph requests in total and
  tenant lookups per domain (goal ≤ 1), read from the emulator's request log; then a second run, which
  finds every domain in the store's cache;
- a naive per-guest lookup (`findTenantInformationByDomainName` for each guest's domain), timed on a
  sample of `--sample` guests and extrapolated: the ratio of its requests and time to guestctl's lookups.

Run: python bench/partners.py [--guests 100000] [--domains 2000] [--sample 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.seed import make_user, seed_tenant  # noqa: E402
from emulator.tenant import ExternalTenant, Tenant  # noqa: E402
from emulator.testing import EmulatorServer  # noqa: E402
from shared.errors import NotFoundError  # noqa: E402
from shared.graph import Budget, Graph, GraphOptions  # noqa: E402
from shared.partners.fetch import TENANT_BY_DOMAIN  # noqa: E402
from shared.partners.service import discover_with  # noqa: E402
from shared.store import open_store  # noqa: E402


def build_tenant(guests: int, domains: int) -> Tenant:
    tenant = seed_tenant(5, guests=0, members=50)
    for d in range(domains):
        if d % 5:
            domain = f"partner{d}.example"
            tenant.add_external_tenant(
                ExternalTenant(str(uuid.UUID(int=d + 1)), f"Partner {d}", domain, (domain, f"p{d}.onmicrosoft.com"))
            )
    for i in range(guests):
        make_user(tenant, userType="Guest", mail=f"guest{i}@partner{i % domains}.example")
    return tenant


def requests(em: EmulatorServer) -> list[dict]:
    return em.control.requests()


async def run(em: EmulatorServer, guests: int, domains: int, sample: int) -> None:
    budget = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)
    graph = Graph(GraphOptions(base_url=em.base_url, auth="emulator", budget=budget, max_concurrency=16))
    with tempfile.TemporaryDirectory() as folder:
        async with open_store(str(Path(folder) / "state.db")) as store:
            for attempt in ("first run", "second run (cache)"):
                em.control.clear_requests()
                started = time.perf_counter()
                found = await discover_with(graph, store)
                took = time.perf_counter() - started
                log = requests(em)
                lookups = sum("findTenantInformationByDomainName" in r["path"] for r in log)
                print(
                    f"guestctl discover, {attempt}: {took:.1f} s, {len(log):,} Graph requests, "
                    f"{lookups:,} tenant lookups for {domains:,} domains ({lookups / domains:.2f} per domain), "
                    f"{len(found.partners):,} partners, peak RSS {peak_mb():.0f} MB"
                )
                if attempt == "first run":
                    ours = took, lookups
    em.control.clear_requests()
    started = time.perf_counter()
    for i in range(sample):
        domain = f"partner{i % domains}.example"
        with contextlib.suppress(NotFoundError):  # a domain without a tenant: 404, as for guestctl
            await graph.request("GET", TENANT_BY_DOMAIN.format(domain=domain))
    naive = (time.perf_counter() - started) / sample * guests
    await graph.close()
    sampled = naive * sample / guests
    print(f"naive per-guest lookup: {sample:,} guests in {sampled:.1f} s → {naive:.0f} s for {guests:,}")
    print(f"  requests: {guests:,} against guestctl's {ours[1]:,} ({guests / max(ours[1], 1):.0f}x fewer)")
    print(f"  lookup time alone would exceed guestctl's whole discovery {naive / ours[0]:.1f}x")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=2_000)
    parser.add_argument("--sample", type=int, default=1_000)
    args = parser.parse_args()
    started = time.perf_counter()
    tenant = build_tenant(args.guests, args.domains)
    print(f"tenant built: {args.guests:,} guests in {args.domains:,} domains ({time.perf_counter() - started:.0f} s)")
    with EmulatorServer(tenant) as em:
        asyncio.run(run(em, args.guests, args.domains, args.sample))


if __name__ == "__main__":
    main()
