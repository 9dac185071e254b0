"""Server-rendered SVG charts (no chart library, no script): sparklines, bars, stacked bars, lines
and a weekday-by-hour heatmap. Every chart has a ``<title>`` and ``<desc>`` for screen readers, and
the page that shows one also offers its figures as a table or CSV.
"""
from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from markupsafe import Markup

#: Colour-blind-safe palette (Okabe-Ito, darkened where needed for contrast on white).
PALETTE = ["#1d70b8", "#d55e00", "#00703c", "#cc79a7", "#8a6d00", "#56b4e9", "#4c2c92",
           "#505a5f", "#009e73", "#b10e1e"]
TEXT = "#0b0c0c"
MUTED = "#505a5f"
GRID = "#dcdcdc"
ALERT = "#d4351c"
FONT = 'font-family="Helvetica Neue, Arial, sans-serif"'


def colour(n: int) -> str:
    return PALETTE[n % len(PALETTE)]


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'{FONT} font-size="12">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return value


def _y_axis(body: list[str], left: int, top: int, plot_w: int, plot_h: int, top_value: float,
            ticks: int = 4) -> None:
    for i in range(ticks + 1):
        value = top_value * i / ticks
        y = top + plot_h - plot_h * i / ticks
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{GRID}" stroke-width="1"/>')
        label = f"{value:g}" if value < 1000 else f"{value / 1000:g}k"
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{label}</text>')


def sparkline(values: Sequence[float], *, width: int = 240, height: int = 40,
              title: str = "Trend") -> Markup:
    top = max(values) if values else 0
    n = len(values)
    body = [f'<line x1="0" x2="{width}" y1="{height - 1}" y2="{height - 1}" stroke="{GRID}"/>']
    if n:
        bar = width / n
        for i, v in enumerate(values):
            h = 0 if not top else (height - 4) * v / top
            body.append(f'<rect x="{i * bar + 1:.1f}" y="{height - 1 - h:.1f}" width="{max(bar - 2, 1):.1f}" '
                        f'height="{h:.1f}" fill="{PALETTE[0]}"/>')
    return _svg(width, height, title, f"{n} values, highest {top:g}", body)


def bars(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 560,
         unit: str = "", highlight: Sequence[bool] | None = None) -> Markup:
    """Horizontal bars, one per label (long labels fit; easy to read)."""
    row = 26
    left = min(220, 12 + 7 * max((len(x) for x in labels), default=4))
    right = 60
    height = 24 + row * max(len(labels), 1)
    top_value = _nice_max(max(values, default=0))
    plot_w = width - left - right
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 8 + i * row
        w = plot_w * value / top_value if top_value else 0
        fill = ALERT if highlight and highlight[i] else PALETTE[0]
        body.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" fill="{TEXT}">{escape(label)}</text>')
        body.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 8}" fill="{fill}"/>')
        body.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" fill="{TEXT}" font-weight="700">'
                    f'{value:g}{escape(unit)}</text>')
    desc = "; ".join(f"{l}: {v:g}{unit}" for l, v in zip(labels, values))
    return _svg(width, height, title, desc, body)


def stacked_columns(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
                    title: str, width: int = 560, height: int = 260) -> Markup:
    """Vertical columns per category, stacked by series (e.g. outcomes per service)."""
    left, right, top, bottom = 44, 10, 10, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[1][i] for s in series) for i in range(len(categories))]
    top_value = _nice_max(max(totals, default=0))
    body: list[str] = []
    _y_axis(body, left, top, plot_w, plot_h, top_value)
    n = max(len(categories), 1)
    slot = plot_w / n
    bar = min(48, slot * 0.7)
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar) / 2
        base = top + plot_h
        for k, (_, values) in enumerate(series):
            h = plot_h * values[i] / top_value if top_value else 0
            base -= h
            if h > 0:
                body.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                            f'fill="{colour(k)}"/>')
        cx = left + i * slot + slot / 2
        body.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="end" fill="{TEXT}" '
                    f'transform="rotate(-30 {cx:.1f} {top + plot_h + 14})">{escape(category)}</text>')
    desc = "; ".join(f"{c}: " + ", ".join(f"{name} {vals[i]:g}" for name, vals in series)
                     for i, c in enumerate(categories))
    return _svg(width, height, title, desc, body)


