"""The Functions app indexed once per session (a second get_functions() raises, docs/architecture.md#library-facts)."""

from __future__ import annotations

from pathlib import Path

import azure.functions as func
import pytest

from emulator.testing import EmulatorServer
from tests.support.functions import point_at_emulator


@pytest.fixture(scope="session")
def functions() -> dict[str, func.FunctionBuilder]:
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, emulator: EmulatorServer) -> Path:
    """The app's settings pointed at the emulator, state in tmp_path, no policy file."""
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_POLICY")
    return tmp_path
