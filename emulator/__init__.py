"""A Microsoft Graph v1.0 tenant emulator for guestctl: the Graph subset guestctl uses, over real HTTP.

Public API: `create_app`, `serve`, `Tenant`, `seed_tenant` (emulator.seed), `EmulatorServer`
(emulator.testing). It imports nothing from the project's `shared/` package on purpose.
"""

from __future__ import annotations

from emulator.app import create_app
from emulator.runner import serve
from emulator.seed import seed_tenant
from emulator.tenant import Tenant

__all__ = ["Tenant", "create_app", "seed_tenant", "serve"]
