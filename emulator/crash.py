"""Test machinery, not Graph: SIGKILL a client process when its n-th Graph request arrives (crash tests).

Armed with `EmulatorServer.arm_crash(pid, request=n, moment=...)`; requests are counted from arming in the
order the request log records them (a `$batch` first, then each of its items). `before`: the process is
killed and the request is not carried out (the write never happened); `after`: the request is carried out,
then the process is killed before the reply is sent (the write happened, the client never heard).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass
from typing import Literal

Moment = Literal["before", "after"]


@dataclass
class CrashTrap:
    pid: int | None = None
    request: int = 0
    moment: Moment = "before"
    seen: int = 0
    fired: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def arm(self, pid: int, request: int, moment: Moment) -> None:
        if request < 1 or moment not in ("before", "after"):
            raise ValueError("crash trap: request counts from 1, moment is 'before' or 'after'")
        with self._lock:
            self.pid, self.request, self.moment, self.seen, self.fired = pid, request, moment, 0, False

    def disarm(self) -> None:
        with self._lock:
            self.pid = None

    def arrived(self) -> Moment | None:
        """Count one arriving request; the moment to kill at if it is the armed one."""
        with self._lock:
            if self.pid is None or self.fired:
                return None
            self.seen += 1
            return self.moment if self.seen == self.request else None

    def fire(self) -> None:
        with self._lock:
            pid, self.fired = self.pid, True
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it ended first
                os.kill(pid, signal.SIGKILL)
