"""Attack scores and ROC numbers, cross-checked against scikit-learn and hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from audit.auditors.privacy import _membership as mi


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = np.r_[np.ones(300, dtype=int), np.zeros(500, dtype=int)]
    s = rng.normal(size=800) + 0.6 * y
    s[::5] = np.round(s[::5], 1)  # ties
    return y, s


def test_roc_curve_equals_sklearn(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    fpr, tpr, thr = mi.roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_roc_numbers_equal_sklearn(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s)
    assert mi.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for alpha in (0.01, 0.001, 0.1):
        assert mi.tpr_at_fpr(y, s, alpha) == pytest.approx(sk_tpr[sk_fpr <= alpha].max())
    assert mi.advantage(y, s) == pytest.approx((sk_tpr - sk_fpr).max())
    assert mi.balanced_accuracy(y, s) == pytest.approx(0.5 * (1 + (sk_tpr - sk_fpr).max()))


def test_roc_summary_gives_the_same_numbers_from_one_curve(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    sk_fpr, sk_tpr, _ = sk_roc_curve(y, s)
    auc, adv, tprs = mi.roc_summary(y, s, fpr_levels=(0.01, 0.1))
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12) and auc == mi.auc(y, s)
    assert adv == mi.advantage(y, s) == pytest.approx((sk_tpr - sk_fpr).max())
    assert tprs == [mi.tpr_at_fpr(y, s, 0.01), mi.tpr_at_fpr(y, s, 0.1)]
    assert tprs[1] == pytest.approx(sk_tpr[sk_fpr <= 0.1].max())


def test_attack_scores_match_their_definitions() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 0.0]])
    labels = np.array([0, 2, 0])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    scores = mi.attack_scores(logits, labels)
    rows = np.arange(3)
    np.testing.assert_allclose(scores["loss"], np.log(p[rows, labels]))
    np.testing.assert_allclose(scores["confidence"], p.max(axis=1))
    np.testing.assert_allclose(scores["entropy"], (p * np.log(p)).sum(axis=1))
    # Song & Mittal 2021, eq. (5): Mentr = -(1-p_y) log p_y - sum_{i != y} p_i log(1 - p_i).
    mentr = [-(1 - p[i, y]) * np.log(p[i, y]) - sum(p[i, j] * np.log(1 - p[i, j]) for j in range(3) if j != y)
             for i, y in enumerate(labels)]
    np.testing.assert_allclose(scores["modified_entropy"], -np.array(mentr))
    assert list(mi.attack_scores(logits, None)) == ["confidence", "entropy"]


def test_logit_confidence_is_log_odds_of_true_label_and_stays_finite() -> None:
    logits = np.array([[1.0, 0.0, -1.0], [80.0, -80.0, 0.0]])
    phi = mi.logit_confidence(logits, np.array([0, 0]))
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert phi[0] == pytest.approx(np.log(p[0] / (1 - p[0])))
    assert np.isfinite(phi[1]) and phi[1] > 70


def test_reference_calibration_removes_per_example_difficulty() -> None:
    # Each example has its own difficulty; membership adds a small shift. Raw scores are dominated
    # by difficulty, calibrated ones by membership (the motivation of LiRA, Carlini et al. 2022).
    rng = np.random.default_rng(0)
    n = 400
    difficulty = rng.normal(scale=3.0, size=2 * n)
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    target = difficulty + 1.0 * y + rng.normal(scale=0.3, size=2 * n)
    refs_out = difficulty + rng.normal(scale=0.3, size=(6, 2 * n))
    raw_auc = mi.auc(y, target)
    assert raw_auc < 0.7
    assert mi.auc(y, mi.reference_score(target, refs_out[:2])) > 0.95  # pooled sigma
    assert mi.auc(y, mi.reference_score(target, refs_out)) > 0.95  # per-example sigma
    # Online: references trained on known halves, "in" models see the shift too.
    in_mask = rng.random((6, 2 * n)) < 0.5
    refs_online = refs_out + 1.0 * in_mask
    assert mi.auc(y, mi.reference_score(target, refs_online, in_mask)) > 0.95


def test_tpr_at_low_fpr_needs_one_over_alpha_nonmembers() -> None:
    assert mi.min_nonmembers(0.001) == 1000
    assert mi.min_nonmembers(0.01) == 100


def test_log_grid_curve_is_a_monotone_step_function_of_the_roc(scored: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored
    xs, ys = mi.log_grid_curve(y, s, points=50)
    assert xs.min() >= 1 / 500 and xs.max() == pytest.approx(1.0)
    assert np.all(np.diff(ys) >= 0) and np.all(ys > 0)
    assert ys[-1] == pytest.approx(1.0)
    assert ys[0] == pytest.approx(mi.tpr_at_fpr(y, s, xs[0]))
