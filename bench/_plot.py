"""``--plot PATH``: a bench's ratio table as a small, hand-written SVG bar chart.

Why not matplotlib (a bench-only extra would have been the other way): a bar per ratio and a line
at the baseline is all the docs need. Hand-written SVG adds no dependency (matplotlib brings
nine packages, numpy and pillow among them, for one chart type), gives byte-stable output that
diffs in review, stays a few kB, and follows the reader's dark mode (``prefers-color-scheme``
inside the SVG), as the health dashboard's charts do.

A chart is groups (one per table cell group, e.g. ``pk, 16 tasks``) of bars (one per path); each
bar is a ratio to the baseline measured in the same run, drawn from 0 with a line at 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape as _escape
from pathlib import Path

__all__ = ["Group", "write_ratio_chart"]

Group = tuple[str, Sequence[tuple[str, float]]]  # (group label, [(bar label, ratio), ...])

_COLOURS = ["#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e", "#57606a"]
_DARK = ["#4493f8", "#ab7df8", "#db61a2", "#3fb950", "#d29922", "#f85149", "#9198a1"]
WIDTH, LABEL, BAR, GAP = 640, 150, 14, 10


def escape(text: str) -> str:
    """XML-escaped, without the control characters XML 1.0 forbids (a label is data)."""
    return _escape("".join(c for c in text if c.isprintable()))


def write_ratio_chart(
    path: str | Path, *, title: str, baseline: str, groups: Sequence[Group], note: str = ""
) -> None:
    """Write the chart to ``path``; ``baseline`` names what 1.0 is (e.g. ``plain-sqla``)."""
    series = list(dict.fromkeys(label for _, bars in groups for label, _ in bars))
    top = max([1.0, *(r for _, bars in groups for _, r in bars)])
    room = 7 * (6 + max(map(len, series))) if len(series) > 1 else 40  # the value's label
    scale = (WIDTH - LABEL - room) / top
    y = 44
    body = []

    def legend(label: str) -> str:  # one series: its name says nothing the title does not
        return f" {escape(label)}" if len(series) > 1 else ""

    for name, bars in groups:
        body.append(f'<text class="g" x="4" y="{y + 11}">{escape(name)}</text>')
        for label, ratio in bars:
            k = series.index(label)
            w = max(ratio * scale, 1)
            body.append(
                f'<rect class="c{k}" x="{LABEL}" y="{y}" width="{w:.1f}" height="{BAR}">'
                f"<title>{escape(label)}: {ratio:.3f}</title></rect>"
                f'<text x="{LABEL + w + 4:.1f}" y="{y + 11}">{ratio:.2f}{legend(label)}</text>'
            )
            y += BAR + 2
        y += GAP
    one = LABEL + scale
    height = y + (18 if note else 4)
    style = "".join(f".c{i}{{fill:{c}}}" for i, c in enumerate(_COLOURS))
    dark = "".join(f".c{i}{{fill:{c}}}" for i, c in enumerate(_DARK))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="t d">'
        f'<title id="t">{escape(title)}</title>'
        f'<desc id="d">{escape(_describe(baseline, groups))}</desc>'
        "<style>svg{background:#fff}text{font:11px system-ui,sans-serif;fill:#1f2328;"
        "paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}"
        ".g{font-weight:600}.one{stroke:#cf222e;stroke-dasharray:4 3}.h{font-size:13px}"
        f"{style}@media (prefers-color-scheme:dark){{svg{{background:#0d1117}}"
        f"text{{fill:#e6edf3;stroke:#0d1117}}.one{{stroke:#f85149}}{dark}}}</style>"
        f'<text class="h g" x="4" y="16">{escape(title)}</text>'
        f'<text x="4" y="32">ratio to {escape(baseline)} in the same run (1.0 = dashed line)</text>'
        + "".join(body)
        + f'<path class="one" d="M{one:.1f} 38V{y - GAP + 2}"/>'
        + (f'<text x="4" y="{height - 6}">{escape(note)}</text>' if note else "")
        + "</svg>\n"
    )
    Path(path).write_text(svg, encoding="utf-8")


def _describe(baseline: str, groups: Sequence[Group]) -> str:
    parts = [
        f"{name}: " + ", ".join(f"{label} {ratio:.2f}" for label, ratio in bars)
        for name, bars in groups
    ]
    return f"Ratios to {baseline}. " + "; ".join(parts) + "."
