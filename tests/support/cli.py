"""`guestctl` as a child process, the way a person or a scheduler starts it."""

from __future__ import annotations

import os
import socket
import subprocess
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


def run_guestctl(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run guestctl to the end with `env` (see guestctl_env) and capture its output."""
    return subprocess.run(
        [*GUESTCTL, *args], cwd=cwd, env=guestctl_env(env), capture_output=True, text=True, timeout=timeout
    )


def start_guestctl(emulator: EmulatorServer, folder: Path, *args: str) -> subprocess.Popen[str]:
    """Start guestctl against the emulator, in `folder`, with its state and `policy.yaml` there."""
    return subprocess.Popen(
        [*GUESTCTL, *args],
        cwd=folder,
        env=guestctl_env(emulator_settings(emulator, folder, folder / "policy.yaml")),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released): free to listen on, or to fail to reach."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
