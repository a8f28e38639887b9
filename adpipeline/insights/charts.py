"""Charts as inline SVG drawn on the server: no script, font or file from anywhere but the Airflow host."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00", "#b82e2e")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Estimate:
    """A rate with its interval, for :func:`interval_chart`."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    flag: str | None = None


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def interval_chart(
    items: Sequence[Estimate], baseline: float | None = None, *, baseline_label: str = "baseline"
) -> str:
    """Horizontal dots with 95 % interval whiskers and a dashed baseline; flagged rows drawn in the flag's colour."""
    shown = [i for i in items if i.value is not None]
    if not shown:
        return ""
    label_w, plot_w, row_h, top = 170, 420, 22, 24
    highs = [i.high if i.high is not None else i.value for i in shown] + ([baseline] if baseline is not None else [])
    top_value = max(v for v in highs if v is not None) or 1e-9
    scale = plot_w / (top_value * 1.08)
    height = top + row_h * len(shown) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{label_w + plot_w + 80}" '
        f'height="{height}" viewBox="0 0 {label_w + plot_w + 80} {height}" {_FONT}>',
        f'<text x="{label_w}" y="14" fill="#555">0</text>',
        f'<text x="{label_w + plot_w}" y="14" text-anchor="end" fill="#555">{_pct(top_value * 1.08)}</text>',
    ]
    for n, item in enumerate(shown):
        y = top + n * row_h + row_h / 2
        colour = {"above": "#109618", "below": "#dc3912"}.get(item.flag or "", "#3366cc")
        assert item.value is not None
        parts.append(f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(item.label[:26])}</text>')
        if item.low is not None and item.high is not None:
            x1, x2 = label_w + item.low * scale, label_w + item.high * scale
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>'
            )
            for x in (x1, x2):
                parts.append(f'<line x1="{x:.1f}" y1="{y - 5:.1f}" x2="{x:.1f}" y2="{y + 5:.1f}" stroke="{colour}"/>')
        cx = label_w + item.value * scale
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{escape(item.label)}: '
            f"{_pct(item.value)}</title></circle>"
        )
        parts.append(f'<text x="{label_w + plot_w + 6}" y="{y + 4:.1f}" fill="#333">{_pct(item.value)}</text>')
    if baseline is not None:
        bx = label_w + baseline * scale
        parts.append(
            f'<line x1="{bx:.1f}" y1="{top - 4}" x2="{bx:.1f}" y2="{height - 4}" stroke="#777" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{bx + 3:.1f}" y="{top - 6}" fill="#777">{escape(baseline_label)} {_pct(baseline)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_bars(columns: Sequence[str], series: Mapping[str, Sequence[float]], *, unit: str = "$") -> str:
    """Vertical bars per column (e.g. a day), stacked by series (e.g. provider/model), with a legend."""
    if not columns or not series:
        return ""
    totals = [sum(values[i] for values in series.values()) for i in range(len(columns))]
    top_value = max(totals) or 1.0
    plot_h, bar_w, gap, left, top = 180, 22, 8, 56, 10
    width = left + len(columns) * (bar_w + gap) + 10
    legend_h = 18 * len(series)
    height = top + plot_h + 40 + legend_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{max(width, 360)}" '
        f'height="{height}" viewBox="0 0 {max(width, 360)} {height}" {_FONT}>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" fill="#555">{_money(top_value, unit)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" fill="#555">0</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for i, column in enumerate(columns):
        x = left + i * (bar_w + gap) + gap / 2
        y = float(top + plot_h)
        for s, (name, values) in enumerate(series.items()):
            h = values[i] / top_value * plot_h
            if h <= 0:
                continue
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(column)} {escape(name)}: '
                f"{_money(values[i], unit)}</title></rect>"
            )
        if len(columns) <= 16 or i % max(1, len(columns) // 12) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'font-size="10">{escape(column[-5:])}</text>'
            )
    for s, name in enumerate(series):
        y = top + plot_h + 34 + 18 * s
        parts.append(f'<rect x="{left}" y="{y - 10}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{left + 18}" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbars(values: Mapping[str, float], *, unit: str = "") -> str:
    """Horizontal bars, one per label (e.g. tokens by modality)."""
    shown = {k: v for k, v in values.items() if v > 0}
    if not shown:
        return ""
    label_w, plot_w, row_h = 150, 360, 22
    top_value = max(shown.values())
    height = row_h * len(shown) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{label_w + plot_w + 110}" '
        f'height="{height}" viewBox="0 0 {label_w + plot_w + 110} {height}" {_FONT}>'
    ]
    for n, (label, value) in enumerate(shown.items()):
        y = 4 + n * row_h
        w = value / top_value * plot_w
        parts.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="{PALETTE[n % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" fill="#333">{value:,.0f}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _money(value: float, unit: str) -> str:
    return f"{unit}{value:,.4f}" if value < 1 else f"{unit}{value:,.2f}"


