"""Auditors emit data, the report draws it: figures round-trip through results.json, every figure
of a full run is redrawn from results.json alone, flat data gets a readable axis, and word
heat-map colours are computed from the scores at render time."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from audit.core.results import BAD_FIGURE_KIND, AuditorResult, AuditReport, Figure
from audit.report import charts

# ------------------------------------------------------------------------------------ helpers

_TICK = re.compile(r'<g id="(?P<axis>[xy])tick_\d+">.*?<text[^>]*>(?P<label>[^<]*)</text>', re.S)


def _ticks(svg: str, axis: str) -> list[float]:
    """The numbers written under an axis's ticks (matplotlib's SVG keeps text as text)."""
    return [float(m["label"].replace("\u2212", "-")) for m in _TICK.finditer(svg) if m["axis"] == axis]


def _figures_in_html(html: str) -> dict[str, tuple[str, str]]:
    """figure name -> (kind, the markup inside its <figure>)."""
    found = {}
    for m in re.finditer(r'<figure class="chart" data-figure="([^"]*)" data-kind="([^"]*)">(.*?)</figure>', html, re.S):
        found[m[1].replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")] = (m[2], m[3])
    return found


# ------------------------------------------------------------------------------ the data type


def test_a_figure_round_trips_through_json_and_validates_against_the_schema():
    from audit.core.schema import validate_result

    figures = (Figure.bar("b", labels=["x", "y"], values=[0.2, float("nan")], ci_low=[0.1, None], ci_high=[0.3, None],
                          reference=0.8, reference_label="threshold", caption="c"),
               Figure.heatmap("h", cells=[[3, 1], [0, 4]], rows=["a", "b"], columns=["a", "b"], decimals=0),
               Figure.lines("l", series=[("ROC", [0.0, 1.0], [0.0, 1.0]), ("blind", [0.0, 1.0], [0.1, 0.9])],
                            dotted=["blind"], legend="outside", xlim=(0, 1)),
               Figure.reliability("r", confidence=[0.1, float("nan")], accuracy=[0.2, float("nan")], count=[3, 0]))
    data = json.loads(json.dumps(AuditorResult(auditor="plugin", figures=figures).to_dict(), allow_nan=False))
    validate_result(data)
    again = AuditorResult.from_dict(data)
    assert [f.to_dict() for f in again.figures] == data["figures"]
    assert data["figures"][0]["data"]["bars"][1] == {"label": "y", "value": None, "ci_low": None, "ci_high": None}
    assert [s["dotted"] for s in data["figures"][2]["data"]["series"]] == [False, True]


def test_results_json_no_longer_accepts_svg_markup_for_a_figure():
    import jsonschema

    from audit.core.schema import validate_result

    old = AuditorResult(auditor="plugin").to_dict()
    old["figures"] = [{"name": "f", "caption": "", "svg": "<svg xmlns='http://www.w3.org/2000/svg'/>"}]
    with pytest.raises(jsonschema.ValidationError):
        validate_result(old)
    bad_kind = AuditorResult(auditor="plugin").to_dict()
    bad_kind["figures"] = [{"name": "f", "kind": "pie", "data": {}}]
    with pytest.raises(jsonschema.ValidationError):
        validate_result(bad_kind)


def test_unknown_figure_kind_is_refused():
    with pytest.raises(ValueError, match=re.escape(BAD_FIGURE_KIND.split("{")[0])):
        Figure("f", "pie", {})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ drawing


def test_a_flat_line_gets_a_readable_axis_not_a_zoom_into_rounding():
    """matplotlib zooms into +-0.04 around a flat 0, which reads as if the curves differed."""
    svg = charts.draw(Figure.lines("flat", series=[("a", [1, 2, 3], [0.0, 0.0, 0.0]), ("b", [1, 2, 3], [0, 0, 0])]))
    ys = _ticks(svg, "y")
    assert ys and min(ys) <= 0.0 and max(ys) - min(ys) >= 0.5, ys
    assert _ticks(svg, "x") == pytest.approx([1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0])  # spread: untouched


def test_flat_bars_and_flat_rates_get_the_unit_interval():
    bars = charts.draw(Figure.bar("zero", labels=["a", "b"], values=[0.0, 0.0]))
    xs = _ticks(bars, "x")
    assert min(xs) <= 0.0 and max(xs) >= 1.0, xs
    rates = charts.draw(Figure.lines("rate", series=[("a", [0, 1], [0.7, 0.7])]))
    ys = _ticks(rates, "y")
    assert min(ys) <= 0.0 and max(ys) >= 1.0, ys
    big = charts.draw(Figure.lines("count", series=[("a", [0, 1], [250.0, 250.0])]))
    ys = _ticks(big, "y")
    assert min(ys) <= 240 and max(ys) >= 260, ys


def test_data_with_spread_keeps_matplotlibs_limits():
    assert charts.flat_limits([0.1, 0.2]) is None
    assert charts.flat_limits([0.0, 0.0]) == (-0.05, 1.05)
    assert charts.flat_limits([0.0], include=[0.8]) is None  # a bar from 0 to a reference line


def test_dotted_series_and_outside_legend_are_drawn_from_the_data():
    figure = Figure.lines("roc", series=[("attack", [0.01, 1.0], [0.02, 1.0]),
                                         ("blind: length", [0.01, 1.0], [0.01, 1.0])],
                          dotted=["blind: length"], log_x=True, log_y=True, legend="outside")
    svg = charts.draw(figure)
    assert "stroke-dasharray" in svg  # the dotted baseline
    assert "attack" in svg and "blind: length" in svg  # both in the legend


# ------------------------------------------------------------------------------ word heat map


def test_word_colours_are_scaled_to_the_strongest_word_of_the_row():
    from audit.report.heat import MAX_ALPHA, heat_words

    words = heat_words([{"word": "good", "score": 2.0}, {"word": "bad", "score": -1.0}, {"word": "the", "score": 0.0},
                        {"word": "nan", "score": None}])
    assert words[0]["colour"] == f"rgba(59, 110, 168, {MAX_ALPHA:.3f})"
    assert words[1]["colour"] == f"rgba(182, 74, 74, {MAX_ALPHA / 2:.3f})"
    assert words[2]["colour"].endswith(", 0.000)") and words[3]["colour"].endswith(", 0.000)")
    assert heat_words([{"word": "x", "score": 0.0}])[0]["colour"] == "rgba(59, 110, 168, 0.000)"


# ---------------------------------------------------------------------- redraw from results.json


@pytest.mark.slow
def test_every_figure_of_a_full_run_is_redrawn_from_results_json_alone(demo_planted: Any, tmp_path: Any) -> None:
    from audit import AuditConfig, run_audit
    from audit.report.html import render_html

    options = {"performance": {"n_bootstrap": 50},
               "fairness": {"n_bootstrap": 50, "max_counterfactual_rows": 40, "mitigation": False},
               "explainability": {"explain_examples": 4, "n_steps": 8, "sanity_examples": 2,
                                  "methods": ["integrated_gradients", "occlusion"]},
               "robustness": {"attack_examples": 3, "recipes": ["deepwordbug"], "invariance_examples": 20},
               "privacy": {"mia_examples": 150, "n_bootstrap": 50}}
    cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "run"),
                      train_data=str(demo_planted.train_path), sensitive=["age_group"], seed=3, limit=300,
                      options=options)
    run_audit(cfg, progress=False)
    text = (tmp_path / "run" / "results.json").read_text()
    assert "<svg" not in text and "rgba(" not in text  # data only: no markup, no CSS

    report = AuditReport.from_dict(json.loads(text))
    expected = {f.name: f for r in report.results for f in r.figures}
    assert {f.kind for f in expected.values()} == {"bar", "heatmap", "lines", "reliability"}
    assert {"confusion_matrix", "reliability", "roc", "pr", "bias_auc_heatmap", "counterfactual_effects",
            "faithfulness_comprehensiveness", "sanity", "mia_roc"} <= set(expected)

    drawn = _figures_in_html(render_html(report))
    assert set(drawn) == set(expected)
    for name, fig in expected.items():
        kind, markup = drawn[name]
        assert kind == fig.kind, name
        assert markup.strip().startswith("<svg") and markup.count("<svg") == 1, (name, markup[:200])
        d = fig.data
        if fig.kind == "bar":
            assert all(b["label"] in markup for b in d["bars"]), name
        elif fig.kind == "heatmap":
            assert "data:image/png;base64," in markup, name  # the matrix itself
            decimals = d["decimals"]
            cells = [f"{v:.{decimals}f}" for row in d["cells"] for v in row if v is not None]
            assert all(f">{c}<" in markup for c in cells), name
        elif fig.kind == "lines":
            assert all(s["name"] in markup for s in d["series"]), name
            assert ("<tspan" in markup) == bool(d.get("log_x") or d.get("log_y")), name  # 10^k ticks: raised k
        else:
            assert "mean confidence in bin" in markup, name


    # Drawn ahead over forked workers (the default, 9 figures) or one by one here: the same page,
    # byte for byte, a figure whose data cannot be drawn included (it gets its note either way).
    import audit.report.html as html

    broken = AuditReport.from_dict(json.loads(text))
    next(f for r in broken.results for f in r.figures if f.name == "roc").data.pop("series")
    forked = render_html(broken)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(html, "PARALLEL_FIGURES", 10**6)
        assert render_html(broken) == forked
    assert html.FIGURE_NOT_DRAWN.split("{")[0] in forked and not html._DRAWN
