"""The report's work done ahead while auditors run side by side (audit.report.prep): figures drawn
ahead give the very page drawn at the end and are not drawn twice; nothing drawn ahead outlives
its run; the driver's idle pieces run while workers work and never change their results."""

from __future__ import annotations

import time
from typing import Any

import pytest

import audit.report.html as html
from audit.core.results import AuditorResult, AuditReport, Figure
from audit.engine import forked
from audit.report.prep import ReportPrep
from tests.test_scorecard import _meta


def _result() -> AuditorResult:
    figures = (Figure.bar("rates", labels=["a", "b"], values=[0.2, 0.7], title="Rates"),
               Figure.lines("curve", series=[("m", [1, 2, 3], [0.1, 0.4, 0.2])], title="Curve", xlabel="k",
                            ylabel="v"),
               Figure.bar("tall", labels=["x"], values=[1.0], title="Tall"))
    return AuditorResult(auditor="toxicity", figures=figures)  # generic section: every figure


def _report(result: AuditorResult) -> AuditReport:
    return AuditReport(metadata=_meta(), results=[result])


def _counting_draw(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    drawn: list[str] = []
    real = html._draw

    def draw(fig: Figure) -> tuple[str, str]:
        drawn.append(fig.name)
        return real(fig)

    monkeypatch.setattr(html, "_draw", draw)
    monkeypatch.setattr(html, "PARALLEL_FIGURES", 10**6)  # drawn here, where the count sees them
    return drawn


def test_figures_drawn_ahead_give_the_same_page_and_are_not_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = html.render_html(_report(_result()))
    assert expected.count("<svg") >= 3
    drawn = _counting_draw(monkeypatch)
    result = _result()
    prep = ReportPrep(["toxicity"])
    prep.add(result)
    steps = 0
    while prep.step():
        steps += 1
    assert steps >= 3 and sorted(drawn) == ["curve", "rates", "tall"]  # one piece per figure, and the warm-ups
    assert html.render_html(_report(result)) == expected
    assert sorted(drawn) == ["curve", "rates", "tall"]  # none drawn again at the end
    assert not html._DRAWN  # the page is written: the cache is empty


def test_only_the_very_figure_drawn_ahead_is_taken_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed by the figure object: an equal figure of another report is drawn anew
    (a reused id of a figure long gone would otherwise show the wrong chart)."""
    drawn = _counting_draw(monkeypatch)
    html.predraw(list(_result().figures))
    assert len(drawn) == 3
    html.render_html(_report(_result()))
    assert len(drawn) == 6


def test_a_run_that_ends_without_a_report_lets_its_figures_go() -> None:
    prep = ReportPrep(["toxicity"])
    prep.add(_result())
    while prep.step():
        pass
    assert len(html._DRAWN) == 3
    prep.close()
    assert not html._DRAWN


def test_a_failing_piece_is_skipped_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_figs: Any) -> None:
        raise RuntimeError("matplotlib is broken")

    monkeypatch.setattr(html, "predraw", broken)
    prep = ReportPrep(["toxicity"])
    prep.add(_result())
    while prep.step():
        pass
    assert html.render_html(_report(_result())).count("<svg") >= 3  # drawn at the end instead


def _slow(i: int) -> int:
    time.sleep(0.3)
    return i * 2


def test_the_driver_does_its_own_pieces_while_workers_work() -> None:
    pieces = list(range(5))
    calls: list[float] = []

    def idle() -> bool:
        calls.append(time.perf_counter())
        if pieces:
            pieces.pop()
        return bool(pieces)

    start = time.perf_counter()
    out = forked._forked(_slow, 4, workers=2, what="test", progress=None, desc="", stop=None, idle=idle)
    end = time.perf_counter()
    assert out == [0, 2, 4, 6]
    assert not pieces and all(start < t < end for t in calls)
    # Once it says nothing is left it is asked again only after a worker speaks (4 results here).
    assert len(calls) <= 5 + 4


def test_figures_slow_to_draw_are_left_to_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """A piece holds up the relaying, so a heatmap over 400 cells (60 x 60 took 3.7 s to draw here)
    is not drawn ahead; it is drawn at the end like any other, and the page is complete."""
    from audit.report.prep import quick_to_draw

    cells = [[float(i * j) for j in range(21)] for i in range(21)]
    big = Figure.heatmap("confusion", cells=cells, rows=[str(i) for i in range(21)],
                         columns=[str(i) for i in range(21)])
    small = Figure.heatmap("small", cells=[[1.0, 2.0], [3.0, 4.0]], rows=["a", "b"], columns=["c", "d"])
    assert not quick_to_draw(big) and quick_to_draw(small) and all(quick_to_draw(f) for f in _result().figures)
    assert not quick_to_draw(Figure("odd", "heatmap", {"cells": 3}, ""))  # data not of its kind
    drawn = _counting_draw(monkeypatch)
    result = AuditorResult(auditor="toxicity", figures=(big, small))
    prep = ReportPrep(["toxicity"])
    prep.add(result)
    while prep.step():
        pass
    assert drawn == ["small"]
    page = html.render_html(_report(result))
    assert drawn == ["small", "confusion"] and page.count('<figure class="chart"') == 2
