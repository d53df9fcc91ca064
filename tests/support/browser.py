"""The weekly report in a real headless Chromium (scripts/browser-check, scripts/report-screenshot, and
tests/integration/reports/test_browser.py): no horizontal scroll at 600 and 1200 px, no network resource.

The report itself has no script; the check renders a copy with one small script appended that writes what
it measured (scroll width, window width, resources loaded) into the page, read back with --dump-dom. Chromium
runs with a proxy that goes nowhere, so a resource could not load even if the page asked for one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".ci" / "artifacts"
WIDTHS = (600, 1200)
PROBE = (
    "<script>document.body.setAttribute('data-probe', JSON.stringify({scroll: document.documentElement.scrollWidth,"
    " width: window.innerWidth, resources: performance.getEntriesByType('resource').map(e => e.name)}));</script>"
)
NO_NETWORK = ["--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--no-first-run"]


def chromium() -> str | None:
    return next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None
    )


def _run(binary: str, *args: str) -> str:
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *NO_NETWORK]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, check=True).stdout


@dataclass(frozen=True, slots=True)
class Rendered:
    width: int
    scroll_width: int
    resources: list[str]
    screenshot: Path


def render(html: Path, width: int, screenshot: Path) -> Rendered:
    """The report at `width` px: what the probe measured, and a screenshot of it (without the probe)."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium binary (scripts/install-browser installs it)")
    with tempfile.TemporaryDirectory() as folder:
        probed = Path(folder) / "probed.html"
        probed.write_text(html.read_text().replace("</body>", PROBE + "</body>", 1))
        dom = _run(binary, f"--window-size={width},2000", "--virtual-time-budget=3000", "--dump-dom", probed.as_uri())
    found = re.search(r'data-probe="([^"]*)"', dom)
    if found is None:
        raise RuntimeError("the probe did not run")
    measured = json.loads(found[1].replace("&quot;", '"').replace("&amp;", "&"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    _run(binary, f"--window-size={width},2400", f"--screenshot={screenshot}", html.as_uri())
    return Rendered(measured["width"], measured["scroll"], measured["resources"], screenshot)


async def sample_report(folder: Path) -> Path:
    """A report of a seeded emulated tenant with 26 weeks of history (snapshots, then two real sweeps)."""
    from emulator.seed import seed_tenant
    from emulator.testing import EmulatorServer
    from shared.reports.fetch import keep_snapshot
    from shared.reports.records import Snapshot
    from shared.reports.service import make_report
    from shared.reports.service import render as render_files
    from shared.reports.weeks import parse_week
    from shared.stale import apply_plan, exemptions_now, plan_sweep
    from shared.stale.plans import save_plan
    from shared.store import open_store
    from tests.support.graph import emulator_graph
    from tests.support.stale import POLICY

    week = parse_week("2026-W48")
    sweeps = (datetime(2026, 11, 9, 6, tzinfo=UTC), datetime(2026, 11, 24, 6, tzinfo=UTC))
    with EmulatorServer(seed_tenant(14, guests=400, members=20, now=sweeps[0])) as emulator:
        graph = emulator_graph(emulator.base_url)
        async with open_store(str(folder / "state.db")) as store:
            for back in range(25, 0, -1):
                w = week.shifted(-back)
                trend = 25 - back
                await keep_snapshot(
                    store,
                    Snapshot(
                        week=str(w),
                        taken_at=w.end,
                        guests=380 + trend,
                        active=300 + trend * 2,
                        stale=60 - trend,
                        never_redeemed=20 - trend // 2,
                        disabled=trend % 4,
                        deleted=trend % 3,
                        restored=trend % 2,
                        invited=5 + trend % 6,
                        redeemed=3 + trend % 5,
                    ),
                )
            for index, at in enumerate(sweeps):
                emulator.control.set_clock(at)
                plan = await plan_sweep(graph, store, POLICY, now=at, scan_id=f"s{index}", tenant_id=None)
                await save_plan(store, plan)
                await apply_plan(
                    plan,
                    graph,
                    store,
                    POLICY,
                    await exemptions_now(graph, POLICY),
                    actor="sample",
                    clock=lambda at=at: at,
                )
            now = week.end + timedelta(hours=7)
            emulator.control.set_clock(now)
            report = await make_report(store, graph, POLICY, week, now)
        await graph.close()
    html = folder / "report.html"
    html.write_bytes(render_files(report)["report.html"])
    return html


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/browser-check")
    parser.add_argument("report", nargs="?", type=Path)
    parser.add_argument("--screenshot", type=Path, help="also keep the 600 px screenshot here (docs/img/report.png)")
    args = parser.parse_args()
    if chromium() is None:
        print("error: no chromium binary; run scripts/install-browser (needs root)", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory() as folder:
        html = args.report or asyncio.run(sample_report(Path(folder)))
        failed = False
        for width in WIDTHS:
            shown = render(html, width, ARTIFACTS / f"report-{width}.png")
            ok = shown.scroll_width <= shown.width and not shown.resources
            failed |= not ok
            print(
                f"{width} px: scroll width {shown.scroll_width} (window {shown.width}), "
                f"network resources {len(shown.resources)}, screenshot {shown.screenshot} {'ok' if ok else 'FAILED'}"
            )
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ARTIFACTS / "report-600.png", args.screenshot)
            print(f"kept {args.screenshot}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
