"""The fairness section as a reviewer reads it: when no group of any grouping can be judged
(no sensitive column, identity terms rare), one sentence says so and why, the groups sit in a
collapsed ``<details>`` block, and no chart of such groups is drawn; results.json keeps every
row. A control with judgeable groups keeps its table and chart in view (issue 19, item 2)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from audit.auditors.fairness._auditor import FairnessAuditor
from audit.auditors.fairness._bias_auc import NO_SUBGROUP_JUDGED
from audit.auditors.fairness._groups import NOTHING_JUDGED, nothing_judged_sentence
from audit.auditors.fairness._inputs import JUDGED, TOO_SMALL
from audit.report.html import render_section
from tests._text import one_line
from tests.auditors.test_fairness import _KeywordTarget
from tests.conftest import make_context

FAST = {"positive_label": "positive", "n_bootstrap": 60, "counterfactual": False, "mitigation": False}
WORDS = (("great", "positive"), ("awful", "negative"), ("fine", "neutral"))
MIN_N = 20


def _run(tmp_path: Path, rows: list[dict[str, str]], **config: Any) -> Any:
    path = tmp_path / "eval.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = FairnessAuditor(min_group_size=MIN_N, **FAST).run(make_context(path, _KeywordTarget(), **config))
    assert result.status == "ok", result.reason
    return result


def _rare_terms() -> list[dict[str, str]]:
    """SST-2-like: 120 rows, identity terms in a handful of them (2-4 rows per term)."""
    rows = [{"text": f"the film was {WORDS[i % 3][0]}", "label": WORDS[i % 3][1]} for i in range(120)]
    for term, n in (("young", 3), ("elderly", 2), ("teenage", 4), ("woman", 3), ("man", 2)):
        rows += [{"text": f"the {term} one said it was {WORDS[i % 3][0]}", "label": WORDS[i % 3][1]} for i in range(n)]
    return rows


def _without_full_tables(html: str) -> str:
    """Without the 'all columns' toggles of wide tables (they hold no other details block)."""
    return re.sub(r'<details class="full-table">.*?</details>', "", html, flags=re.S)


def _details(html: str) -> list[str]:
    return re.findall(r"<details[^>]*>.*?</details>", _without_full_tables(html), flags=re.S)


def _outside_details(html: str) -> str:
    return re.sub(r"<details[^>]*>.*?</details>", "", _without_full_tables(html), flags=re.S)


def _group_section(html: str) -> str:
    """The group-fairness part of the section (up to the next part's heading)."""
    start = html.index("<h3>Group fairness</h3>")
    end = html.find("<h3>", start + 1)
    return html[start:end if end != -1 else len(html)]


@pytest.fixture(scope="module")
def rare(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _run(tmp_path_factory.mktemp("rare"), _rare_terms())


def test_nothing_judgeable_is_one_sentence_with_the_count_and_the_minimum(rare: Any) -> None:
    groups = rare.table("groups").to_frame()
    assert len(groups) == 5 and set(groups["status"]) == {TOO_SMALL}  # results.json keeps every row
    info = rare.extra["groups_unjudged"]
    assert info["groups"] == 5 and info["min_group_size"] == MIN_N
    part = _group_section(render_section(rare))
    shown = one_line(_outside_details(part))
    sentence = NOTHING_JUDGED.format(groups=5, names=", ".join(info["slices"]), min_n=MIN_N)
    assert sentence in shown
    assert "5 groups seen" in shown and f"min_group_size = {MIN_N}" in shown and "--sensitive" in shown
    # Outside the collapsed block: that sentence, no table, no chart, no per-slice notes.
    assert "<table" not in _outside_details(part) and "<figure" not in part and "<svg" not in part
    assert "no headline metrics" not in render_section(rare) and "Headline metrics" not in part


def test_the_unjudgeable_groups_sit_in_a_collapsed_details_block(rare: Any) -> None:
    blocks = _details(_group_section(render_section(rare)))
    assert len(blocks) == 1 and " open" not in blocks[0].split(">")[0]  # closed until clicked
    block = one_line(blocks[0])
    assert "<table" in block and block.count(TOO_SMALL) >= 5
    for term in ("young", "elderly", "teenage", "woman", "man"):
        assert f"<td>{term}</td>" in block


def test_no_chart_of_only_unjudgeable_groups(rare: Any) -> None:
    assert not [f for f in rare.figures if f.name.startswith(("selection_rate:", "headline:", "bias_auc"))]


def test_bias_aucs_of_only_unjudgeable_subgroups_are_one_sentence_and_collapsed(rare: Any) -> None:
    assert len(rare.table("bias_auc").rows) == 5  # results.json keeps every subgroup
    html = render_section(rare)
    part = html[html.index("<h3>Identity-term subgroups: bias AUCs</h3>"):]
    part = part[:part.find("<h3>", 5)] if "<h3>" in part[5:] else part
    assert NO_SUBGROUP_JUDGED.format(subgroups=5, min_n=MIN_N) in one_line(_outside_details(part))
    assert "<table" not in _outside_details(part)
    (block,) = _details(part)
    assert block.count(TOO_SMALL) == 5


def test_a_judgeable_control_keeps_its_table_and_chart_in_view(tmp_path: Path) -> None:
    rows = [{"text": f"the {a} one said it was {w}", "label": lab, "age_group": a}
            for a in ("young", "elderly") for w, lab in WORDS for _ in range(10)]
    result = _run(tmp_path, rows, sensitive=["age_group"])
    assert set(result.table("groups").to_frame()["status"]) == {JUDGED}
    assert "groups_unjudged" not in result.extra
    part = _group_section(render_section(result))
    assert not _details(part) and "No group could be judged" not in part
    assert "bias_auc_unjudged" not in result.extra
    assert 'data-figure="selection_rate:age_group"' in part and "<svg" in part
    assert "<td>elderly</td>" in part and "Headline metrics" in part


def test_a_mixed_report_collapses_only_the_slices_with_nothing_judged(tmp_path: Path) -> None:
    """A sensitive column with judged groups, and identity terms too rare to judge beside it."""
    rows = [{"text": f"the film was {w}", "label": lab, "age_group": a}
            for a in ("young", "elderly") for w, lab in WORDS for _ in range(10)]
    rows += [{"text": f"the {t} one said it was {w}", "label": lab, "age_group": "young"}
             for t in ("woman", "man") for w, lab in WORDS[:2]]
    path = tmp_path / "eval.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    result = FairnessAuditor(min_group_size=MIN_N, identity_groups="always", **FAST).run(
        make_context(path, _KeywordTarget(), sensitive=["age_group"]))
    info = result.extra["groups_unjudged"]
    assert info["slices"] == ["gender"] and info["groups"] == 2
    part = _group_section(render_section(result))
    assert "Nothing could be judged in 1 of 2 groupings (gender)" in one_line(part)
    (block,) = _details(part)
    assert "<td>woman</td>" in block and "<td>elderly</td>" not in block
    assert "<td>elderly</td>" in _outside_details(part)
    assert 'data-figure="selection_rate:age_group"' in part and 'selection_rate:gender' not in part


def test_the_sentence_is_empty_when_every_slice_has_a_judged_group() -> None:
    rows = [{"slice": "a", "status": JUDGED}, {"slice": "a", "status": TOO_SMALL}]
    assert nothing_judged_sentence(rows, min_group_size=30) == ""
    rows.append({"slice": "b", "status": TOO_SMALL})
    sentence = nothing_judged_sentence(rows, min_group_size=30)
    assert sentence.startswith("Nothing could be judged in 1 of 2 groupings (b): their 1 groups")


def test_a_chart_of_all_equal_rates_has_no_degenerate_axis() -> None:
    """Every rate 0 with 0-0 intervals: matplotlib alone draws -0.04 to 0.04; the axis is the unit
    interval. Equal non-zero rates are bars from 0, so their axis runs from 0 past the value."""
    from audit.core.results import Figure
    from audit.report import charts
    from tests.test_charts import _ticks

    for value, top in ((0.0, 1.0), (0.4, 0.4)):
        svg = charts.draw(Figure.bar("flat", labels=["a", "b", "c"], values=[value] * 3, ci_low=[value] * 3,
                                     ci_high=[value] * 3))
        xs = _ticks(svg, "x")
        assert xs and min(xs) <= 0.0 and max(xs) >= top, xs
