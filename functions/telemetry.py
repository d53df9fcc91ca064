"""Run ids as log attributes: with host.json's OpenTelemetry mode the Python worker exports each log record's
extra attributes as OpenTelemetry log attributes, which Application Insights keeps as custom dimensions
(`traces.customDimensions`, `AppTraces.Properties`). docs/operations.md's run query filters on them, so a run
is found without parsing messages. Standard library only: imported with function_app (cold start)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The ids that tie a run's invocations together (docs/operations.md, "Find a run").
RUN_ID_KEYS = ("run_id", "plan_id", "scan_id", "batch_id", "event_id")


def run_ids(found: Mapping[str, Any] | None = None, **named: Any) -> dict[str, str]:
    """`extra=` for a log call: the run ids in `found` (a summary's JSON) and `named`, as text; no others."""
    values = {**(found or {}), **named}
    return {key: str(values[key]) for key in RUN_ID_KEYS if values.get(key)}
