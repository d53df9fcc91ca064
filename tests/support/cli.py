"""`guestctl` as a child process, the way a person or a scheduler starts it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from emulator.testing import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
GUESTCTL = [sys.executable, "-m", "shared.cli"]


def guestctl_env(settings: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any GUESTCTL_* setting, plus `settings` (wide output, repo importable)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUESTCTL_")}
    return {**clean, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(settings or {})}


def emulator_settings(emulator: EmulatorServer, state_folder: Path, policy: Path) -> dict[str, str]:
    """Settings that point guestctl at the emulator, with its state in `state_folder`."""
    return {
        "GUESTCTL_GRAPH_URL": emulator.base_url,
        "GUESTCTL_AUTH": "emulator",
        "GUESTCTL_STATE": str(state_folder / "state.db"),
        "GUESTCTL_POLICY": str(policy),
    }
