"""The engine stays readable: no function in shared/ or functions/ is longer than a screen (80 lines), and
trigger adapters read no settings of their own."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for folder in ("shared", "functions"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_LINES:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == [], "split these into smaller functions: " + "; ".join(long)


def test_trigger_adapters_read_settings_only_through_shared() -> None:
    """functions/ parses, calls a service and shapes the answer: settings come from shared.config."""
    readers = []
    for path in sorted((ROOT / "functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == [], "read settings through shared.config (or shared.redaction): " + "; ".join(readers)
