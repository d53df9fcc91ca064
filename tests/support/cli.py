"""`guestctl` as a child process, the way a person or a scheduler starts it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def kill_when(emulator: EmulatorServer, process: subprocess.Popen[Any], path: str, count: int) -> bool:
    """SIGKILL the process as soon as the emulator has received `count` POSTs to `path`, while the last
    one is still being answered. False if the process ended first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(emulator.control.requests(path=path, method="POST")) >= count:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"no {count} POSTs to {path} within 60 s")
