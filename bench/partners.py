"""Partner discovery at scale: `--guests` guests in `--domains` mail domains, measured in one run.

The emulator runs in this process (its tenant is built here: 4 of 5 domains belong to a partner tenant,
the rest have none) with limits off. Printed:

- guestctl's `discover_with`: time, peak RSS (ru_maxrss of this process), Graph requests in total and
  tenant lookups per domain (goal ≤ 1), read from the emulator's request log; then a second run, which
  finds every domain in the store's cache;
- a naive per-guest lookup (`findTenantInformationByDomainName` for each guest's domain), timed on a
  sample of `--sample` guests and extrapolated: the ratio of its requests and time to guestctl's lookups.

With `--sign-ins N` (e.g. 1000000) it measures verification instead: an emulator in a child process holds
N sign-ins of 20 partners' people over the last 29 days (direct connect and guest, some failing), and
guestctl's `read_sign_ins` folds them page by page (limits off): entries per second, and this process's
resident memory after 10%, 50% and 100% of the pages (flat: the fold keeps tallies, not entries).

Run: python bench/partners.py [--guests 100000] [--domains 2000] [--sample 1000]
     python bench/partners.py --sign-ins 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emulator.seed import make_user, seed_tenant  # noqa: E402
from emulator.tenant import ExternalTenant, Tenant  # noqa: E402
from emulator.testing import EmulatorServer  # noqa: E402
from shared.errors import NotFoundError  # noqa: E402
from shared.graph import Budget, Graph, GraphOptions  # noqa: E402
from shared.partners.fetch import TENANT_BY_DOMAIN  # noqa: E402
from shared.partners.service import discover_with, lookup_tenants  # noqa: E402
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
                started = time.perf_counter()
                found = await discover_with(graph, store)
                took = time.perf_counter() - started
                print(
                    f"guestctl discover, {attempt}: {took:.1f} s, {found.lookups:,} tenant lookups and "
                    f"{found.lookups_cached:,} from the cache for {domains:,} domains, {len(found.partners):,} "
                    f"partners, peak RSS {peak_mb():.0f} MB"
                )
                if attempt == "first run":
                    ours = took, found.lookups
        # The same lookups counted by the emulator (its request log holds the last 20,000 requests, so the
        # lookup phase is counted on its own, against an empty cache).
        async with open_store(str(Path(folder) / "fresh.db")) as fresh:
            em.control.clear_requests()
            all_domains = [f"partner{d}.example" for d in range(domains)]
            await lookup_tenants(graph, fresh, all_domains, datetime.now(UTC))
            counted = sum("findTenantInformationByDomainName" in r["path"] for r in requests(em))
            per_domain = counted / domains
            print(f"  emulator log: {counted:,} lookups for {domains:,} domains ({per_domain:.2f} per domain)")
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


PARTNERS, PEOPLE = 20, 500


def serve_sign_ins(count: int) -> None:
    """The child process: an emulated tenant whose log holds `count` cross-tenant sign-ins; prints its URL."""
    from datetime import timedelta

    from emulator.activity import record_sign_in

    tenant = seed_tenant(6, guests=0, members=20, sign_in_log_limit=count)
    homes = []
    for p in range(PARTNERS):
        users = {
            str(uuid.UUID(int=p * 10_000 + u + 1)): {
                "displayName": f"Person {u}",
                "userPrincipalName": f"person{u}@partner{p}.example",
                "mail": f"person{u}@partner{p}.example",
            }
            for u in range(PEOPLE)
        }
        domain = f"partner{p}.example"
        external = ExternalTenant(str(uuid.UUID(int=10**9 + p)), f"Partner {p}", domain, (domain,), True, users)
        tenant.add_external_tenant(external)
        homes.append((external.tenant_id, list(users)))
    now = tenant.now()
    for i in range(count):
        home, people = homes[i % PARTNERS]
        record_sign_in(
            tenant,
            user_id=people[(i // PARTNERS) % PEOPLE],
            home_tenant_id=home,
            at=now - timedelta(minutes=((count - i) * 41_760 // count) + 1),  # oldest first: appended in order
            cross_tenant_access_type="b2bDirectConnect" if i % 4 else "b2bCollaboration",
            success=i % 50 != 0,
            error_code=None if i % 50 else 90071,
        )
    with EmulatorServer(tenant) as em:
        print(em.base_url, flush=True)
        time.sleep(3600)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def verify_bench(base_url: str, count: int) -> None:
    from datetime import timedelta

    from shared.partners.verify import SIGN_INS_PAGE
    from shared.partners.verify_rules import Aggregation

    budget = Budget(resource_units=10**9, writes=10**9, reports=10**9, sign_in_activity=10**9)
    graph = Graph(GraphOptions(base_url=base_url, auth="emulator", budget=budget))
    aggregation = Aggregation()
    since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"$filter": f"createdDateTime ge {since}", "$top": SIGN_INS_PAGE}
    pages = math.ceil(count / SIGN_INS_PAGE)
    marks = {max(1, pages // 10): "10%", max(1, pages // 2): "50%", pages: "100%"}
    seen, rss = 0, []
    started = time.perf_counter()
    async for page in graph.pages("/auditLogs/signIns", params=params):
        for entry in page.items:
            aggregation.add(entry)
        seen += 1
        if seen in marks:
            rss.append(f"{marks[seen]} {rss_mb():.0f} MB")
    took = time.perf_counter() - started
    await graph.close()
    rate = aggregation.entries / took
    print(f"verification: {aggregation.entries:,} sign-ins in {seen:,} pages, {took:.1f} s = {rate:,.0f}/s")
    print(f"  resident memory after {', '.join(rss)} (flat: tallies, not entries)")
    print(f"  {len(aggregation.people):,} people, {len(aggregation.days):,} partner-days kept")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=2_000)
    parser.add_argument("--sample", type=int, default=1_000)
    parser.add_argument("--sign-ins", type=int, default=0, help="measure verification over this many sign-ins")
    parser.add_argument("--serve-sign-ins", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sign_ins:
        serve_sign_ins(args.serve_sign_ins)
        return
    if args.sign_ins:
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve-sign-ins", str(args.sign_ins)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            base_url = child.stdout.readline().strip()
            asyncio.run(verify_bench(base_url, args.sign_ins))
        finally:
            child.kill()
        return
    started = time.perf_counter()
    tenant = build_tenant(args.guests, args.domains)
    print(f"tenant built: {args.guests:,} guests in {args.domains:,} domains ({time.perf_counter() - started:.0f} s)")
    with EmulatorServer(tenant) as em:
        asyncio.run(run(em, args.guests, args.domains, args.sample))


if __name__ == "__main__":
    main()
