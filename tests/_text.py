"""Rendered text as tests compare it.

Where a line breaks in rendered output is not part of what a test checks: Chromium wraps report
text by the fonts a machine has (a fresh machine with only DejaVu wrapped a sentence that another
machine kept on one line), `pdftotext -layout` pads columns with runs of spaces, and a template
may break a sentence over source lines. Every test that looks for a phrase in a PDF's text, in
rendered HTML or in the Markdown card compares through :func:`one_line`.
"""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (line breaks, page breaks, padding) made one space."""
    return _SPACE.sub(" ", text).strip()


def starts_a_line(phrase: str, text: str) -> bool:
    """Whether a line of ``text`` starts (after indentation) with ``phrase``, whatever whitespace
    separates its words: a heading at the top of a printed page, say."""
    words = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.search(rf"^\s*{words}\b", text, re.M) is not None
