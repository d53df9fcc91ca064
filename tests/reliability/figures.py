"""The reliability suite's figures: one row per flow, summed over the tests that exercised it.

Tests call `figures.add(flow, ...)` and then assert their violations are zero, so a failing invariant both
fails the test and shows in the table. The session writes `GUESTCTL_RELIABILITY_OUT` (JSON) and
`python -m tests.reliability.figures FILE` prints it as the Markdown table the README shows.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Profile = Literal["short", "full"]
COLUMNS = ("chaos_faults", "kill_points", "fuzz_examples", "violations")
HEADINGS = ("Flow", "Chaos faults injected", "Kill points tried", "Fuzz examples", "Invariant violations")


def profile() -> Profile:
    """`short` (CI, every run) or `full` (scripts/reliability --full): sizes, examples and kill points."""
    value = os.environ.get("GUESTCTL_RELIABILITY_PROFILE", "short")
    return "full" if value == "full" else "short"


@dataclass
class Row:
    chaos_faults: int = 0
    kill_points: int = 0
    fuzz_examples: int = 0
    violations: int = 0


@dataclass
class Figures:
    rows: dict[str, Row] = field(default_factory=dict)

    def add(
        self, flow: str, *, chaos_faults: int = 0, kill_points: int = 0, fuzz_examples: int = 0, violations: int = 0
    ) -> None:
        row = self.rows.setdefault(flow, Row())
        row.chaos_faults += chaos_faults
        row.kill_points += kill_points
        row.fuzz_examples += fuzz_examples
        row.violations += violations

    def write(self) -> None:
        """Under pytest-xdist each worker writes its own file (`OUT.gw0`, …); `merged` sums them."""
        target = os.environ.get("GUESTCTL_RELIABILITY_OUT")
        if target and self.rows:
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            data = {"profile": profile(), "rows": {flow: asdict(row) for flow, row in sorted(self.rows.items())}}
            path = Path(f"{target}.{worker}" if worker else target)
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def merged(paths: list[Path]) -> dict:
    """One table's data from the files the session (or each pytest-xdist worker) wrote."""
    total = Figures()
    profiles = set()
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        profiles.add(data["profile"])
        for flow, row in data["rows"].items():
            total.add(flow, **row)
    return {"profile": "/".join(sorted(profiles)), "rows": {f: asdict(r) for f, r in sorted(total.rows.items())}}


def table(data: dict) -> str:
    """The Markdown table: one line per flow and a total line."""
    rows = data["rows"]
    lines = ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(HEADINGS)]
    totals = dict.fromkeys(COLUMNS, 0)
    for flow, row in rows.items():
        lines.append(f"| {flow} | " + " | ".join(f"{row[c]:,}" for c in COLUMNS) + " |")
        for c in COLUMNS:
            totals[c] += row[c]
    lines.append("| **total** | " + " | ".join(f"**{totals[c]:,}**" for c in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.reliability.figures FILE... (exit 1 when no file was written)
    found = [Path(p) for p in sys.argv[1:] if Path(p).is_file()]
    if not found:
        sys.exit("no figures were written (did any reliability test run?)")
    print(table(merged(found)))
