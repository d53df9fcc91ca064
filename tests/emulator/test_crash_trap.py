"""The crash trap (test machinery): SIGKILL a process at its n-th Graph request, before or after it ran."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from emulator.testing import EmulatorServer


@pytest.mark.parametrize(("moment", "disabled"), [("before", False), ("after", True)])
def test_the_armed_request_kills_the_process_before_or_after_it_ran(
    emulator: EmulatorServer, graph_http: httpx.Client, moment: str, disabled: bool
) -> None:
    guest = next(u for u in emulator.tenant.users.values() if u.userType == "Guest" and u.accountEnabled)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    emulator.arm_crash(sleeper.pid, request=2, moment=moment)  # type: ignore[arg-type]
    assert graph_http.get(f"/users/{guest.id}").status_code == 200
    assert sleeper.poll() is None
    assert not emulator.crash_fired

    graph_http.patch(f"/users/{guest.id}", json={"accountEnabled": False})

    assert sleeper.wait(timeout=10) == -9
    assert emulator.crash_fired
    assert emulator.tenant.users[guest.id].accountEnabled is not disabled
    graph_http.get(f"/users/{guest.id}")  # fires once
