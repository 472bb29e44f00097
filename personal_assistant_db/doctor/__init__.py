"""``pa-db doctor``: optimization analysis of a live database, as data.

``analyze(conn)`` runs every analysis (indexes, foreign keys, tables, statements, server settings,
pool sizing) and returns a ``Report`` of ``Finding``s with evidence and the exact fix; ``render``
turns it into text or JSON. See docs/doctor.md.
"""

from __future__ import annotations

from .analysis import analyze
from .findings import Evidence, Finding, Report, Severity
from .render import render_json, render_text

__all__ = ["Evidence", "Finding", "Report", "Severity", "analyze", "render_json", "render_text"]
