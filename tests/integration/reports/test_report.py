"""The weekly report over an emulated tenant with 26 weeks of history on a virtual clock: 24 weeks of kept
snapshots, then two real weeks (a sweep flags, two weeks later a sweep disables), each week's report writing
its snapshot. The numbers in report.html, report.csv and report.json agree with each other and with counts
taken from the emulator's tenant directly."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from shared.reports.fetch import keep_snapshot, read_snapshots
from shared.reports.html_page import SHOWN_ROWS
from shared.reports.records import Snapshot
from shared.reports.service import make_report, render
from shared.reports.weeks import Week, parse_week
from shared.stale import apply_plan, exemptions_now, plan_sweep
from shared.store import Store
from tests.support.azurite import sqlite_only
from tests.support.stale import POLICY

WEEK = parse_week("2026-W48")  # Monday 2026-11-23 to Monday 2026-11-30
FIRST_SWEEP = datetime(2026, 11, 9, 6, 0, tzinfo=UTC)  # W46: flags
SECOND_SWEEP = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # W48: disables what W46 flagged (15 days later)
REPORT_AT = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # Monday of W49, 07:00: the report for W48
TRICKY_NAMES = ('=HYPERLINK("http://example.test","x")', "+1", "@x", "-2")


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(seed_tenant(14, guests=150, members=10, now=FIRST_SWEEP))
    long_ago = (FIRST_SWEEP - timedelta(days=400)).isoformat()
    for index, name in enumerate(TRICKY_NAMES):
        emulator.control.create_user(
            userType="Guest",
            displayName=name,
            mail=f"tricky{index}@fabrikam.com",
            createdDateTime=long_ago,
            signInActivity={"lastSuccessfulSignInDateTime": long_ago},
        )
    return emulator


async def sweep(emulator: EmulatorServer, graph: Graph, store: Store, at: datetime, scan_id: str) -> None:
    emulator.control.set_clock(at)
    plan = await plan_sweep(graph, store, POLICY, now=at, scan_id=scan_id, tenant_id=None)
    from shared.stale.plans import save_plan

    await save_plan(store, plan)
    await apply_plan(plan, graph, store, POLICY, await exemptions_now(graph, POLICY), actor="test", clock=lambda: at)


def numbers_in_html(html: str) -> dict[str, str]:
    """Headline label → this week's value, read back from the HTML table."""
    rows = re.findall(r'<th scope="row"[^>]*>([^<]*)</th><td[^>]*>([^<]*)</td>', html)
    return dict(rows)


@sqlite_only  # two sweeps and three reports: the store calls are the contract-tested ones (both backends)
async def test_html_csv_and_json_agree_with_each_other_and_the_tenant(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    for back in range(25, 1, -1):  # 24 weeks of history kept by earlier reports
        week = WEEK.shifted(-back)
        await keep_snapshot(store, Snapshot(week=str(week), taken_at=week.end, guests=140 + back, disabled=back % 3))
    already_disabled = {u.id for u in tenant.tenant.users.values() if u.userType == "Guest" and not u.accountEnabled}

    await sweep(tenant, graph, store, FIRST_SWEEP, "w46")
    tenant.control.set_clock(WEEK.start + timedelta(hours=7))
    await make_report(store, graph, POLICY, WEEK.shifted(-1), WEEK.start + timedelta(hours=7))  # W47's report
    await sweep(tenant, graph, store, SECOND_SWEEP, "w48")
    tenant.control.set_clock(REPORT_AT)
    report = await make_report(store, graph, POLICY, WEEK, REPORT_AT)
    files = render(report)

    # independent counts, from the emulator's tenant state
    users = tenant.tenant.users.values()
    guests = sum(1 for u in users if u.userType == "Guest")
    disabled = {u.id for u in users if u.userType == "Guest" and not u.accountEnabled} - already_disabled
    assert disabled, "the second sweep disabled the guests the first one flagged"

    body = json.loads(files["report.json"])
    headline = {h["key"]: h for h in body["headline"]}
    assert headline["guests"]["value"] == guests
    assert headline["disabled"]["value"] == len(disabled)
    assert headline["disabled"]["previous"] == 0  # W47's snapshot: nothing disabled that week
    assert headline["disabled"]["change"] == len(disabled)
    assert [s["week"] for s in body["trend"]] == [str(WEEK.shifted(-n)) for n in range(25, -1, -1)]

    rows = list(csv.DictReader(io.StringIO(files["report.csv"].decode("utf-8-sig"))))
    assert {r["guest_id"] for r in rows if r["action"] == "disabled" and r["status"] == "done"} == disabled
    assert body["done"]["disabled"] == len(disabled)

    shown = numbers_in_html(files["report.html"].decode())
    assert shown["Guests"] == f"{guests:,}"
    assert shown["Disabled"] == f"{len(disabled):,}"

    # the snapshot the report wrote is what next week's report compares with
    kept = await read_snapshots(store, WEEK, WEEK)
    assert kept[0].disabled == len(disabled)
    assert kept[0].guests == guests


@sqlite_only
async def test_csv_escapes_formulas_and_the_html_has_no_script_or_network(
    tenant: EmulatorServer, graph: Graph, store: Store
) -> None:
    await sweep(tenant, graph, store, FIRST_SWEEP, "w46")
    await sweep(tenant, graph, store, SECOND_SWEEP, "w48")
    files = render(await make_report(store, graph, POLICY, WEEK, REPORT_AT))

    raw = files["report.csv"]
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    names = {r["name"] for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))}
    for name in TRICKY_NAMES:
        escaped = [n for n in names if n.startswith("'" + name)]
        assert escaped, f"{name!r} must appear with a leading apostrophe"
    assert not [n for n in names if n[:1] in "=+-@"]
    assert '""http://example.test""' in raw.decode("utf-8-sig"), "RFC 4180: quotes inside a cell are doubled"

    html = files["report.html"].decode()
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "url(" not in html
    assert "@import" not in html
    shown = [g["name"] for g in json.loads(files["report.json"])["guests"][:SHOWN_ROWS]]
    for name in [n for n in TRICKY_NAMES if n in shown]:  # which are shown depends on the seeded guests' ids
        assert escape(name) in html, f"{name!r} is text in the email, escaped"
    assert '"http://example.test"' not in html
    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(charts) == 3
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.find("title") is not None
        assert root.find("desc") is not None
        assert root.get("role") == "img"
        assert root.get("aria-label")
    assert re.findall(r"<th scope=\"(col|row)\"", html)


def test_a_week_outside_the_calendar_is_one_line_exit_2() -> None:
    from shared.errors import InputError

    with pytest.raises(InputError, match=r"--week: '2026-W54' is not an ISO week"):
        parse_week("2026-W54")
    assert parse_week("2026-W53") == Week(2026, 53)


async def test_send_without_recipients_is_refused_before_anything_is_kept_or_written(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """`guestctl report --send` with no reports.recipients: exit 2 and nothing changed (it kept the week's
    snapshot and wrote the files first)."""
    from shared.config import load_settings
    from shared.errors import ConfigError
    from shared.reports.service import weekly_report

    state = tmp_path / "state.db"
    settings = load_settings(graph_url=emulator.base_url, auth="emulator", state=str(state), policy=None)
    with pytest.raises(ConfigError, match=r"sending the report needs reports\.recipients"):
        await weekly_report(settings, out=tmp_path / "out", send=True)
    assert not (tmp_path / "out").exists()
    assert not state.exists()
