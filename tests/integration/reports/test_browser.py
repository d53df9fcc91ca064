"""The report in a real headless Chromium at 600 and 1200 px: no horizontal scroll, no network resource,
the screenshots kept in .ci/artifacts/ (scripts/install-browser installs Chromium; without it: skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import ARTIFACTS, WIDTHS, chromium, render, sample_report

pytestmark = pytest.mark.skipif(chromium() is None, reason="no chromium binary: run scripts/install-browser (root)")


@pytest.mark.parametrize("width", WIDTHS)
async def test_report_fits_the_width_and_loads_nothing(width: int, tmp_path: Path) -> None:
    html = await sample_report(tmp_path)
    shown = render(html, width, ARTIFACTS / f"report-{width}.png")
    assert shown.width == width
    assert shown.scroll_width <= width, "the page scrolls sideways"
    assert shown.resources == []
    assert shown.screenshot.stat().st_size > 10_000
