"""Everything one running emulator holds: the tenant, limits, faults, logs and the notifier."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

from emulator.crash import CrashTrap
from emulator.limits import FaultInjector, Limiter, LimitSettings

if TYPE_CHECKING:
    from emulator.gateway import Gateway
    from emulator.notifications import Notifier
    from emulator.tenant import Tenant

REQUEST_LOG_LIMIT = 20_000  # entries hold headers and bodies; keep a long-running demo server small


class EmulatorState:
    def __init__(self, tenant: Tenant, *, limits: LimitSettings | None = None, log_requests: bool = True) -> None:
        self.tenant = tenant
        self.limiter = Limiter(limits)
        self.faults = FaultInjector()
        self.crash = CrashTrap()  # test machinery: kill a client at its n-th request (emulator/crash.py)
        self.log_requests = log_requests
        self.request_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self.lock = threading.RLock()
        self.notifier: Notifier | None = None
        self.gateway: Gateway | None = None
        self.count_cache: dict[tuple[str, ...], tuple[int, int]] = {}  # $count per (query, version)

    def replace_tenant(self, tenant: Tenant) -> None:
        with self.lock:
            old = self.tenant
            self.tenant = tenant
            self.count_cache.clear()
            self.limiter.reset()
            if self.notifier is not None:
                self.notifier.attach(tenant, previous=old)
