"""The reliability suite (docs/reliability.md): chaos, crash-and-resume, fuzzed inputs, secrets and routes.

Not part of the default `pytest` run (tests/conftest.py skips this folder); `scripts/reliability` runs it
with a profile (`short` in CI, `full` for the README's figures) and prints the table from `figures`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.figures import Figures, profile

__all__ = ["figures", "profile"]


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """Each test adds what it did for a flow (faults injected, kill points tried, fuzz examples, violations);
    the session writes them where scripts/reliability reads them."""
    collected = Figures()
    yield collected
    collected.write()