def stacked_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
                 title: str, width: int = 560) -> Markup:
    """Horizontal bars per category, stacked by series (outcomes per service); totals at the end."""
    row = 30
    left = min(250, 12 + 7 * max((len(c) for c in categories), default=4))
    right = 50
    height = 16 + row * max(len(categories), 1)
    totals = [sum(s[1][i] for s in series) for i in range(len(categories))]
    top_value = _nice_max(max(totals, default=0))
    plot_w = width - left - right
    body = []
    for i, category in enumerate(categories):
        y = 6 + i * row
        body.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" fill="{TEXT}">{escape(category)}</text>')
        x = float(left)
        for k, (name, values) in enumerate(series):
            w = plot_w * values[i] / top_value if top_value else 0
            if w > 0:
                body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 10}" '
                            f'fill="{colour(k)}"><title>{escape(category)}, {escape(name)}: '
                            f'{values[i]:g}</title></rect>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 17}" fill="{TEXT}" font-weight="700">{totals[i]:g}</text>')
    desc = "; ".join(f"{c}: " + ", ".join(f"{name} {vals[i]:g}" for name, vals in series)
                     for i, c in enumerate(categories))
    return _svg(width, height, title, desc, body)


def lines(dates: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str,
          width: int = 1100, height: int = 280, marks: Sequence[tuple[int, int]] = ()) -> Markup:
    """One line per series over dates; ``marks`` are (series index, date index) points to ring red."""
    left, right, top, bottom = 44, 34, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((max(v, default=0) for _, v in series), default=0))
    body: list[str] = []
    _y_axis(body, left, top, plot_w, plot_h, top_value)
    n = max(len(dates) - 1, 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return left + plot_w * i / n, top + plot_h - (plot_h * v / top_value if top_value else 0)

    step = max(1, len(dates) // 10)
    for i in range(0, len(dates), step):
        x, _ = point(i, 0)
        body.append(f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle" fill="{MUTED}">'
                    f'{escape(dates[i])}</text>')
    for k, (_, values) in enumerate(series):
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}"
                        for i, (x, y) in enumerate(point(i, v) for i, v in enumerate(values)))
        body.append(f'<path d="{path}" fill="none" stroke="{colour(k)}" stroke-width="2.2" '
                    f'stroke-linejoin="round"/>')
    for k, i in marks:
        x, y = point(i, series[k][1][i])
        body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="{ALERT}" stroke-width="3"/>')
    desc = "; ".join(f"{name}: total {sum(v):g}, highest {max(v, default=0):g}" for name, v in series)
    return _svg(width, height, title, desc, body)


def heatmap(rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[float]], *,
            title: str, width: int = 560) -> Markup:
    """A grid (e.g. weekday x hour) shaded by value, darkest the busiest."""
    left, top = 40, 22
    cell_w = (width - left - 8) / max(len(columns), 1)
    cell_h = 24
    height = top + cell_h * len(rows) + 8
    top_value = max((max(r, default=0) for r in values), default=0) or 1
    body = []
    for j, column in enumerate(columns):
        if j % 3 == 0:
            body.append(f'<text x="{left + j * cell_w + cell_w / 2:.1f}" y="{top - 8}" text-anchor="middle" '
                        f'fill="{MUTED}">{escape(column)}</text>')
    for i, row in enumerate(rows):
        body.append(f'<text x="{left - 6}" y="{top + i * cell_h + 16}" text-anchor="end" fill="{TEXT}">'
                    f'{escape(row)}</text>')
        for j, value in enumerate(values[i]):
            share = value / top_value
            fill = "#f3f2f1" if value == 0 else _blend(share)
            body.append(f'<rect x="{left + j * cell_w:.1f}" y="{top + i * cell_h}" width="{cell_w - 1:.1f}" '
                        f'height="{cell_h - 1}" fill="{fill}"><title>{escape(row)} {escape(columns[j])}: '
                        f'{value:g}</title></rect>')
    busiest = max(((values[i][j], rows[i], columns[j]) for i in range(len(rows))
                   for j in range(len(columns))), default=(0, "", ""))
    return _svg(width, height, title, f"busiest: {busiest[1]} {busiest[2]} with {busiest[0]:g}", body)


def _blend(share: float) -> str:
    """Light blue to the hub's dark blue."""
    low, high = (210, 226, 241), (0, 48, 120)
    r, g, b = (round(lo + (hi - lo) * min(1.0, share)) for lo, hi in zip(low, high))
    return f"#{r:02x}{g:02x}{b:02x}"
