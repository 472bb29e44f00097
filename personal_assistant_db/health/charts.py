"""Inline SVG charts for the dashboard, drawn on the server.

No script and no external resource: each chart is an ``<svg>`` element styled by the page's own
``<style>`` (so ``prefers-color-scheme`` reaches it), with ``role="img"`` and a ``<title>`` and
``<desc>`` as its text alternative. The viewBox is small (360 units wide) and the SVG scales to the
column, so its labels stay readable on a 375 px phone. Lines keep at most one point per unit of
width (the highest value in it, so a spike survives), which bounds a chart's bytes whatever the
history holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from math import floor, log10

__all__ = ["Frame", "Marker", "Series", "duration", "line_chart", "nice_ceiling", "timeline"]

W = 360
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 8, 16


@dataclass(frozen=True)
class Frame:
    """The time axis: ``start``..``end`` (Unix seconds); a line breaks over gaps > ``gap`` s."""

    start: float
    end: float
    gap: float

    def x(self, t: float) -> float:
        span = max(self.end - self.start, 1e-9)
        return LEFT + (t - self.start) / span * (W - LEFT - RIGHT)


@dataclass(frozen=True)
class Series:
    label: str
    css: str  # class name the page's stylesheet colours
    points: Sequence[tuple[float, float]]  # (Unix time, value), oldest first


@dataclass(frozen=True)
class Marker:
    """An alert transition drawn as a vertical line; ``css`` is ``firing`` or ``resolved``."""

    at: float
    css: str
    label: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= ``value`` (1 for zero or less)."""
    if value <= 0:
        return 1.0
    base = 10.0 ** floor(log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * base >= value * (1 - 1e-9):
            return float(step * base)
    return 10 * base  # pragma: no cover - the loop always returns


def duration(seconds: float) -> str:
    """``15 min``, ``90 s``, ``2 h``: whole minutes from 10 min up, else seconds."""
    if seconds >= 7200 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 600 or (seconds >= 60 and seconds % 60 == 0):
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _num(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def _head(ident: str, title: str, desc: str, height: int) -> str:
    return (
        f'<svg id="{ident}" class="chart" viewBox="0 0 {W} {height}" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d"><title id="{ident}-t">{escape(title)}</title>'
        f'<desc id="{ident}-d">{escape(desc)}</desc>'
    )


def _time_axis(frame: Frame, y: int) -> str:
    span = frame.end - frame.start
    ticks = []
    for i in range(4):
        ago = span * (3 - i) / 3
        label = "now" if ago == 0 else f"-{duration(ago)}"
        anchor = "start" if i == 0 else "end" if i == 3 else "middle"
        x = frame.x(frame.start + span * i / 3)
        ticks.append(f'<text x="{x:.0f}" y="{y}" text-anchor="{anchor}">{label}</text>')
    return "".join(ticks)


def _markers(frame: Frame, markers: Sequence[Marker], top: int, bottom: int) -> str:
    out = []
    for m in markers:
        if not frame.start <= m.at <= frame.end:
            continue
        x = frame.x(m.at)
        out.append(
            f'<g class="m-{m.css}"><title>{escape(m.label)}</title>'
            f'<path d="M{x:.0f} {top}V{bottom}M{x - 4:.0f} {top}h8l-4 6z"/></g>'
        )
    return "".join(out)


def _path(frame: Frame, points: Sequence[tuple[float, float]], scale: float, base: int) -> str:
    """``M x y x y ...``; a new ``M`` after a gap; one point per x unit (its highest value)."""
    cells: dict[int, tuple[float, float]] = {}  # x -> (time, value), keeps the highest
    order: list[int] = []
    for t, v in points:
        if t < frame.start:
            continue
        x = round(frame.x(t))
        seen = cells.get(x)
        if seen is None:
            order.append(x)
            cells[x] = (t, v)
        elif v > seen[1]:
            cells[x] = (seen[0], v)
    parts = []
    last: float | None = None
    for x in order:
        t, v = cells[x]
        y = base - v * scale
        jump = last is None or t - last > frame.gap
        parts.append(f"{'M' if jump else ''}{x} {y:.0f}")
        last = t
    return " ".join(parts)


def line_chart(
    ident: str,
    *,
    title: str,
    desc: str,
    frame: Frame,
    series: Sequence[Series],
    unit: str,  # said in the title; the axis keeps bare numbers (they fit a phone)
    limit: float | None = None,
    limit_label: str = "",
    markers: Sequence[Marker] = (),
    height: int = 140,
) -> str:
    """Lines over time against an optional horizontal ``limit`` (a threshold or a capacity)."""
    bottom = height - BOTTOM
    values = [v for s in series for _, v in s.points]
    top_value = nice_ceiling(max([*values, limit or 0.0, 0.0]) * 1.05)
    scale = (bottom - TOP) / top_value
    out = [_head(ident, title, desc, height)]
    for frac in (0.0, 0.5, 1.0):
        y = bottom - (bottom - TOP) * frac
        out.append(
            f'<path class="grid" d="M{LEFT} {y:.0f}H{W - RIGHT}"/>'
            f'<text x="{LEFT - 3}" y="{y + 3:.0f}" text-anchor="end">{_num(top_value * frac)}'
            "</text>"
        )
    if limit is not None:
        y = bottom - limit * scale
        out.append(
            f'<g class="limit"><title>{escape(limit_label)}</title>'
            f'<path d="M{LEFT} {y:.0f}H{W - RIGHT}"/></g>'
        )
    for s in series:
        d = _path(frame, s.points, scale, bottom)
        if d:
            label = escape(s.label)
            out.append(f'<path class="line {s.css}" d="{d}"><title>{label}</title></path>')
    out.append(_markers(frame, markers, TOP, bottom))
    out.append(_time_axis(frame, height - 3))
    out.append("</svg>")
    return "".join(out)


def timeline(
    ident: str,
    *,
    title: str,
    desc: str,
    frame: Frame,
    rows: Sequence[tuple[str, Sequence[tuple[float, float, str]]]],
    markers: Sequence[Marker] = (),
) -> str:
    """One bar per row; each run ``(from, to, status)`` is a segment coloured by its status."""
    row = 24
    height = TOP + row * max(len(rows), 1) + BOTTOM
    out = [_head(ident, title, desc, height)]
    for i, (name, runs) in enumerate(rows):
        y = TOP + i * row
        out.append(f'<text x="{LEFT}" y="{y + 9}">{escape(name)}</text>')
        out.append(
            f'<rect class="track" x="{LEFT}" y="{y + 12}" width="{W - LEFT - RIGHT}" height="8"/>'
        )
        for begin, end, status in runs:
            x0 = frame.x(max(begin, frame.start))
            x1 = frame.x(min(end, frame.end))
            if x1 <= x0:
                continue
            out.append(
                f'<rect class="s-{escape(status)}" x="{x0:.0f}" y="{y + 12}" '
                f'width="{max(x1 - x0, 1):.0f}" height="8"><title>{escape(status)}</title></rect>'
            )
    out.append(_markers(frame, markers, TOP, height - BOTTOM))
    out.append(_time_axis(frame, height - 3))
    out.append("</svg>")
    return "".join(out)
