"""report.html: the report as an email body. Built by string joining with every value escaped.

What email clients need (docs/reports.md#formats): inline CSS only (a <style> in the head adds the dark-mode
colours for clients that honour `prefers-color-scheme`; the inline colours alone read on light and dark),
inline SVG charts, no script, no external resource (no image, font or stylesheet URL), one column at most
600 px wide whose tables wrap, tables with <th scope>, and every chart with its text alternative.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from shared.reports.csv_rows import iso
from shared.reports.records import Report, Snapshot
from shared.reports.svg import line_chart

FONT = "font-family:Arial,Helvetica,sans-serif"
TEXT = "color:#1f2937"
MUTED = "color:#4b5563"
CELL = "padding:4px 6px;border-bottom:1px solid #d1d5db;overflow-wrap:anywhere;word-break:break-word;"
TABLE_STYLE = "width:100%;border-collapse:collapse;table-layout:fixed;font-size:13px;margin:0 0 16px 0;"
SHOWN_ROWS = 50  # guests listed in the email; report.csv has them all
DARK = (
    "@media (prefers-color-scheme: dark){body,.page{background:#111827 !important;color:#e5e7eb !important}"
    "th,td,p,h1,h2,li,span{color:#e5e7eb !important}}"
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _change(value: int | float | None) -> str:
    if value is None:
        return "—"
    return "±0" if value == 0 else (f"+{_number(value)}" if value > 0 else f"−{_number(-value)}")


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: int = 0) -> str:
    """A table with a caption and column headers; the last `numeric` columns are right-aligned."""

    def align(index: int) -> str:
        return "text-align:right;" if index >= len(headers) - numeric else "text-align:left;"

    head = "".join(f'<th scope="col" style="{CELL}{align(i)}{TEXT}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        first, *rest = row
        cells = [f'<th scope="row" style="{CELL}text-align:left;font-weight:normal;{TEXT}">{_e(first)}</th>']
        cells += [f'<td style="{CELL}{align(i + 1)}{TEXT}">{_e(v)}</td>' for i, v in enumerate(rest)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        return f'<p style="{MUTED};font-size:13px">{_e(caption)}: none.</p>'
    return (
        f'<table role="table" style="{TABLE_STYLE}"><caption style="text-align:left;font-weight:bold;padding:4px 0;'
        f'{TEXT}">{_e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def _h2(text: str) -> str:
    return f'<h2 style="font-size:17px;margin:24px 0 8px 0;{TEXT}">{_e(text)}</h2>'


def _p(text: str, style: str = MUTED) -> str:
    return f'<p style="font-size:13px;margin:0 0 8px 0;{style}">{_e(text)}</p>'


def _chart(title: str, trend: list[Snapshot], fields: dict[str, str]) -> str:
    labels = [s.week for s in trend]
    series = {label: [getattr(s, key) for s in trend] for key, label in fields.items()}
    svg = line_chart(title, labels, series)
    legend = " · ".join(f"{label}" for label in fields.values())
    return (
        f'<div style="margin:0 0 16px 0">{svg}'
        f'<p style="font-size:12px;margin:4px 0 0 0;{MUTED}">{_e(title)} ({_e(legend)}; colours in that order: '
        f"blue, orange, green, red). {_e(_sentence(trend, fields))}</p></div>"
    )


def _sentence(trend: list[Snapshot], fields: dict[str, str]) -> str:
    first, last = trend[0], trend[-1]
    parts = [f"{label} {_number(getattr(first, key))} → {_number(getattr(last, key))}" for key, label in fields.items()]
    return f"{first.week} to {last.week}: " + ", ".join(parts) + "."


def render_html(report: Report) -> str:
    start, end = report.period_start, report.period_end
    title = f"Guest cleanup report {report.week}"
    period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d} (Monday 00:00 UTC to Monday 00:00 UTC)"
    headline = _table(
        "Headline numbers",
        ("Number", "This week", "Last week", "Change"),
        ((h.label, _number(h.value), _number(h.previous), _change(h.change)) for h in report.headline),
        numeric=3,
    )
    charts, activity, people = _charts(report), _activity(report), _people(report)
    sources = "".join(f'<li style="font-size:12px;{MUTED}">{_e(s)}</li>' for s in report.sources)
    body = "".join(
        [
            f'<h1 style="font-size:22px;margin:0 0 4px 0;{TEXT}">{_e(title)}</h1>',
            _p(period),
            headline,
            _h2("Trends (26 weeks)"),
            charts,
            activity,
            people,
            _h2("Where the numbers come from"),
            f'<ul style="margin:0;padding-left:18px">{sources}</ul>',
            _p(
                f"Generated {iso(report.generated_at)} by guestctl. "
                "Definitions: docs/reports.md in the guestctl repository."
            ),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark"><meta name="supported-color-schemes" content="light dark">'
        f"<title>{_e(title)}</title><style>{DARK}</style></head>"
        f'<body style="margin:0;padding:0;background:#ffffff;{TEXT};{FONT}">'
        f'<div class="page" style="max-width:600px;margin:0 auto;padding:16px;box-sizing:border-box;'
        f'background:#ffffff;{TEXT};{FONT}">{body}</div></body></html>'
    )


def _charts(report: Report) -> str:
    guests = {"guests": "Guests", "active": "Active", "stale": "Stale", "never_redeemed": "Never redeemed"}
    return "".join(
        [
            _chart("Guests", report.trend, guests),
            _chart("Removals", report.trend, {"disabled": "Disabled", "deleted": "Deleted", "restored": "Restored"}),
            _chart("Invitations", report.trend, {"invited": "Invited", "redeemed": "Redeemed"}),
        ]
    )


def _activity(report: Report) -> str:
    done = _table("Done this week", ("Action", "Guests"), report.done.items(), numeric=1)
    scheduled = _table(
        "Scheduled next week", ("Day", "Action", "Guests"), ((s.day, s.action, s.guests) for s in report.scheduled), 1
    )
    attention = _table(
        "Needs a person",
        ("What", "About", "When", "Detail"),
        ((a.kind, a.subject, iso(a.at) if a.at else "", a.detail) for a in report.attention),
    )
    return "".join([_h2("This week and next"), done, scheduled, _h2("Needs a person"), attention])


def _people(report: Report) -> str:
    domains = _table(
        "Top domains",
        ("Domain", "Guests", "In this report"),
        ((d.domain, d.guests, d.acted_on) for d in report.domains),
        2,
    )
    partners = (
        _table(
            "Partners: sign-ins this week",
            ("Partner", "Direct connect", "As guest", "Failed"),
            ((p.name or p.tenant_id, p.direct_connect, p.guest, p.failed) for p in report.partners),
            numeric=3,
        )
        if report.partners
        else ""
    )
    shown = report.guests[:SHOWN_ROWS]
    more = len(report.guests) - len(shown)
    guests = _table(
        "Guests acted on or scheduled",
        ("Guest", "Status", "Action", "Date"),
        ((g.name, g.status, g.action, iso(g.date)[:10]) for g in shown),
    )
    if more > 0:
        guests += _p(f"…and {more:,} more in report.csv (all {len(report.guests):,} rows).")
    return "".join([_h2("Domains and partners"), domains, partners, _h2("Guests"), guests])
