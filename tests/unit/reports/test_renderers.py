"""The report's pure parts: CSV cells, the published schema, the SVG charts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shared.reports.csv_rows import safe_cell
from shared.reports.records import report_json_schema
from shared.reports.svg import bar_chart, line_chart

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ann Lee", "Ann Lee"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_evaluate_get_an_apostrophe(cell: str, written: str) -> None:
    assert safe_cell(cell) == written


def test_committed_report_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    assert committed == report_json_schema(), "run: python -m shared.reports.records > docs/report.schema.json"


def test_charts_parse_and_escape_their_text() -> None:
    line = line_chart("Guests <all>", ["2026-W47", "2026-W48"], {"A & B": [1, None], "C": [2, 3]})
    bar = bar_chart("Done", ["x<y"], [4])
    for svg in (line, bar):
        root = ET.fromstring(svg)
        assert root.tag == "svg"
        assert root.get("role") == "img"
    assert ET.fromstring(line).find("title").text == "Guests <all>"
    assert "A &amp; B" in line
