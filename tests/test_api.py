"""The Python API: run_audit without the CLI, determinism under a seed, policy evaluation."""

from __future__ import annotations

import json

import pytest

from audit import AuditConfig, run_audit
from audit.core.policy import Rule, evaluate_policy, exit_code, gate_failed
from audit.core.results import AuditorResult, Metric
from audit.core.verdicts import PolicyVerdict
from audit.errors import AuditInputError


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
    assert [o.outcome for o in outcomes] == ["pass", "fail", "pass", "not_run"]
    assert exit_code(PolicyVerdict.of(outcomes[:1])) == 0 and exit_code(PolicyVerdict.of(outcomes)) == 1
    assert not gate_failed(evaluate_policy(["performance.ece <= 0.1: warn"], results))  # warn never fails the run
    missing = evaluate_policy(["performance.roc_auc >= 0.5"], results)
    assert missing[0].outcome == "missing" and gate_failed(missing)
    misspelt = evaluate_policy(["performance.accuracyy >= 0.5"], results)[0]
    assert misspelt.outcome == "missing" and "did you mean 'accuracy'" in misspelt.reason
    assert Rule.parse("performance.accuracy>=.8").threshold == 0.8
    rule = Rule.parse("performance.accuracy >= 0.85 on ci_low: warn")
    assert (rule.on, rule.severity, rule.threshold) == ("ci_low", "warn", 0.85)
    ci = [AuditorResult(auditor="performance", metrics=(Metric("accuracy", 0.9, 0.8, 0.95),))]
    assert evaluate_policy(["performance.accuracy >= 0.85"], ci)[0].outcome == "pass"
    assert evaluate_policy(["performance.accuracy >= 0.85 on ci_low"], ci)[0].outcome == "fail"
    sliced = [AuditorResult(auditor="fairness", metrics=(Metric("demographic_parity_ratio", 0.9, slice="gender"),
                                                          Metric("demographic_parity_ratio", 0.6, slice="age")))]
    worst = evaluate_policy(["fairness.demographic_parity_ratio >= 0.8"], sliced)[0]
    assert worst.outcome == "fail" and worst.value == 0.6 and worst.slice == "age"  # worst slice judged
    named = evaluate_policy(["fairness.demographic_parity_ratio[gender] >= 0.8"], sliced)[0]
    assert (named.outcome, named.auditor, named.metric, named.slice) == ("pass", "fairness", "demographic_parity_ratio",
                                                                          "gender")
    with pytest.raises(AuditInputError, match="cannot read rule"):
        Rule.parse("performance accuracy >= 0.8")


def test_policy_file_and_unknown_metric_named(tmp_path):
    from audit.auditors.performance._auditor import PerformanceAuditor
    from audit.core.policy import check_rules_known, load_policy

    policy = load_policy("default")
    assert any(r.on == "ci_low" for r in policy.rules) and policy.max_regression == 0.02
    with pytest.raises(AuditInputError, match=r"no metric 'acuracy' \(did you mean 'accuracy'\?\)"):
        check_rules_known([Rule.parse("performance.acuracy >= 0.9")], {"performance": PerformanceAuditor.metric_names})
    with pytest.raises(AuditInputError, match=r"no auditor 'perfomance' is installed \(did you mean 'performance'\?\)"):
        check_rules_known([Rule.parse("perfomance.accuracy >= 0.9")], {"performance": PerformanceAuditor.metric_names})
    bad = tmp_path / "p.yaml"
    bad.write_text("rulez: []\n")
    with pytest.raises(AuditInputError, match=r"unknown key 'rulez' \(did you mean 'rules'\?\)"):
        load_policy(bad)


@pytest.mark.slow  # builds (trains) a degraded checkpoint
def test_baseline_regression_is_named(demo_planted, tmp_path):
    from audit.selftest.demo import build_demo

    common = dict(data=str(demo_planted.eval_path), auditors=["performance"], limit=400,
                  options={"performance": {"n_bootstrap": 100}})
    run_audit(AuditConfig(model=str(demo_planted.model_dir), out=str(tmp_path / "base"), **common), progress=False)
    baseline = str(tmp_path / "base" / "results.json")
    same = run_audit(AuditConfig(model=str(demo_planted.model_dir), out=str(tmp_path / "same"), baseline=baseline,
                                 **common), progress=False)
    assert same.passed and all(p.outcome == "pass" for p in same.policy.outcomes) and same.policy.outcomes
    # A degraded checkpoint: the same recipe trained for 1 epoch instead of 10.
    worse = build_demo(tmp_path / "worse", seed=0, epochs=1)
    report = run_audit(AuditConfig(model=str(worse.model_dir), out=str(tmp_path / "w"), baseline=baseline, **common),
                       progress=False)
    assert not report.passed
    failed = {f"{p.auditor}.{p.metric}" for p in report.policy.outcomes if p.outcome == "fail"}
    assert "performance.accuracy" in failed
    acc = next(p for p in report.policy.comparisons if (p.metric, p.slice) == ("accuracy", None))
    assert acc.change < -0.02 and "worse by" in acc.reason and acc.baseline_ci[0] is not None


