"""Small static SVG charts drawn from numbers: no script, no external resource, text escaped.

Each chart carries its text alternative (`role="img"`, `aria-label`, `<title>`, `<desc>`); the report also
shows the numbers as a table. Colours are chosen to read on a light and a dark background alike (email
clients may invert or keep them). Width is a viewBox: the chart scales down to any column width.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 560, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 26
INK = "#6b7280"  # axis and labels: mid grey, readable on white and on near-black
COLOURS = ("#2563eb", "#d97706", "#059669", "#dc2626")


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _scale(values: Sequence[float | None]) -> float:
    top = max((v for v in values if v is not None), default=0)
    return float(top) if top > 0 else 1.0


def _frame(title: str, description: str, body: list[str], top: float, labels: Sequence[str]) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{_text(title)}: {_text(description)}" style="max-width:{WIDTH}px;height:auto;display:block">',
        f"<title>{_text(title)}</title>",
        f"<desc>{_text(description)}</desc>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="{INK}" />',
        f'<text x="{LEFT - 6}" y="{TOP + 10}" font-size="11" text-anchor="end" fill="{INK}" '
        f'font-family="Arial,sans-serif">{_text(_number(top))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" font-size="11" text-anchor="end" fill="{INK}" '
        f'font-family="Arial,sans-serif">0</text>',
    ]
    if labels:
        for index in sorted({0, len(labels) - 1}):
            x = _x(index, len(labels))
            anchor = "start" if index == 0 else "end"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="11" text-anchor="{anchor}" fill="{INK}" '
                f'font-family="Arial,sans-serif">{_text(labels[index])}</text>'
            )
    return "".join([*parts, *body, "</svg>"])


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float, top: float) -> float:
    plot_h = HEIGHT - TOP - BOTTOM
    return TOP + plot_h - plot_h * value / top


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def line_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], description: str = ""
) -> str:
    """One line per series over the labels (weeks); a None is a gap. Legend in the description and below."""
    top = _scale([v for values in series.values() for v in values])
    body = []
    for colour, (name, values) in zip(COLOURS, series.items(), strict=False):
        runs: list[list[str]] = [[]]
        for index, value in enumerate(values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{_x(index, len(values)):.1f},{_y(value, top):.1f}")
        for run in runs:
            if len(run) > 1:
                body.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" stroke-width="2">'
                    f"<title>{_text(name)}</title></polyline>"
                )
            elif run:
                x, y = run[0].split(",")
                body.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"><title>{_text(name)}</title></circle>')
    return _frame(title, description or _describe(labels, series), body, top, labels)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], description: str = "") -> str:
    """One bar per label."""
    top = _scale(list(values))
    count = max(len(values), 1)
    slot = (WIDTH - LEFT - RIGHT) / count
    plot_bottom = HEIGHT - BOTTOM
    body = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = _y(value, top)
        body.append(
            f'<rect x="{LEFT + index * slot + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{plot_bottom - y:.1f}" fill="{COLOURS[0]}"><title>{_text(label)}: {_text(_number(value))}'
            "</title></rect>"
        )
    return _frame(title, description or _describe(labels, {title: values}), body, top, [])


def _describe(labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    """A sentence for screen readers: each series from its first to its last known value."""
    if not labels:
        return "no data"
    sentences = []
    for name, values in series.items():
        known = [(labels[i], v) for i, v in enumerate(values) if v is not None]
        if not known:
            sentences.append(f"{name}: no data")
            continue
        (first_label, first), (last_label, last) = known[0], known[-1]
        sentences.append(f"{name}: {_number(first)} in {first_label}, {_number(last)} in {last_label}")
    return f"{labels[0]} to {labels[-1]}. " + "; ".join(sentences) + "."
