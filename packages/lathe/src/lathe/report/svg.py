"""Static SVG charts for the run report: no JavaScript, no network, readable in any browser."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")

Series = tuple[str, Sequence[tuple[float, float]]]


def _fmt(value: float) -> str:
    """A short axis label: 3 significant digits, scientific for very small or large values."""
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.2e}"
    return f"{value:.3g}"


def _span(values: Sequence[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def line_chart(series: Sequence[Series], x_label: str = "step") -> str:
    """Lines of (x, y) points on shared axes; a legend when there is more than one series."""
    points = [p for _, pts in series for p in pts if math.isfinite(p[1])]
    if not points:
        return '<p class="empty">no values logged</p>'
    x0, x1 = _span([p[0] for p in points])
    y0, y1 = _span([p[1] for p in points])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>']
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        out.append(f'<text x="{LEFT - 4}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{_fmt(y)}</text>')
        x = x0 + frac * (x1 - x0)
        out.append(f'<text x="{sx(x):.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="11">{_fmt(x)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle" font-size="11">{escape(x_label)}</text>')
    for i, (name, pts) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        finite = [(x, y) for x, y in pts if math.isfinite(y)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in finite)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        if len(finite) == 1:
            out.append(f'<circle cx="{sx(finite[0][0]):.1f}" cy="{sy(finite[0][1]):.1f}" r="3" fill="{color}"/>')
        if len(series) > 1:
            out.append(f'<text x="{LEFT + 8}" y="{TOP + 14 + 14 * i}" font-size="11" fill="{color}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(bars: Sequence[tuple[str, float]]) -> str:
    """Vertical bars with their labels under them (the lengths histogram)."""
    if not bars:
        return '<p class="empty">no values</p>'
    top = max(v for _, v in bars) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(bars)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">']
    for i, (label, value) in enumerate(bars):
        h = value / top * plot_h
        x = LEFT + i * step
        out.append(f'<rect x="{x + 2:.1f}" y="{TOP + plot_h - h:.1f}" width="{step - 4:.1f}" height="{h:.1f}" fill="{COLORS[0]}"/>')
        out.append(f'<text x="{x + step / 2:.1f}" y="{TOP + plot_h - h - 3:.1f}" text-anchor="middle" font-size="10">{_fmt(value)}</text>')
        out.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="10">{escape(label)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle" font-size="11">tokens per row</text>')
    out.append("</svg>")
    return "\n".join(out)
