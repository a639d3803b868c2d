"""Renderers of an :class:`~auditkit.core.result.AuditResult`: a terminal table, a self-contained
HTML page, Markdown for a CI comment and JUnit XML; :mod:`.format` holds the wording they share."""

from .html import comparison_rows, explain_files, preview_files, render_html
from .text import impact_lines, render_markdown, render_text
from .junit import render_junit

__all__ = ["comparison_rows", "explain_files", "impact_lines", "preview_files", "render_html", "render_junit",
           "render_markdown", "render_text"]
