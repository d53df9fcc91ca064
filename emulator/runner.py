"""serve(): run the emulator in the foreground (the `guestctl emulator` command and `python -m emulator`)."""

from __future__ import annotations

import sys

import uvicorn

from emulator.app import create_app
from emulator.seed import seed_tenant


def serve(
    port: int = 8765,
    seed: str | int = "demo",
    guests: int | None = None,
    members: int | None = None,
    host: str = "127.0.0.1",
    *,
    limits: bool = True,
    time_scale: float = 1.0,
) -> None:
    """Serve a seeded tenant until interrupted; prints the Graph base URL first. Limits are on by default."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the emulator listens on loopback only")
    if isinstance(seed, str) and seed != "demo" and seed.lstrip("-").isdigit():
        seed = int(seed)
    tenant = seed_tenant(seed, guests, members)
    app = create_app(tenant, limits={"enabled": limits, "time_scale": time_scale})
    print(f"http://{host}:{port}/v1.0", flush=True)
    print(
        f"tenant {tenant.id} ({len(tenant.users)} users); control API at http://{host}:{port}/_emulator/",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http="h11",
        date_header=False,
        server_header=False,
    )
