"""SVG charts drawn here, from the report's own figures: nothing fetched, nothing random.

Each chart is a `Chart` of primitive shapes (rectangles, lines, text) in a fixed 720 x 260
coordinate box. `to_svg` writes it for the HTML report; the PDF renderer draws the same
shapes with ReportLab, so both show the same picture. Integers in, integers out.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 44  # margins around the plot area
OPENED, RESOLVED = "#3b6ea5", "#5aa469"
AGE_COLOURS = ("#d9e7f5", "#a9c8e8", "#f2c36b", "#e8894a", "#c8423b")


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = "#888888"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 9
    anchor: str = "start"  # start, middle, end


@dataclass
class Chart:
    title: str
    shapes: list = field(default_factory=list)


def _nice_max(value: int) -> int:
    for step in (1, 2, 5):
        for power in range(0, 12):
            top = step * 10 ** power
            if top >= value:
                return max(top, 1)
    return value


def _axes(chart: Chart, top_value: int) -> tuple[float, float]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    chart.shapes.append(Line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, "#444444"))
    chart.shapes.append(Line(LEFT, TOP, LEFT, TOP + plot_h, "#444444"))
    steps = 5 if top_value % 5 == 0 else top_value  # top is 1, 2 or 5 x 10^k
    for i in range(steps + 1):
        value = top_value * i // steps
        y = TOP + plot_h - plot_h * i / steps
        chart.shapes.append(Line(LEFT - 3, y, LEFT + plot_w, y, "#dddddd"))
        chart.shapes.append(Text(LEFT - 6, y + 3, str(value), 8, "end"))
    return plot_w, plot_h


def opened_resolved(per_day: list[dict]) -> Chart:
    """Bars per UTC day: discrepancies opened (left) and resolved or auto-closed (right)."""
    chart = Chart("Discrepancies opened and resolved per day")
    top = _nice_max(max([1] + [max(d["opened"], d["resolved"]) for d in per_day]))
    plot_w, plot_h = _axes(chart, top)
    slot = plot_w / max(1, len(per_day))
    bar = max(slot * 0.4, 0.5)
    label_every = max(1, round(len(per_day) / 8))
    for i, day in enumerate(per_day):
        x = LEFT + i * slot
        for offset, value, colour in ((0.1, day["opened"], OPENED), (0.5, day["resolved"], RESOLVED)):
            if value:
                h = plot_h * value / top
                chart.shapes.append(Rect(x + slot * offset, TOP + plot_h - h, bar, h, colour))
        if i % label_every == 0:
            chart.shapes.append(Line(x + slot / 2, TOP + plot_h, x + slot / 2, TOP + plot_h + 3))
            chart.shapes.append(Text(x + slot / 2, TOP + plot_h + 14, day["day"][5:], 8, "middle"))
    _legend(chart, [("opened", OPENED), ("resolved or auto-closed", RESOLVED)])
    return chart


def ageing(table: dict[str, dict[str, int]]) -> Chart:
    """One stacked bar per severity: discrepancies still open, by age since opening."""
    chart = Chart("Ageing of discrepancies not yet closed, by severity")
    severities = list(table)
    buckets = list(next(iter(table.values()))) if table else []
    top = _nice_max(max([1] + [sum(row.values()) for row in table.values()]))
    plot_w, plot_h = _axes(chart, top)
    slot = plot_w / max(1, len(severities))
    for i, severity in enumerate(severities):
        x, y = LEFT + i * slot + slot * 0.25, TOP + plot_h
        for bucket, colour in zip(buckets, AGE_COLOURS):
            count = table[severity][bucket]
            if count:
                h = plot_h * count / top
                y -= h
                chart.shapes.append(Rect(x, y, slot * 0.5, h, colour))
        chart.shapes.append(Text(LEFT + i * slot + slot / 2, TOP + plot_h + 14,
                                 f"{severity} ({sum(table[severity].values())})", 9, "middle"))
    _legend(chart, list(zip(buckets, AGE_COLOURS)))
    return chart


def _legend(chart: Chart, items: list[tuple[str, str]]) -> None:
    x = LEFT
    for label, colour in items:
        chart.shapes.append(Rect(x, HEIGHT - 16, 10, 10, colour))
        chart.shapes.append(Text(x + 14, HEIGHT - 7, label, 8))
        x += 24 + 5.2 * len(label)


def to_svg(chart: Chart) -> str:
    """The chart as an inline SVG element (with a <title> for screen readers)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" font-family="sans-serif">',
             f"<title>{html.escape(chart.title)}</title>"]
    for s in chart.shapes:
        if isinstance(s, Rect):
            parts.append(f'<rect x="{s.x:.2f}" y="{s.y:.2f}" width="{s.w:.2f}" height="{s.h:.2f}" '
                         f'fill="{s.fill}"/>')
        elif isinstance(s, Line):
            parts.append(f'<line x1="{s.x1:.2f}" y1="{s.y1:.2f}" x2="{s.x2:.2f}" y2="{s.y2:.2f}" '
                         f'stroke="{s.stroke}" stroke-width="0.6"/>')
        else:
            parts.append(f'<text x="{s.x:.2f}" y="{s.y:.2f}" font-size="{s.size}" '
                         f'text-anchor="{s.anchor}">{html.escape(s.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
