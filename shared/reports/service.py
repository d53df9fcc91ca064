"""What the CLI and the Functions timer call: build a week's report (and keep its snapshot), render the
three files, and email it.

The email goes out with Graph's `sendMail` (HTML body, report.csv attached) from
`invitations.sender_mailbox` to `reports.recipients`. Graph refuses requests over 4 MB
(docs/graph-contract.md#mail): a message that would be larger goes without the attachment, with a line
saying where the files are (the folder or the blob). A rerun sends the report again: a report is
information, not a change to the tenant, so it is not made exactly-once like invitations.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from shared.clock import utc_now
from shared.config import Policy, Settings, load_policy
from shared.errors import ConfigError
from shared.graph import Graph, get_graph
from shared.reports.build import build_report
from shared.reports.csv_rows import render_csv
from shared.reports.fetch import keep_snapshot, read_facts
from shared.reports.html_page import render_html
from shared.reports.records import Report
from shared.reports.weeks import Week, last_full_week
from shared.store import Store, open_state

MAX_REQUEST_BYTES = 4 * 1024 * 1024  # Graph's request size limit (docs/graph-contract.md#mail)
FILES = ("report.html", "report.csv", "report.json")


async def make_report(store: Store, graph: Graph | None, policy: Policy, week: Week, now: datetime) -> Report:
    """The week's report from the store (and one $count), its snapshot written (replaced on a rerun)."""
    report = build_report(await read_facts(store, graph, policy, week, now), policy)
    await keep_snapshot(store, report.trend[-1])
    return report


def render(report: Report) -> dict[str, bytes]:
    """The three files, by name."""
    return {
        "report.html": render_html(report).encode("utf-8"),
        "report.csv": render_csv(report),
        "report.json": msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n",
    }


def mail_message(policy: Policy, report: Report, files: dict[str, bytes], where: str) -> tuple[dict, bool]:
    """The sendMail body, and whether report.csv is attached (not when that would pass Graph's 4 MB)."""
    recipients = [{"emailAddress": {"address": a}} for a in policy.reports.recipients]
    html = files["report.html"].decode()
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": f"guestctl-report-{report.week}.csv",
        "contentType": "text/csv",
        "contentBytes": base64.b64encode(files["report.csv"]).decode(),
    }
    message = {
        "subject": f"Guest cleanup report {report.week}",
        "body": {"contentType": "HTML", "content": html},
        "toRecipients": recipients,
        "attachments": [attachment],
    }
    if len(json.dumps({"message": message}).encode()) <= MAX_REQUEST_BYTES:
        return message, True
    note = (
        f'<p style="font-size:13px;color:#1f2937">report.csv is too large to attach (Graph accepts 4 MB per '
        f"request): it is at {_escape(where)}</p>"
    )
    message["attachments"] = []
    message["body"]["content"] = html.replace("</body>", note + "</body>", 1)
    return message, False


def _escape(text: str) -> str:
    from html import escape

    return escape(text, quote=True)


def sender_of(policy: Policy) -> str:
    """The mailbox the report is sent from; ConfigError (exit 2) when the policy cannot send it, checked before
    anything is built, kept or written."""
    sender = policy.invitations.sender_mailbox
    if not sender or not policy.reports.recipients:
        raise ConfigError(
            "sending the report needs reports.recipients and invitations.sender_mailbox in the policy",
            hint="set both in the policy file (docs/policy.md), or run without --send",
        )
    return sender


async def send_report(graph: Graph, policy: Policy, report: Report, files: dict[str, bytes], where: str) -> bool:
    """Email the report; True if report.csv went as an attachment."""
    sender = sender_of(policy)
    message, attached = mail_message(policy, report, files, where)
    await graph.request("POST", f"/users/{sender}/sendMail", json_body={"message": message, "saveToSentItems": True})
    return attached


@dataclass(frozen=True, slots=True)
class ReportRun:
    report: Report
    files: dict[str, bytes]
    written: list[Path]
    sent_to: list[str]
    attached: bool


async def weekly_report(
    settings: Settings,
    *,
    week: Week | None = None,
    out: Path | None = None,
    send: bool = False,
    now: datetime | None = None,
) -> ReportRun:
    """The CLI's `guestctl report`: build, write the files into `out` (default GUESTCTL_OUT), and send."""
    policy = load_policy(settings.policy)
    if send:
        sender_of(policy)  # exit 2 before the week's snapshot is kept or a file written
    now = now or utc_now()
    week = week or last_full_week(now)
    graph = get_graph(settings)
    async with open_state(settings) as store:
        report = await make_report(store, graph, policy, week, now)
    files = render(report)
    folder = out or settings.out
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        written.append(path)
    attached = False
    if send:
        attached = await send_report(graph, policy, report, files, str(folder.resolve() / "report.csv"))
    return ReportRun(report, files, written, list(policy.reports.recipients) if send else [], attached)


async def scheduled_report(blob_folder: str, *, settings: Settings | None = None) -> dict[str, bytes]:
    """The Functions timer's report: last week's, from the store, emailed when `reports.recipients` is set.
    Returns the files for the adapter's blob outputs (`blob_folder` is where they go, for the email's link)."""
    from shared.config import load_settings

    settings = settings or load_settings()
    policy = load_policy(settings.policy)
    now = utc_now()
    graph = get_graph(settings)
    async with open_state(settings) as store:
        report = await make_report(store, graph, policy, last_full_week(now), now)
    files = render(report)
    if policy.reports.recipients:
        await send_report(graph, policy, report, files, f"{blob_folder}/report.csv (the app's storage account)")
    return files
