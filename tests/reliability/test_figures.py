"""The table scripts/reliability prints: rows summed per flow and across pytest-xdist workers' files."""

import json
from pathlib import Path

from tests.reliability.figures import merged, table


def test_rows_sum_per_flow_and_across_files(tmp_path: Path) -> None:
    row = {"chaos_faults": 0, "kill_points": 0, "fuzz_examples": 0, "violations": 0}
    first = {"profile": "short", "rows": {"sweep": {**row, "chaos_faults": 3, "kill_points": 2}}}
    second = {
        "profile": "short",
        "rows": {"sweep": {**row, "fuzz_examples": 10}, "invitations": {**row, "chaos_faults": 1}},
    }
    paths = [tmp_path / "out.gw0", tmp_path / "out.gw1"]
    for path, data in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(data))
    lines = table(merged(paths)).splitlines()
    assert lines[2:] == [
        "| invitations | 1 | 0 | 0 | 0 |",
        "| sweep | 3 | 2 | 10 | 0 |",
        "| **total** | **4** | **2** | **10** | **0** |",
    ]
