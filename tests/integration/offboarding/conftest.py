"""The offboarding tests' tenant: empty, at `NOW` (tests/support/offboarding.py)."""

from __future__ import annotations

import pytest

from emulator.seed import empty_tenant
from emulator.testing import EmulatorServer
from tests.support.offboarding import NOW


@pytest.fixture
def tenant(emulator: EmulatorServer) -> EmulatorServer:
    emulator.reset(empty_tenant(NOW))
    return emulator
