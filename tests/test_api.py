"""The Python API: run_audit without the CLI, determinism under a seed, policy evaluation."""

from __future__ import annotations

import json

import pytest

from audit import AuditConfig, run_audit
from audit.errors import AuditInputError
from audit.policy import Rule, evaluate_policy, exit_code
from audit.results import AuditorResult, Metric


def _strip_volatile(data):
    data["metadata"].pop("created")
    data["metadata"].pop("timings")
    for r in data["results"]:
        r.pop("timings")
    return data


def test_same_inputs_and_seed_give_the_same_results_json(demo_planted, tmp_path):
    outs = []
    for name in ("a", "b"):
        cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / name),
                          auditors=["performance"], seed=7, limit=300)
        run_audit(cfg, progress=False)
        outs.append(_strip_volatile(json.loads((tmp_path / name / "results.json").read_text())))
    outs[1]["metadata"]["config"]["out"] = outs[0]["metadata"]["config"]["out"]
    assert outs[0] == outs[1]


def test_run_audit_returns_a_report_without_writing(demo_planted, tmp_path):
    cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "x"),
                      auditors=["performance"], thresholds=["performance.accuracy >= 0.5"], limit=100)
    report = run_audit(cfg, progress=False, write=False)
    assert not (tmp_path / "x").exists()
    assert report.passed and report.result("performance").status == "ok"
    assert report.metadata["engine"]["batches"] >= 1 and report.metadata["data"]["rows"] == 100


def test_policy_rules_parse_and_judge():
    results = [AuditorResult(auditor="performance", metrics=(Metric("accuracy", 0.8), Metric("ece", 0.2),
                                                              Metric("recall", 0.5, slice="pos")))]
    outcomes = evaluate_policy(["performance.accuracy >= 0.8", "performance.ece <= 0.1",
                                "performance.recall[pos] > 0.4", "fairness.demographic_parity_ratio >= 0.8"], results)
    assert [o["outcome"] for o in outcomes] == ["pass", "fail", "pass", "missing"]
    assert exit_code(outcomes[:1]) == 0 and exit_code(outcomes) == 1
    assert Rule.parse("performance.accuracy>=.8").threshold == 0.8
    with pytest.raises(AuditInputError, match="cannot read rule"):
        Rule.parse("performance accuracy >= 0.8")
