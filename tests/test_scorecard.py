"""The first-screen scorecard: a verdict per area from the declared rules, stored in results.json,
printed first by the HTML report and the README card (issue 19, item 1)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from audit.core.results import AuditorResult, AuditReport, Finding, Metric
from audit.core.schema import validate_results
from audit.core.scorecard import (
    KEY_NUMBERS,
    SCORECARD_VERDICTS,
    VERDICT_RULES,
    Scorecard,
    ScorecardRow,
    build_scorecard,
    score_row,
)
from audit.core.verdicts import PolicyOutcome, PolicyVerdict

HOSTILE = '<script>alert("x")</script> | **bold** [link](http://evil)'


def _meta() -> dict[str, Any]:
    return {
        "tool_version": "0", "seed": 0, "created": "now",
        "model": {"name": "m", "problem_type": "single_label_classification", "num_labels": 2,
                  "labels": ["neg", "pos"], "fingerprint": "0" * 64, "architecture": "Bert", "parameters": 1,
                  "max_length": 8},
        "data": {"source": "d.csv", "rows": 10, "rows_in_file": 10, "fingerprint": "0" * 64, "truncated_rows": 0,
                 "text_col": "text"},
        "environment": {"python": "3.11", "device": "cpu", "dtype": "float32", "packages": {}},
        "config": {}, "timings": {}, "auditor_titles": {"fairness": "Fairness", "toxicity": "Toxicity check"},
        "model_card": {},
    }


def _fairness(*findings: Finding, ratio: float | None = 0.9) -> AuditorResult:
    metrics = [Metric("demographic_parity_ratio", 0.95, 0.9, 1.0, True, slice="gender")]
    if ratio is not None:
        metrics.append(Metric("demographic_parity_ratio", ratio, ratio - 0.1, ratio + 0.05, True, slice="age"))
    return AuditorResult(auditor="fairness", metrics=tuple(metrics) if ratio is not None else (), findings=findings)


# ------------------------------------------------------------------------------- the rules


def test_rules_are_one_declared_table_ending_with_a_rule_that_always_applies():
    assert [r.verdict for r in VERDICT_RULES][-1] == "no concern found"
    assert {r.verdict for r in VERDICT_RULES} == set(SCORECARD_VERDICTS)
    assert len({r.id for r in VERDICT_RULES}) == len(VERDICT_RULES)
    assert all(r.text.endswith(".") for r in VERDICT_RULES)


def test_key_numbers_name_metrics_their_auditors_declare():
    from audit.auditors.base import discover

    registry = discover()
    for auditor, spec in KEY_NUMBERS.items():
        declared = registry[auditor].cls.metric_names
        for key in (spec.key, *spec.also):
            assert set(key.metrics) <= declared, (auditor, key.metrics)


def test_a_taggers_fairness_and_robustness_rows_read_their_token_metrics():
    """A token classifier reports no demographic parity or attack accuracy: its rows read the name-swap
    recognition ratio and the entity F1 under perturbation instead (worst slice)."""
    fair = AuditorResult(auditor="fairness", metrics=(
        Metric("name_recognition_ratio", 0.4, 0.3, 0.5, True, slice="origin=yo_NG"),
        Metric("name_recognition_ratio", 0.9, 0.8, 1.0, True, slice="origin=es_MX"),
        Metric("entity_switched_f1_gap", 0.3, 0.2, 0.4, False, slice="origin=yo_NG")))
    row = score_row(fair)
    assert (row.key.metric, row.key.slice, row.key.value) == ("name_recognition_ratio", "origin=yo_NG", 0.4)
    assert [(a.metric, a.value) for a in row.also] == [("entity_switched_f1_gap", 0.3)]
    robust = AuditorResult(auditor="robustness", metrics=(
        Metric("token_perturbed_entity_f1", 0.2, 0.1, 0.3, True, slice="lower"),
        Metric("token_perturbed_entity_f1", 0.8, 0.7, 0.9, True, slice="typo"),
        Metric("token_entity_f1_drop", 0.6, 0.5, 0.7, False, slice="lower")))
    row = score_row(robust)
    assert (row.key.metric, row.key.slice, row.key.value) == ("token_perturbed_entity_f1", "lower", 0.2)


def test_a_warn_finding_is_a_concern_naming_the_worst_finding():
    row = score_row(_fairness(Finding("info", "fine"), Finding("warn", "group x is lower"),
                              Finding("fail", "group elderly is far lower")))
    assert row.verdict == "concern" and row.rule == "finding"
    assert row.reason.startswith("fail: group elderly is far lower") and "(and 1 more)" in row.reason
    assert row.rule_text == next(r.text for r in VERDICT_RULES if r.id == "finding")


def test_the_worst_slice_is_the_key_number():
    row = score_row(_fairness(ratio=0.6))
    assert (row.key.metric, row.key.slice, row.key.value) == ("demographic_parity_ratio", "age", 0.6)
    assert row.key.ci_low == pytest.approx(0.5) and row.key.ci_high == pytest.approx(0.65)
    assert row.verdict == "no concern found" and row.rule == "clear"


def test_a_skipped_or_failed_section_is_not_judgeable_with_its_reason():
    skipped = score_row(AuditorResult(auditor="fairness", status="skipped", reason="multi-label models"))
    failed = score_row(AuditorResult(auditor="privacy", status="failed", reason="RuntimeError: boom",
                                     findings=(Finding("fail", "half done"),)))
    assert skipped.verdict == failed.verdict == "not judgeable"
    assert skipped.reason == "section skipped: multi-label models" and skipped.key is None
    assert failed.reason == "section failed: RuntimeError: boom"


def test_fairness_without_a_comparable_group_is_not_judgeable_and_says_why():
    row = score_row(_fairness(Finding("info", "25 groups too small to judge"), ratio=None))
    assert row.verdict == "not judgeable" and row.rule == "no_key_number"
    assert "--sensitive" in row.reason and row.key is None


def test_a_failed_policy_rule_is_a_concern_even_without_a_finding():
    outcome = PolicyOutcome(kind="threshold", rule="fairness.demographic_parity_ratio >= 0.95", outcome="fail",
                            auditor="fairness", metric="demographic_parity_ratio", value=0.9)
    other = PolicyOutcome(kind="threshold", rule="privacy.mia_auc <= 0.5", outcome="fail", auditor="privacy")
    card = build_scorecard(results=[_fairness()], policy=[outcome, other])
    assert card.row("fairness").verdict == "concern" and card.row("fairness").rule == "policy"
    assert "fairness.demographic_parity_ratio >= 0.95" in card.row("fairness").reason
    assert "privacy" not in card.row("fairness").reason


def test_a_plugin_auditor_gets_a_row_from_its_findings_without_a_number():
    results = [AuditorResult(auditor="toxicity", metrics=(Metric("toxic_share", 0.3),),
                             findings=(Finding("warn", "30% toxic"),)),
               AuditorResult(auditor="toxicity2", metrics=(Metric("toxic_share", 0.0),))]
    card = build_scorecard(results=results, titles={"toxicity": "Toxicity check"})
    toxic, clean = card.rows
    assert (toxic.area, toxic.verdict, toxic.key) == ("Toxicity check", "concern", None)
    assert toxic.reason == "warn: 30% toxic"
    assert (clean.area, clean.verdict, clean.key) == ("toxicity2", "no concern found", None)
    assert "no declared key number" in clean.reason


def test_a_bad_verdict_word_is_refused():
    with pytest.raises(ValueError, match="scorecard verdict must be one of"):
        ScorecardRow(area="a", auditor="a", verdict="fine")  # type: ignore[arg-type]


# --------------------------------------------------------------------- stored and rendered


def _report(*results: AuditorResult) -> AuditReport:
    outcomes = (PolicyOutcome(kind="threshold", rule="fairness.demographic_parity_ratio >= 0.8", outcome="pass",
                              auditor="fairness", metric="demographic_parity_ratio", value=0.9),)
    report = AuditReport(metadata=_meta(), results=list(results), policy=PolicyVerdict(outcomes))
    report.scorecard = build_scorecard(results=report.results, policy=report.policy.outcomes,
                                       titles=report.metadata["auditor_titles"])
    return report


def test_results_json_holds_the_scorecard_validates_and_round_trips():
    report = _report(_fairness(Finding("warn", HOSTILE)),
                     AuditorResult(auditor="privacy", status="skipped", reason="no train data"))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    validate_results(data)
    assert [r["verdict"] for r in data["scorecard"]["rows"]] == ["concern", "not judgeable"]
    assert [r["id"] for r in data["scorecard"]["rules"]] == [r.id for r in VERDICT_RULES]
    assert AuditReport.from_dict(data).scorecard == report.scorecard
    data["scorecard"]["rows"][0]["verdict"] = "fine"
    with pytest.raises(Exception, match="fine"):
        validate_results(data)


def test_a_results_json_without_a_scorecard_reads_as_an_empty_one():
    assert Scorecard.from_dict(None) == Scorecard() and not Scorecard().rows


def test_html_shows_the_scorecard_first_and_escapes_hostile_text():
    from audit.report.html import render_html

    html = render_html(_report(_fairness(Finding("warn", HOSTILE))))
    assert 'id="scorecard"' in html
    assert html.index('id="scorecard"') < html.index('id="summary"') < html.index("Summary of findings</h2>")
    assert html.index('id="scorecard"') < html.index('class="toc"')
    assert "<script>" not in html and "&lt;script&gt;" in html
    row = re.search(r'<tr class="sc-row sc-concern" data-auditor="fairness">(.*?)</tr>', html, re.S)
    assert row is not None and 'href="#sec-fairness"' in row.group(1) and "0.900" in row.group(1)
    assert "Rule: Any warn or fail finding" in row.group(1)


def test_readme_card_has_the_same_rows_first():
    from audit.report.markdown import render_markdown

    report = _report(_fairness(Finding("warn", HOSTILE)),
                     AuditorResult(auditor="toxicity", findings=(Finding("info", "ok"),)))
    md = render_markdown(report)
    assert md.index("## Scorecard") < md.index("## Summary of findings")
    lines = [ln for ln in md[md.index("## Scorecard"):md.index("## Summary of findings")].splitlines()
             if ln.startswith("| [")]
    assert len(lines) == len(report.scorecard.rows) == 2
    for line, row in zip(lines, report.scorecard.rows, strict=True):
        assert row.verdict in line and row.rule_text.split(";")[0] in line
    assert "(#fairness)" in lines[0] and "(#toxicity-check)" in lines[1]
    assert "0.900 (95% CI 0.800–0.950)" in lines[0]
    assert "<script>" not in md and "\\| \\*\\*bold" in lines[0]
    assert all(line.count(" | ") == 4 for line in lines)  # the hostile pipe did not add a column


# ------------------------------------------------------------------------ the planted demo


@pytest.fixture(scope="module")
def planted_report(demo_planted, tmp_path_factory) -> AuditReport:
    from audit.config import AuditConfig
    from audit.runner import run_audit

    out = tmp_path_factory.mktemp("scorecard-planted")
    cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(out / "r"),
                      train_data=str(demo_planted.train_path), sensitive=["age_group"], limit=400,
                      auditors=["performance", "fairness", "privacy"],
                      options={"performance": {"n_bootstrap": 200},
                               "fairness": {"n_bootstrap": 200, "mitigation": False},
                               "privacy": {"n_bootstrap": 200, "mia_examples": 400, "pii": False}})
    return run_audit(cfg, progress=False)


@pytest.mark.slow
def test_planted_demo_scorecard_names_the_biased_group_and_the_leak(planted_report):
    card = planted_report.scorecard
    assert [r.auditor for r in card.rows] == ["performance", "fairness", "privacy"]
    fairness, privacy = card.row("fairness"), card.row("privacy")
    assert fairness.verdict == "concern" and "elderly" in fairness.reason
    assert fairness.key.metric == "demographic_parity_ratio" and fairness.key.value < 0.8
    assert fairness.key.ci_low is not None and fairness.key.ci_low <= fairness.key.value <= fairness.key.ci_high
    assert privacy.verdict == "concern" and "Membership inference" in privacy.reason
    assert privacy.key.metric == "mia_leakage_margin" and privacy.key.value > 0.1
    assert card.row("performance").key.metric == "accuracy"


@pytest.mark.slow
def test_planted_demo_files_carry_the_same_scorecard(planted_report, tmp_path_factory):
    out = planted_report.metadata["config"]["out"]
    from pathlib import Path

    data = json.loads((Path(out) / "results.json").read_text())
    validate_results(data)
    assert Scorecard.from_dict(data["scorecard"]) == planted_report.scorecard
    html = (Path(out) / "report.html").read_text()
    assert html.index('id="scorecard"') < html.index("Summary of findings</h2>")
    assert len(re.findall(r'<tr class="sc-row ', html)) == 3
    md = (Path(out) / "README.md").read_text()
    assert md.index("## Scorecard") < md.index("## Summary of findings")


@pytest.mark.slow
def test_clean_control_raises_no_fairness_concern(demo_clean, tmp_path):
    from audit.config import AuditConfig
    from audit.runner import run_audit

    cfg = AuditConfig(model=str(demo_clean.model_dir), data=str(demo_clean.eval_path), out=str(tmp_path / "c"),
                      sensitive=["age_group"], limit=400, auditors=["fairness"],
                      options={"fairness": {"n_bootstrap": 200, "mitigation": False}})
    row = run_audit(cfg, progress=False, write=False).scorecard.row("fairness")
    assert row.verdict == "no concern found", row.reason
    # The worst max/min ratio of 400 rows is noisy (0.78 here); the auditor judges each group against
    # the rest with adjusted intervals and finds nothing, and the interval reaches the four-fifths line.
    assert row.key.metric == "demographic_parity_ratio" and row.key.ci_low <= row.key.value <= row.key.ci_high
    assert row.key.ci_high > 0.8
