"""The report's verdicts as typed values: policy outcomes and the gate's verdict, and the
compliance map's clause verdicts, stored in results.json and read back as they were; the HTML and
the Markdown card print the stored verdicts and the same limitations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from audit.core.results import SCHEMA_VERSION, AuditorResult, AuditReport, Metric, Table
from audit.core.verdicts import (
    ClauseEvidence,
    ClauseFinding,
    ClauseVerdict,
    ComplianceAssessment,
    PolicyOutcome,
    PolicyVerdict,
)
from audit.errors import AuditInputError
from audit.runner import load_baseline, validate_results
from tests._text import one_line

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert('x')</script>|*"


def _threshold(outcome: str, severity: str = "fail", **fields: object) -> PolicyOutcome:
    return PolicyOutcome(kind="threshold", rule=f"performance.accuracy >= 0.9: {severity}", outcome=outcome,
                         severity=severity, auditor="performance", metric="accuracy", **fields)


def _comparison() -> PolicyOutcome:
    return PolicyOutcome(kind="baseline", rule="performance.accuracy vs baseline (max regression 0.02)",
                         auditor="performance", metric="accuracy", outcome="fail", value=0.8, baseline=0.9,
                         ci=(0.75, 0.85), baseline_ci=(0.85, 0.95), change=-0.1, reason="worse by 0.1")


def _clause(verdict: str = "concern") -> ClauseVerdict:
    return ClauseVerdict(id="EU AI Act Art. 15", framework="eu_ai_act", framework_name="EU AI Act",
                         title="Accuracy, robustness and cybersecurity", summary="s", verdict=verdict,
                         evidence=(ClauseEvidence(auditor="performance", metric="accuracy", value=0.8, ci_low=0.75,
                                                  ci_high=0.85, policy_outcome="fail"),),
                         findings=(ClauseFinding(auditor="performance", severity="warn", title=HOSTILE),),
                         gaps=("robustness did not run",))


def _report(**fields: object) -> AuditReport:
    meta = json.loads((ROOT / "tests" / "data" / "metadata.json").read_text())
    meta["auditor_titles"] = {"performance": "Performance", "privacy": "Privacy"}
    meta["model_card"] = {"limitations": f"Not for triage {HOSTILE}"}
    return AuditReport(metadata=meta, results=[
        AuditorResult("performance", metrics=(Metric("accuracy", 0.8, 0.75, 0.85, True),),
                      tables=(Table("classification_report", ["class", "f1-score"], [["a", 0.8], ["b", 0.7]]),)),
        AuditorResult("privacy", status="skipped", reason="no training data was given")], **fields)


# ------------------------------------------------------------------------------------ policy


def test_the_gate_is_judged_once_when_the_verdict_is_made() -> None:
    assert PolicyVerdict().passed
    assert PolicyVerdict.of([_threshold("pass"), _threshold("fail", "warn"), _threshold("missing", "warn")]).passed
    for blocking in ("fail", "missing"):
        verdict = PolicyVerdict.of([_threshold("pass")], [_threshold(blocking)])
        assert not verdict.passed and verdict.blocking == (verdict.outcomes[1],)
    verdict = PolicyVerdict.of([_threshold("pass")], [_comparison()])
    assert verdict.thresholds == (verdict.outcomes[0],) and verdict.comparisons == (verdict.outcomes[1],)
    assert not _report(policy=verdict).passed


@pytest.mark.parametrize("outcome", [_threshold("fail", "warn", value=0.85, slice="a", on="ci_low"), _comparison(),
                                     PolicyOutcome(kind="baseline", rule="fairness vs baseline", auditor="fairness",
                                                   outcome="not_run", reason="not run this time")])
def test_a_policy_outcome_survives_json(outcome: PolicyOutcome) -> None:
    data = json.loads(json.dumps(outcome.to_dict()))
    assert PolicyOutcome.from_dict(data) == outcome
    # the field names readers used when entries were plain mappings are still there
    assert {"kind", "rule", "severity", "value", "outcome", "reason", "slice"} <= set(data)
    assert ("on" in data) == (outcome.kind == "threshold")
    assert ("baseline_ci" in data) == (outcome.kind == "baseline")


def test_an_older_results_json_policy_entry_still_reads() -> None:
    """Schema 1.0 entries had no kind, auditor or metric (and a threshold's slice only when its
    worst slice was judged): read as thresholds about no named metric."""
    old = {"rule": "performance.accuracy >= 0.95", "value": 0.91, "outcome": "fail"}
    outcome = PolicyOutcome.from_dict(old)
    assert (outcome.kind, outcome.severity, outcome.on, outcome.auditor, outcome.blocking) == (
        "threshold", "fail", "value", None, True)


@pytest.mark.parametrize(("field", "value"), [("outcome", "passed"), ("severity", "error"), ("kind", "rule"),
                                              ("on", "ci")])
def test_an_outcome_outside_the_declared_values_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        PolicyOutcome(**{"kind": "threshold", "rule": "r", "outcome": "pass", field: value})


def test_a_report_takes_a_verdict_not_a_list_of_mappings() -> None:
    with pytest.raises(TypeError, match="PolicyVerdict"):
        AuditReport(metadata={}, results=[], policy=[{"rule": "r", "value": 1.0, "outcome": "pass"}])


# -------------------------------------------------------------------------------- results.json


def test_results_json_holds_the_verdicts_and_reads_them_back() -> None:
    report = _report(policy=PolicyVerdict.of([_threshold("fail", "warn")], [_comparison()]),
                     compliance=ComplianceAssessment(mapping_version=1, mapping_reviewed="2026-11-28",
                                                     clauses=(_clause(),)))
    data = json.loads(json.dumps(report.to_dict()))
    validate_results(data)
    assert data["schema_version"] == SCHEMA_VERSION and data["passed"] is False
    assert data["compliance"]["clauses"][0]["verdict"] == "concern"
    again = AuditReport.from_dict(data)
    assert again.policy == report.policy and again.compliance == report.compliance and not again.passed


def test_the_schema_requires_the_compliance_block() -> None:
    data = json.loads(json.dumps(_report().to_dict()))
    del data["compliance"]
    with pytest.raises(jsonschema.ValidationError, match="compliance"):
        validate_results(data)
    data["compliance"] = {"mapping_version": 1, "mapping_reviewed": "", "clauses": [
        {**_clause().to_dict(), "verdict": "fine"}]}
    with pytest.raises(jsonschema.ValidationError, match="fine"):
        validate_results(data)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_an_older_results_json_still_reads_as_a_baseline_for_its_metrics(version, tmp_path) -> None:
    """Schema 1.x stored figures as SVG and (1.0) had no compliance block: a baseline is only
    compared, so its metrics are read and its figures, policy and compliance dropped."""
    data = json.loads(json.dumps(_report(policy=PolicyVerdict.of([_threshold("fail")], [])).to_dict()))
    data["schema_version"] = version
    data["results"][0]["figures"] = [{"name": "roc", "svg": "<svg></svg>", "caption": "old"}]
    if version == "1.0":
        del data["compliance"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    report = load_baseline(path)
    assert report.results[0].metric("accuracy").value == data["results"][0]["metrics"][0]["value"]
    assert not report.results[0].figures and not report.policy.outcomes
    data["schema_version"] = "0.9"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(AuditInputError, match="not a rai-audit results.json"):
        load_baseline(path)


# ------------------------------------------------------------------------------------- render


def test_html_and_card_print_the_stored_verdicts() -> None:
    """The renderers read the report's stored clause verdicts: a verdict nothing in the results
    would produce (a 'concern' with every metric fine) is what both print."""
    from audit.report.html import render_html
    from audit.report.markdown import render_markdown

    report = _report(policy=PolicyVerdict.of([_threshold("pass")]),
                     compliance=ComplianceAssessment(mapping_version=1, clauses=(_clause("concern"),)))
    html, card = one_line(render_html(report)), one_line(render_markdown(report))
    assert 'clause-concern' in html and "EU AI Act Art. 15" in html and "Missing from this audit: robustness" in html
    assert "| EU AI Act Art. 15: Accuracy, robustness and cybersecurity | concern |" in card
    assert "performance.accuracy = 0.800 (policy: fail); findings: 1 warn (performance)" in card
    assert "<script>" not in card + html
    assert "not a legal determination of conformity" in html and "not a legal determination of conformity" in card
    assert "Policy: **PASSED**" in card and "Policy: <strong>PASSED</strong>" in html


def test_a_report_never_assessed_has_no_compliance_section() -> None:
    from audit.report.html import render_html
    from audit.report.markdown import render_markdown

    report = _report()
    assert 'id="compliance"' not in render_html(report) and "## Compliance" not in render_markdown(report)


def test_html_and_card_state_the_same_limitations() -> None:
    from markupsafe import escape

    from audit.report.html import render_html
    from audit.report.limitations import NOT_A_CERTIFICATION, limitations
    from audit.report.markdown import md_escape, render_markdown

    report = _report()
    lines = limitations(report)
    assert "The privacy section is skipped: no training data was given" in lines and lines[-1] == NOT_A_CERTIFICATION
    page, card = one_line(render_html(report)), one_line(render_markdown(report))
    for line in lines:
        assert f"<li>{escape(line)}</li>" in page, line
        assert f"- {md_escape(line)}" in card, line
