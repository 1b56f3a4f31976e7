"""Word heat-map colours for attributions, computed when the report is rendered.

The explainability result holds each word's score; the colour of a word is its score relative
to the largest magnitude in its row, blue for words that push toward the explained class and red
for words that push away. Only the rgba() string made here reaches a style attribute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

SUPPORT_RGB = (59, 110, 168)  # charts.PALETTE[0]: pushes toward the explained class
OPPOSE_RGB = (182, 74, 74)  # charts.PALETTE[3]: pushes away from it
MAX_ALPHA = 0.85  # the strongest word stays readable under dark text
LEGEND = (("strongly against", -1.0), ("against", -0.4), ("neutral", 0.0), ("for", 0.4), ("strongly for", 1.0))


def heat_colour(value: Any, scale: float) -> str:
    """A CSS rgba() background for a word scored ``value`` in a row whose largest |score| is ``scale``."""
    value = _score(value)
    alpha = 0.0 if not scale > 0 else min(1.0, abs(value) / scale) * MAX_ALPHA
    r, g, b = SUPPORT_RGB if value >= 0 else OPPOSE_RGB
    return f"rgba({r}, {g}, {b}, {alpha:.3f})"


def heat_words(words: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Jinja2 filter: a row's words (``{"word", "score"}``) with the ``colour`` of each, scaled to the row."""
    words = list(words)
    scale = max((abs(_score(w.get("score"))) for w in words), default=0.0)
    return [{**w, "colour": heat_colour(w.get("score"), scale)} for w in words]


def _score(value: Any) -> float:
    """A word's score as a finite number; a missing score (NaN in results.json) counts as 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return float(value)


def heat_legend() -> list[dict[str, str]]:
    """The legend under the heat-mapped rows: a label and its colour."""
    return [{"label": label, "colour": heat_colour(v, 1.0)} for label, v in LEGEND]