@pytest.mark.slow
def test_every_auditor_is_deterministic_under_a_seed(demo_planted, tmp_path):
    """Two full runs (every auditor, training data, a sensitive column) with the same inputs and
    seed write the same results.json, timings and dates aside."""
    options = {"performance": {"n_bootstrap": 100},
               "fairness": {"n_bootstrap": 100, "max_counterfactual_rows": 40},
               "explainability": {"explain_examples": 6, "n_steps": 8, "sanity_examples": 3},
               "robustness": {"attack_examples": 5, "recipes": ["deepwordbug"], "invariance_examples": 40},
               "privacy": {"mia_examples": 150, "n_bootstrap": 100}}
    outs = []
    for name in ("a", "b"):
        cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / name),
                          train_data=str(demo_planted.train_path), sensitive=["age_group"], seed=11, limit=300,
                          options=options)
        run_audit(cfg, progress=False)
        outs.append(_strip_volatile(json.loads((tmp_path / name / "results.json").read_text())))
    outs[1]["metadata"]["config"]["out"] = outs[0]["metadata"]["config"]["out"]
    assert [r["status"] for r in outs[0]["results"]] == ["ok"] * 5
    for a, b in zip(outs[0]["results"], outs[1]["results"], strict=True):
        a.get("extra", {}).pop("timings", None)
        b.get("extra", {}).pop("timings", None)
        assert a == b, a["auditor"]
    assert outs[0] == outs[1]


def _comparable(path):
    """results.json without what describes this run's own work (timings, forward passes counted
    by the engine, which a resumed run does fewer of) and where it wrote."""
    data = json.loads(path.read_text())
    data["metadata"].pop("timings")
    data["metadata"].pop("engine")
    data["metadata"].pop("created")
    data["metadata"]["config"].pop("out")
    data["metadata"]["config"].pop("resume")
    data["metadata"]["config"].pop("overwrite")
    data["metadata"].pop("resumed")
    for r in data["results"]:
        r.pop("timings")
    return data


def test_results_are_identical_whatever_the_auditor_order_and_after_resume(demo_planted, tmp_path, monkeypatch):
    """Explainability consumes fairness's flagged rows through a declared channel: the runner runs
    fairness first whatever order was typed, and --resume replays a saved fairness section."""
    common = dict(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), sensitive=["age_group"],
                  limit=300, options={"fairness": {"n_bootstrap": 50, "mitigation": False},
                                      "explainability": {"explain_examples": 4, "interesting_examples": 4,
                                                         "methods": ["occlusion"], "sanity_check": False,
                                                         "faithfulness": False}})
    run_audit(AuditConfig(out=str(tmp_path / "a"), auditors=["fairness", "explainability"], **common), progress=False)
    run_audit(AuditConfig(out=str(tmp_path / "b"), auditors=["explainability", "fairness"], **common), progress=False)
    a, b = _comparable(tmp_path / "a" / "results.json"), _comparable(tmp_path / "b" / "results.json")
    explained = a["results"][1]["extra"]["explained"]
    assert any(row["source"] != "sample" for row in explained)  # fairness's rows reached explainability
    assert a == b
    # An interrupted run that finished fairness, resumed: fairness is replayed, explainability sees its rows.
    monkeypatch.setattr("audit.core.resume.Partial.clear", lambda self: None)
    run_audit(AuditConfig(out=str(tmp_path / "c"), auditors=["fairness"], **common), progress=False)
    report = run_audit(AuditConfig(out=str(tmp_path / "c"), auditors=["explainability", "fairness"], resume=True,
                                   overwrite=True, **common), progress=False)
    assert report.metadata["resumed"] == ["fairness"]
    assert _comparable(tmp_path / "c" / "results.json") == a
