"""The table scripts/reliability prints: rows summed per flow, a total line."""

from tests.reliability.figures import Figures, table


def test_rows_sum_per_flow_and_total() -> None:
    figures = Figures()
    figures.add("sweep", chaos_faults=3, kill_points=2)
    figures.add("sweep", fuzz_examples=10)
    figures.add("invitations", chaos_faults=1)
    text = table({"rows": {k: vars(v) for k, v in sorted(figures.rows.items())}})
    lines = text.splitlines()
    assert lines[2] == "| invitations | 1 | 0 | 0 | 0 |"
    assert lines[3] == "| sweep | 3 | 2 | 10 | 0 |"
    assert lines[4] == "| **total** | **4** | **2** | **10** | **0** |"
