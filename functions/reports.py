"""The weekly cleanup report in Azure Functions (docs/reports.md#delivery).

timer  GUESTCTL_REPORT_SCHEDULE (app setting, NCRONTAB, UTC; set it to 0 0 7 * * 1, Mondays 07:00, an hour
       after the sweep: the policy's schedules.report default). The host resolves it when the app starts;
       without it the timer does not load, and GET /api/health says so.
       Builds last week's report from the store (plus one guest count), writes report.html, report.csv and
       report.json to the blob container `reports` under the run's date (blob output bindings on
       AzureWebJobsStorage: no storage SDK), and emails it when the policy sets reports.recipients.
"""

from __future__ import annotations

import logging

import azure.functions as func

from functions.pause import skip_timer

bp = func.Blueprint()
log = logging.getLogger("guestctl.functions.reports")

STORAGE = "AzureWebJobsStorage"
SCHEDULE = "%GUESTCTL_REPORT_SCHEDULE%"  # resolved by the host: no settings read at import (cold start)
FOLDER = "reports/{DateTime:yyyy-MM-dd}"  # the blob "folder" of one run (the host's DateTime, UTC)


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False)
@bp.blob_output(arg_name="html", path=f"{FOLDER}/report.html", connection=STORAGE)
@bp.blob_output(arg_name="csv", path=f"{FOLDER}/report.csv", connection=STORAGE)
@bp.blob_output(arg_name="data", path=f"{FOLDER}/report.json", connection=STORAGE)
async def weekly_report(
    timer: func.TimerRequest, html: func.Out[bytes], csv: func.Out[bytes], data: func.Out[bytes]
) -> None:
    if skip_timer("weekly_report"):
        return
    from shared.clock import utc_now
    from shared.reports.service import scheduled_report

    folder = FOLDER.replace("{DateTime:yyyy-MM-dd}", f"{utc_now():%Y-%m-%d}")
    files = await scheduled_report(folder)
    html.set(files["report.html"])
    csv.set(files["report.csv"])
    data.set(files["report.json"])
    log.info("weekly report written to blob %s/", folder)
