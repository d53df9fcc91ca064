"""Partner discovery in Azure Functions (docs/partners.md).

timer  daily at 05:00 UTC: discovers the partners again (read-only: guests by home tenant, what they use,
       cross-tenant settings, sign-ins) and keeps the summary in the store, where `guestctl partners
       discover` and reports find the latest one. Tenant lookups come from the store's 7-day cache, so a
       daily run costs Graph one lookup per new domain. It never changes cross-tenant settings.
"""

from __future__ import annotations

import logging

import azure.functions as func

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.partners")

DISCOVERY_SCHEDULE = "0 0 5 * * *"  # daily, before the working day in Europe; the data changes slowly


@bp.timer_trigger(arg_name="timer", schedule=DISCOVERY_SCHEDULE, run_on_startup=False)
async def partner_discovery(timer: func.TimerRequest) -> None:
    from shared.config import load_settings
    from shared.partners.service import discover

    found = await discover(load_settings())
    summary = found.to_json()
    verdicts = [f"{p['display_name']}: {p['recommendation']}" for p in summary["partners"] if p["tenant_id"]]
    log.info("partner discovery: %s guests, %s partners; %s", summary["guests"], len(verdicts), "; ".join(verdicts))
