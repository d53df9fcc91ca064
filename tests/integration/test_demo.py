"""`guestctl demo` runs the lifecycle end to end and writes its files; its rows are the example file's."""

from __future__ import annotations

import json
from pathlib import Path

from shared.demo import DEMO_INVITATIONS, prepare_out, run_demo

ROOT = Path(__file__).resolve().parents[2]


def test_demo_rows_are_the_example_file() -> None:
    assert (ROOT / "examples" / "invitations.csv").read_text() == DEMO_INVITATIONS


async def test_demo_invites_then_flags_then_disables(tmp_path: Path) -> None:
    lines: list[str] = []
    written = await run_demo(prepare_out(tmp_path / "out"), lines.append)
    text = "\n".join(lines)
    assert "3 invitation emails sent" in text
    assert "2 guests redeemed: 2 notifications arrived" in text
    assert "the delta round recorded 2 redemptions" in text
    assert "1 reminder(s) sent" in text
    assert "plan: flag " in text
    assert "plan: disable " in text
    assert {p.name for p in written} >= {"invitations-results.json", "sweep-plan-3.json", "audit.jsonl"}
    results = json.loads((tmp_path / "out" / "invitations-results.json").read_text())
    assert [r["outcome"] for r in results].count("invited") == 3
    disables = json.loads((tmp_path / "out" / "sweep-results-4.json").read_text())
    assert disables
    assert all(r["action"] == "disable" and r["outcome"] == "done" for r in disables)
    audit = (tmp_path / "out" / "audit.jsonl").read_text().splitlines()
    assert sum('"guest.disable"' in line for line in audit) == len(disables)
