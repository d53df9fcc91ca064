"""The pure rules load without the Graph client or the store (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("shared.graph", "shared.store", "httpx", "msgraph", "azure")


@pytest.mark.parametrize("module", ["shared.stale.rules", "shared.stale.plan", "shared.stale.records"])
def test_pure_modules_import_neither_graph_nor_store(module: str) -> None:
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
