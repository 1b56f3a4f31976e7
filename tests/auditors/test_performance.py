"""The performance auditor's numbers equal scikit-learn's on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from audit.auditors.performance._auditor import PerformanceAuditor, expected_calibration_error
from audit.report.html import render_section
from tests._text import one_line
from tests._tiny import save_tiny_model, write_csv


def test_binary_metrics_equal_sklearn_on_the_demo(demo_planted, planted_target, context_factory):
    ctx = context_factory(demo_planted, planted_target)
    result = PerformanceAuditor(n_bootstrap=200).run(ctx)
    assert result.status == "ok", result.reason
    y, probs = ctx.data.labels, ctx.predictions.probs
    pred = probs.argmax(1)
    assert result.metric("accuracy").value == pytest.approx(skm.accuracy_score(y, pred))
    assert result.metric("macro_f1").value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert result.metric("weighted_f1").value == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert result.metric("roc_auc").value == pytest.approx(skm.roc_auc_score(y, probs[:, 1]))
    assert result.metric("pr_auc").value == pytest.approx(skm.average_precision_score(y, probs[:, 1]))
    assert result.metric("log_loss").value == pytest.approx(skm.log_loss(y, probs))
    report = skm.classification_report(y, pred, target_names=ctx.data.label_names, output_dict=True)
    table = result.table("classification_report").to_frame().set_index("class")
    for name in ctx.data.label_names:
        assert table.loc[name, "precision"] == pytest.approx(report[name]["precision"])
        assert table.loc[name, "recall"] == pytest.approx(report[name]["recall"])
        assert table.loc[name, "support"] == report[name]["support"]
    cm = result.table("confusion_matrix").to_frame().drop(columns="true").to_numpy()
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, pred))


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded(demo_planted, planted_target, context_factory):
    ctx = context_factory(demo_planted, planted_target)
    a = PerformanceAuditor(n_bootstrap=200).run(ctx).metric("accuracy")
    b = PerformanceAuditor(n_bootstrap=200).run(ctx).metric("accuracy")
    assert a.ci_low < a.value < a.ci_high
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    # A 95% interval for accuracy on 800 rows is a few points wide, not zero and not huge.
    assert 0.02 < a.ci_high - a.ci_low < 0.15


def test_multiclass_metrics_equal_sklearn(tmp_path, context_factory):
    from audit.engine.target import Target

    model = save_tiny_model(tmp_path / "m", num_labels=3, labels=["neg", "neu", "pos"], seed=3)
    rng = np.random.default_rng(0)
    words = ["great", "awful", "fine", "food", "film", "the", "was", "hotel", "clean", "rude"]
    rows = [{"text": " ".join(rng.choice(words, 5)), "label": ["neg", "NEU", "pos"][i % 3]} for i in range(90)]
    data = write_csv(tmp_path / "d.csv", rows)
    build = type("B", (), {"model_dir": model, "eval_path": data})
    target = Target.load(str(model))
    ctx = context_factory(build, target)
    result = PerformanceAuditor(n_bootstrap=50).run(ctx)
    assert result.status == "ok", result.reason
    y, probs = ctx.data.labels, ctx.predictions.probs
    pred = probs.argmax(1)
    assert list(y[:3]) == [0, 1, 2]  # 'NEU' mapped case-insensitively
    assert result.metric("roc_auc").value == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"))
    assert result.metric("macro_f1").value == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))


def test_multilabel_metrics_equal_sklearn(tmp_path, context_factory):
    from audit.engine.target import Target

    model = save_tiny_model(tmp_path / "m", num_labels=3, labels=["food", "service", "price"], multi_label=True)
    rows = [{"text": f"the food was great {i}", "labels": ["food|service", "price", "food"][i % 3]} for i in range(30)]
    data = write_csv(tmp_path / "d.csv", rows)
    build = type("B", (), {"model_dir": model, "eval_path": data})
    target = Target.load(str(model))
    assert target.multi_label
    ctx = context_factory(build, target)
    result = PerformanceAuditor(n_bootstrap=20).run(ctx)
    assert result.status == "ok", result.reason
    y, pred = ctx.data.labels, ctx.predictions.preds
    assert y.shape == (30, 3) and y[0].tolist() == [1, 1, 0]
    assert result.metric("hamming_loss").value == pytest.approx(skm.hamming_loss(y, pred))
    assert result.metric("micro_f1").value == pytest.approx(skm.f1_score(y, pred, average="micro", zero_division=0))


def test_ece_matches_a_direct_computation():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 500)
    correct = rng.random(500) < conf ** 2
    ece, bins = expected_calibration_error(conf, correct, n_bins=10)
    direct = 0.0
    for lo in np.arange(0, 1, 0.1):
        m = (conf > lo) & (conf <= lo + 0.1)
        if m.any():
            direct += m.mean() * abs(correct[m].mean() - conf[m].mean())
    assert ece == pytest.approx(direct)
    assert bins["count"].sum() == 500
    # A perfectly calibrated predictor has ECE near zero, an overconfident one does not.
    calibrated = rng.random(200_000) < (c := rng.uniform(0.5, 1, 200_000))
    assert expected_calibration_error(c, calibrated)[0] < 0.01
    assert expected_calibration_error(np.full(1000, 0.99), np.arange(1000) % 2 == 0)[0] == pytest.approx(0.49)


def test_single_class_eval_set_skips_auc_with_a_reason(demo_planted, planted_target, context_factory, tmp_path):
    import pandas as pd

    frame = pd.read_csv(demo_planted.eval_path)
    path = tmp_path / "one_class.csv"
    frame[frame.label == "positive"].to_csv(path, index=False)
    build = type("B", (), {"model_dir": demo_planted.model_dir, "eval_path": path})
    result = PerformanceAuditor(n_bootstrap=20).run(context_factory(build, planted_target))
    assert result.status == "ok"
    names = {m.name for m in result.metrics}
    assert "roc_auc" not in names and "accuracy" in names
    assert any("single class" in f.title for f in result.findings)


def test_section_renders_the_classification_report(demo_planted, planted_target, context_factory):
    result = PerformanceAuditor(n_bootstrap=20).run(context_factory(demo_planted, planted_target))
    html = render_section(result)
    assert "precision" in html and "macro avg" in one_line(html) and "<svg" in html
    assert "Reliability diagram" in one_line(html)


def test_skipped_without_labels(tmp_path, planted_target, demo_planted, context_factory):
    import pandas as pd

    path = tmp_path / "nolabels.csv"
    pd.read_csv(demo_planted.eval_path)[["text"]].to_csv(path, index=False)
    build = type("B", (), {"model_dir": demo_planted.model_dir, "eval_path": path})
    result = PerformanceAuditor().run(context_factory(build, planted_target))
    assert result.status == "skipped" and "label" in result.reason
