"""Settings for the Functions app's tests (the app itself is indexed once per session in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.testing import EmulatorServer
from tests.support.functions import point_at_emulator


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: EmulatorServer) -> Path:
    """The app's settings pointed at the emulator, state in tmp_path, no policy file."""
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_POLICY")
    return tmp_path
