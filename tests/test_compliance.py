"""The compliance mapping: the shipped file names real metrics, a report is laid over it clause by
clause (evidence / concern / not assessed), and the rendered section escapes hostile text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.core.results import AuditorResult, AuditReport, Finding, Metric
from audit.core.verdicts import ClauseFinding, ClauseVerdict, ComplianceAssessment, PolicyOutcome, PolicyVerdict
from audit.errors import AuditInputError
from audit.report.compliance import (
    DISCLAIMER,
    assess,
    known_metric_names,
    load_mapping,
    reviewer_fields,
    validate_mapping,
)
from tests._text import one_line

HOSTILE = "<script>alert('x')</script>"


def _clause(rows: ComplianceAssessment, clause_id: str) -> ClauseVerdict:
    return rows.clause(clause_id)


def _rule(rule: str, value: float, outcome: str, **fields: object) -> PolicyOutcome:
    """A threshold outcome as Rule.evaluate makes it: what it judged is named by the rule."""
    from audit.core.policy import Rule

    parsed = Rule.parse(rule)
    judged = {"auditor": parsed.auditor, "metric": parsed.metric, "slice": parsed.slice, "severity": parsed.severity,
              **fields}
    return PolicyOutcome(kind="threshold", rule=rule, value=value, outcome=outcome, **judged)


def _report(policy: list[PolicyOutcome] | None = None, fairness_findings: tuple[Finding, ...] = ()) -> AuditReport:
    return AuditReport(
        metadata={},
        results=[
            AuditorResult("performance", metrics=(
                Metric("accuracy", 0.91, 0.88, 0.93, True), Metric("macro_f1", 0.90, None, None, True),
                Metric("ece", 0.03, None, None, False))),
            AuditorResult("fairness", metrics=(
                Metric("demographic_parity_ratio", 0.62, 0.55, 0.70, True, "age_group"),
                Metric("disparate_impact", 0.55, 0.45, 0.66, True, "age_group=elderly"),
                Metric("disparate_impact", 1.02, 0.90, 1.10, True, "age_group=young")),
                findings=fairness_findings),
            AuditorResult("privacy", status="skipped", reason="no training data was given"),
            AuditorResult("robustness", status="failed", reason="RuntimeError: boom"),
        ],
        policy=PolicyVerdict.of(policy or []),
    )


# ----------------------------------------------------------------------------- the mapping file

def test_every_clause_in_the_shipped_mapping_names_metrics_that_exist() -> None:
    mapping = load_mapping()
    assert mapping["version"] == 1 and mapping["reviewed"]
    assert validate_mapping(mapping, known_metric_names()) == []
    ids = [c["id"] for c in mapping["clauses"]]
    for needed in ("Art. 9", "Art. 10(2)", "Art. 10(5)", "Art. 13", "Art. 15", "MEASURE 2.3", "MEASURE 2.5",
                   "MEASURE 2.6", "MEASURE 2.7", "MEASURE 2.9", "MEASURE 2.10", "MEASURE 2.11"):
        assert any(needed in i for i in ids), needed


def test_known_names_are_the_auditors_own_metric_names() -> None:
    """One list: each auditor's metric_names covers the names its module reports, and the
    compliance map checks against exactly those."""
    from audit.auditors.privacy._auditor import METRIC_DESCRIPTIONS, PrivacyAuditor
    from audit.auditors.robustness._auditor import ATTACK_METRICS, RobustnessAuditor

    assert set(METRIC_DESCRIPTIONS) <= PrivacyAuditor.metric_names
    assert set(ATTACK_METRICS) <= RobustnessAuditor.metric_names
    known = known_metric_names()
    assert known["privacy"] == set(PrivacyAuditor.metric_names)
    assert {"pii_rows", "pii_matches"} <= known["privacy"] and "invariance_flip_rate" in known["robustness"]


def test_validate_mapping_names_unknown_auditors_and_metrics() -> None:
    mapping = {"clauses": [{"id": "X", "evidence": [{"auditor": "performance", "metric": "acuracy"},
                                                    {"auditor": "astrology", "findings": True}]}]}
    problems = validate_mapping(mapping, {"performance": {"accuracy"}})
    assert problems == ["X: auditor 'performance' reports no metric 'acuracy'", "X: unknown auditor 'astrology'"]


@pytest.mark.parametrize(("text", "match"), [
    ("version: 2\nframeworks: {a: A}\nclauses: []\n", "version must be 1"),
    ("version: 1\nframeworks: {a: A}\nclauses:\n  - {id: X, framework: b, title: t, summary: s, evidence: "
     "[{auditor: performance, findings: true}]}\n", "framework 'b' is not one of a"),
    ("version: 1\nframeworks: {a: A}\nclauses:\n  - {id: X, framework: a, title: t, summary: s, evidence: "
     "[{auditor: performance}]}\n", "either a metric or findings"),
    ("version: 1\nclauses: [oops\n", "cannot read the compliance mapping"),
])
def test_a_broken_mapping_file_is_named(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(AuditInputError, match=match):
        load_mapping(path)


# ----------------------------------------------------------------------------------- assess

def test_clean_report_gives_evidence_and_not_assessed() -> None:
    rows = assess(_report(), load_mapping())
    art15 = _clause(rows, "EU AI Act Art. 15")
    assert art15.verdict == "evidence"
    acc = next(e for e in art15.evidence if e.metric == "accuracy")
    assert (acc.value, acc.ci_low, acc.ci_high, acc.slice, acc.policy_outcome) == (0.91, 0.88, 0.93, None, None)
    assert any("robustness failed: RuntimeError: boom" in g for g in art15.gaps)
    # privacy skipped: nothing measured for it
    privacy = _clause(rows, "NIST AI RMF MEASURE 2.10")
    assert privacy.verdict == "not assessed" and privacy.evidence == ()
    assert privacy.gaps == ("privacy skipped: no training data was given",)
    # explainability absent from the report
    assert _clause(rows, "NIST AI RMF MEASURE 2.9").verdict == "not assessed"
    # without a slice in the mapping, a metric reported only per slice is taken for every slice
    bias = _clause(rows, "EU AI Act Art. 10(2)(f)-(g)")
    assert {e.slice for e in bias.evidence if e.metric == "disparate_impact"} == {
        "age_group=elderly", "age_group=young"}
    assert bias.verdict == "evidence"
    assert rows.mapping_version == 1 and rows.mapping_reviewed == str(load_mapping()["reviewed"])


def test_a_failed_policy_rule_or_a_warning_makes_a_concern() -> None:
    policy = [_rule("performance.accuracy >= 0.95 on ci_low: fail", 0.88, "fail", on="ci_low"),
              _rule("fairness.disparate_impact[age_group=young] >= 0.8", 1.02, "pass")]
    finding = Finding("warn", "Group elderly receives 'positive' at 0.55x the rate", evidence={"group": "elderly"})
    rows = assess(_report(policy, (finding, Finding("info", "just a note"))), load_mapping())
    art15 = _clause(rows, "EU AI Act Art. 15")
    assert art15.verdict == "concern"
    assert next(e for e in art15.evidence if e.metric == "accuracy").policy_outcome == "fail"
    assert next(e for e in art15.evidence if e.metric == "macro_f1").policy_outcome is None
    bias = _clause(rows, "EU AI Act Art. 10(2)(f)-(g)")
    assert bias.verdict == "concern"
    assert bias.findings == (ClauseFinding(auditor="fairness", severity="warn", title=finding.title),)
    young = next(e for e in bias.evidence if e.slice == "age_group=young")
    assert young.policy_outcome == "pass"
    # a clause whose evidence does not include the failed rule or the warning stays evidence
    assert _clause(rows, "NIST AI RMF MEASURE 2.6").verdict == "evidence"


def test_a_rule_judged_on_its_worst_slice_attaches_to_that_slice() -> None:
    """A rule without a slice, on a metric reported only per slice, judges the worst slice; its
    outcome is evidence about that slice, and a failure there is a concern for the clause."""
    worst = _rule("fairness.disparate_impact >= 0.8", 0.55, "fail", slice="age_group=elderly")
    bias = _clause(assess(_report([worst]), load_mapping()), "EU AI Act Art. 10(2)(f)-(g)")
    outcomes = {e.slice: e.policy_outcome for e in bias.evidence if e.metric == "disparate_impact"}
    assert outcomes == {"age_group=elderly": "fail", "age_group=young": None} and bias.verdict == "concern"


def test_a_passing_policy_does_not_raise_a_concern() -> None:
    policy = [_rule("performance.accuracy >= 0.85", 0.91, "pass")]
    rows = assess(_report(policy), load_mapping())
    assert _clause(rows, "EU AI Act Art. 15").verdict == "evidence"


def test_assess_works_on_a_report_read_back_from_json() -> None:
    report = _report([_rule("performance.accuracy >= 0.95", 0.91, "fail")])
    again = AuditReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert assess(again, load_mapping()) == assess(report, load_mapping())


def test_the_stored_assessment_survives_results_json() -> None:
    """results.json holds the clause verdicts; a report read back has the very same ones."""
    report = _report([_rule("performance.accuracy >= 0.95", 0.91, "fail")])
    report.compliance = assess(report, load_mapping())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["compliance"]["clauses"][0]["verdict"] in ("evidence", "concern", "not assessed")
    assert AuditReport.from_dict(data).compliance == report.compliance


# ----------------------------------------------------------------------------------- render

def _render(compliance: ComplianceAssessment, reviewer: dict) -> str:
    from audit.report.html import environment

    return environment().get_template("_compliance.html.j2").render(compliance=compliance, reviewer=reviewer)


def test_section_renders_statuses_disclaimer_and_escapes_hostile_text() -> None:
    finding = Finding("fail", f"Group {HOSTILE} is pushed away", evidence={"group": HOSTILE})
    rows = assess(_report([_rule("performance.accuracy >= 0.95", 0.91, "fail")], (finding,)), load_mapping())
    html = _render(rows, reviewer_fields({"owner": "Team <b>A</b>", "reviewer": None}))
    text = one_line(html)
    assert DISCLAIMER in text
    assert "EU AI Act (Regulation (EU) 2024/1689)" in text and "NIST AI RMF 1.0" in text
    assert text.index("EU AI Act Art. 9") < text.index("NIST AI RMF MEASURE 2.3")
    assert ">concern<" in html and ">evidence<" in html and ">not assessed<" in html
    assert "performance.accuracy</code> = 0.910 (95% CI 0.880 – 0.930)" in text
    assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<b>A</b>" not in html and "Team &lt;b&gt;A&lt;/b&gt;" in text
    assert "Missing from this audit: privacy skipped" in text


def test_reviewer_block_shows_blank_lines_for_empty_fields() -> None:
    html = _render(assess(_report(), load_mapping()), {})
    for label in ("Model owner", "Intended use", "Out-of-scope use", "Reviewer", "Decision", "Date"):
        assert f"<dt>{label}" in one_line(html)
    assert html.count('class="fill-in"') == 7
    filled = _render(ComplianceAssessment(),
                     reviewer_fields({"owner": "Risk team", "decision": "approve", "intended_use": "triage"}))
    assert filled.count('class="fill-in"') == 4 and "Risk team" in one_line(filled) and "approve" in filled