def wilson(clicks: float, weight: float) -> tuple[float, float] | None:
    """95 % Wilson interval of a rate from ``clicks`` out of ``weight`` effective impressions."""
    if weight <= 0:
        return None
    p = min(1.0, max(0.0, clicks / weight))
    z2 = 3.841459
    centre = (p + z2 / (2 * weight)) / (1 + z2 / weight)
    half = 1.959964 * math.sqrt(p * (1 - p) / weight + z2 / (4 * weight * weight)) / (1 + z2 / weight)
    return max(0.0, centre - half), min(1.0, centre + half)


def decay_chart(
    days: Sequence[int],
    impressions: Sequence[int],
    clicks: Sequence[int],
    *,
    overdispersion: float | None,
    intercept: float | None,
    decay: float | None,
    fatigued: bool = False,
) -> str:
    """A small chart of CTR by days live: each day's CTR with its 95 % interval (impressions discounted for the
    day-to-day spread, as the table's intervals), and the fitted curve exp(intercept + decay * day)."""
    if not days:
        return ""
    rho = overdispersion or 0.0
    points = []
    for t, n, k in zip(days, impressions, clicks, strict=True):
        if n <= 0:
            continue
        weight = n / (1 + (n - 1) * rho)
        points.append((t, k / n, wilson(k / n * weight, weight)))
    if not points:
        return ""
    last = max(max(days), 1)
    curve: list[tuple[float, float]] = []
    if intercept is not None and decay is not None:
        curve = [(t / 4, math.exp(intercept + decay * t / 4)) for t in range(0, 4 * last + 1)]
    highs = [iv[1] if iv else p for _, p, iv in points] + [c for _, c in curve]
    top_value = (max(highs) or 1e-9) * 1.1
    w, h, left, bottom = 240, 96, 34, 16
    plot_w, plot_h = w - left - 6, h - bottom - 6

    def x(t: float) -> float:
        return left + t / last * plot_w

    def y(v: float) -> float:
        return 6 + plot_h - min(v, top_value) / top_value * plot_h

    colour = "#dc3912" if fatigued else "#3366cc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="spark" role="img" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="system-ui, sans-serif" font-size="9">',
        f'<line x1="{left}" y1="{6 + plot_h}" x2="{w - 6}" y2="{6 + plot_h}" stroke="#bbb"/>',
        f'<text x="{left - 3}" y="12" text-anchor="end" fill="#555">{_pct(top_value)}</text>',
        f'<text x="{left - 3}" y="{6 + plot_h}" text-anchor="end" fill="#555">0</text>',
        f'<text x="{left}" y="{h - 3}" fill="#555">day 0</text>',
        f'<text x="{w - 6}" y="{h - 3}" text-anchor="end" fill="#555">day {last}</text>',
    ]
    for t, p, iv in points:
        if iv:
            parts.append(
                f'<line x1="{x(t):.1f}" y1="{y(iv[0]):.1f}" x2="{x(t):.1f}" y2="{y(iv[1]):.1f}" stroke="#9db3de"/>'
            )
        parts.append(
            f'<circle cx="{x(t):.1f}" cy="{y(p):.1f}" r="1.8" fill="#3366cc"><title>day {t}: {_pct(p)}</title></circle>'
        )
    if curve:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}" for i, (t, v) in enumerate(curve))
        parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    parts.append("</svg>")
    return "".join(parts)
