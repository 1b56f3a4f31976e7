"""The report's own work, done ahead while the auditors run side by side.

While forked processes run the auditors (:mod:`audit.core.side_by_side`) the run's own process only
relays their messages. :class:`ReportPrep` gives it, one short piece at a time when they have nothing
to say, what writing the report would do at the end anyway: import the renderers, compile the
templates, build the results validator, and draw each finished section's figures (into the cache
:func:`audit.report.html.render_html` reads). A quick audit's report then takes about 1.1 s to
write instead of 2.1-2.6 s (bench/README.md, fifth round). Each piece is best effort: one that
fails is simply done again, or reported, by the report's own code at the end. A piece holds up the
relaying (a process that finished an auditor waits for its next one meanwhile), so pieces are kept
short: figures slow to draw (large heatmaps) are left to the end.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any


class ReportPrep:
    """Pieces of the report's work for a run of ``auditors`` (names), done by :meth:`step`."""

    def __init__(self, auditors: Sequence[str]) -> None:
        self._pieces: deque[Callable[[], Any]] = deque([_import_renderers, _import_matplotlib,
                                                        lambda: _warm_templates(list(auditors)), _warm_validator])
        self._used = False

    def add(self, result: Any) -> None:
        """A finished section: its figures are drawn one per piece, those quick to draw (a piece
        holds up the relaying; the rest are drawn at the end, over forked workers)."""
        from audit.report.html import predraw

        self._pieces.extend((lambda fig=fig: predraw([fig])) for fig in getattr(result, "figures", [])
                            if quick_to_draw(fig))

    def step(self) -> bool:
        """Do one piece; returns whether more are left."""
        if self._pieces:
            piece = self._pieces.popleft()
            self._used = True
            with contextlib.suppress(Exception):  # best effort: the report's own code does it again
                piece()
        return bool(self._pieces)

    def close(self) -> None:
        """The run is over: figures drawn ahead for a report that was not written are let go."""
        if self._used:
            from audit.report.html import forget_drawn

            forget_drawn()


# A heatmap writes a number in each cell: matplotlib drew 60 x 60 cells in 3.7 s and 120 x 120 in
# 24 s here, against 0.1-0.3 s for the figures of a usual report. Larger ones are not drawn ahead.
QUICK_HEATMAP_CELLS = 400
# Points in the line or bar figures drawn ahead (a ROC curve has one per distinct score).
QUICK_POINTS = 20_000


def quick_to_draw(fig: Any) -> bool:
    """Whether ``fig`` is drawn in a fraction of a second: sized by its data, not timed."""
    data = getattr(fig, "data", None)
    if not isinstance(data, dict):
        return False
    try:
        if fig.kind == "heatmap":
            return sum(len(row) for row in data.get("cells") or []) <= QUICK_HEATMAP_CELLS
        if fig.kind == "lines":
            return sum(len(s.get("x") or []) for s in data.get("series") or []) <= QUICK_POINTS
        if fig.kind == "bar":
            return len(data.get("bars") or []) <= QUICK_POINTS
    except (TypeError, AttributeError):  # data that does not fit its kind: drawn (as a note) at the end
        return False
    return True


def _import_matplotlib() -> None:
    from audit.report.charts import _plt

    _plt()


def _import_renderers() -> None:
    import audit.report.html  # noqa: F401
    import audit.report.markdown  # noqa: F401


def _warm_templates(auditors: list[str]) -> None:
    from audit.report.html import warm_templates

    warm_templates(auditors)


def _warm_validator() -> None:
    from audit.core.schema import _validator

    _validator(None)
