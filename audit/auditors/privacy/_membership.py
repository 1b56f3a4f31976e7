"""Membership-inference attack scores and the numbers the literature reports for them.

Every attack maps a model's output on an example to a score that is *higher for a suspected
member*. The attacks that need only the target's outputs:

* ``loss``: minus the cross-entropy loss on the true label (Yeom et al. 2018, "Privacy Risk in
  Machine Learning: Analyzing the Connection to Overfitting");
* ``confidence``: the largest class probability (Salem et al. 2019, "ML-Leaks");
* ``entropy``: minus the entropy of the predicted distribution (Salem et al. 2019);
* ``modified_entropy``: minus Song & Mittal's label-aware entropy
  ``-(1-p_y) log p_y - sum_{i != y} p_i log(1-p_i)`` (Song & Mittal 2021, "Systematic Evaluation of
  Privacy Risks of Machine Learning Models").

``reference``, per-example difficulty calibration with reference models (Carlini et al. 2022,
"Membership Inference Attacks From First Principles", LiRA), works on the logit-scaled
confidence ``phi = log(p_y / (1 - p_y))``. With reference models that did not train on the rows
(offline LiRA) the score is ``(phi - mu_out) / sigma_out``, per example when there are at least
``MIN_PER_EXAMPLE_REFS`` references, else with one pooled sigma, which ranks exactly as
``phi - mean(phi_ref)`` (the difference calibration of Watson et al. 2022, "On the Importance of
Difficulty Calibration in Membership Inference Attacks"). With reference models trained on known
random halves (online LiRA) it is the Gaussian log-likelihood ratio of "in" against "out".

Reporting follows Carlini et al. 2022: the ROC curve on log-log axes, AUC, and the true-positive
rate at a low false-positive rate; plus the membership advantage ``max(TPR - FPR)`` of Yeom et al.
and the balanced accuracy of the best threshold ``(1 + advantage) / 2``. The best threshold is
chosen on the same rows it is scored on, so advantage and balanced accuracy are slightly
optimistic for the attacker (which is the cautious side for an audit).
"""

from __future__ import annotations

import math

import numpy as np

ATTACKS = ("loss", "confidence", "entropy", "modified_entropy")
MIN_PER_EXAMPLE_REFS = 4
_EPS = 1e-12
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def logit_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``phi = log p_y - log(1 - p_y)`` computed from logits as ``z_y - logsumexp_{i != y} z_i``,
    so it stays finite when ``p_y`` rounds to 1 (Carlini et al. 2022, section IV.C)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=int)
    rows = np.arange(len(z))
    zy = z[rows, y]
    others = z.copy()
    others[rows, y] = -np.inf
    m = others.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(others - m).sum(axis=1))
    return zy - lse


def attack_scores(logits: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Scores of the output-only attacks (higher = more likely a member). Without labels only
    the label-free attacks (confidence, entropy) can run."""
    logp = _log_softmax(logits)
    p = np.exp(logp)
    scores = {
        "confidence": p.max(axis=1),
        "entropy": (p * logp).sum(axis=1),  # minus the entropy
    }
    if labels is not None:
        y = np.asarray(labels, dtype=int)
        rows = np.arange(len(p))
        py = p[rows, y]
        log1m = np.log(np.clip(1.0 - p, _EPS, None))
        other = p * log1m
        other[rows, y] = 0.0
        mentr = -(1.0 - py) * logp[rows, y] - other.sum(axis=1)
        scores = {"loss": logp[rows, y], **scores, "modified_entropy": -mentr}
    return {name: scores[name] for name in ATTACKS if name in scores}


def reference_score(target_phi: np.ndarray, ref_phi: np.ndarray, in_mask: np.ndarray | None = None) -> np.ndarray:
    """Per-example calibrated score from reference models' ``phi`` (shape (k, n)).

    ``in_mask`` (k, n) says which reference trained on which row (online LiRA); without it
    every reference is an "out" model (offline LiRA).
    """
    phi = np.asarray(target_phi, dtype=np.float64)
    ref = np.asarray(ref_phi, dtype=np.float64)
    if in_mask is None:
        mu = ref.mean(axis=0)
        if ref.shape[0] >= MIN_PER_EXAMPLE_REFS:
            pooled = float(np.sqrt(np.mean(ref.var(axis=0, ddof=1))))
            sigma = np.maximum(ref.std(axis=0, ddof=1), 0.1 * pooled + _EPS)
            return (phi - mu) / sigma
        return phi - mu  # pooled sigma: the same ranking as (phi - mu) / sigma
    mask = np.asarray(in_mask, dtype=bool)
    mu_in = _masked_mean(ref, mask)
    mu_out = _masked_mean(ref, ~mask)
    shift = np.nanmean(mu_in - mu_out) if np.isfinite(mu_in - mu_out).any() else 0.0
    mu_in = np.where(np.isfinite(mu_in), mu_in, mu_out + shift)
    mu_out = np.where(np.isfinite(mu_out), mu_out, mu_in - shift)
    # Few references per example: one pooled sigma for "in" and one for "out" (Carlini et al.).
    s_in = _pooled_sigma(ref, mask, mu_in)
    s_out = _pooled_sigma(ref, ~mask, mu_out)
    return _log_normal(phi, mu_in, s_in) - _log_normal(phi, mu_out, s_out)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _pooled_sigma(values: np.ndarray, mask: np.ndarray, mu: np.ndarray) -> float:
    resid = np.where(mask, values - mu[None, :], 0.0)
    n = mask.sum()
    return float(np.sqrt((resid**2).sum() / max(n - 1, 1))) + 1e-3


def _log_normal(x: np.ndarray, mu: np.ndarray, sigma: float) -> np.ndarray:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma)


# ------------------------------------------------------------------------------------ ROC metrics

def roc_curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, starting at (0, 0) with threshold +inf:
    the same points as ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]
    tps = np.cumsum(y_sorted)[ends]
    fps = ends + 1 - tps
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fps / neg]
    tpr = np.r_[0.0, tps / pos]
    return fpr, tpr, np.r_[np.inf, s_sorted[ends]]


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half, as in ``roc_auc_score``)."""
    fpr, tpr, _ = roc_curve(y, scores)
    return float(_trapezoid(tpr, fpr))


def tpr_at_fpr(y: np.ndarray, scores: np.ndarray, fpr_max: float) -> float:
    """The highest TPR of any threshold whose FPR is at most ``fpr_max`` (Carlini et al. 2022)."""
    fpr, tpr, _ = roc_curve(y, scores)
    return float(tpr[fpr <= fpr_max + 1e-12].max())


def advantage(y: np.ndarray, scores: np.ndarray) -> float:
    """Membership advantage ``max_t TPR(t) - FPR(t)`` (Yeom et al. 2018)."""
    fpr, tpr, _ = roc_curve(y, scores)
    return float((tpr - fpr).max())


def balanced_accuracy(y: np.ndarray, scores: np.ndarray) -> float:
    """Balanced accuracy of the best threshold: ``(1 + advantage) / 2``."""
    return 0.5 * (1.0 + advantage(y, scores))


def roc_summary(y: np.ndarray, scores: np.ndarray, *, fpr_levels: tuple[float, ...]
                ) -> tuple[float, float, list[float]]:
    """AUC, advantage and the TPR at each FPR level from one ROC curve: the numbers of
    :func:`auc`, :func:`advantage` and :func:`tpr_at_fpr`, computed once (a bootstrap asks for
    all of them on every resample)."""
    fpr, tpr, _ = roc_curve(y, scores)
    return (float(_trapezoid(tpr, fpr)), float((tpr - fpr).max()),
            [float(tpr[fpr <= level + 1e-12].max()) for level in fpr_levels])


def min_nonmembers(fpr_max: float) -> int:
    """Non-members needed before TPR at ``fpr_max`` means anything: ``ceil(1 / fpr_max)``.

    With fewer, no threshold can have a false-positive rate in (0, fpr_max], so the number
    reported is the TPR at *zero* false positives; at exactly ``1/fpr_max`` it rests on a single
    false positive, so it stays a coarse estimate until several times that.
    """
    return math.ceil(1.0 / fpr_max - 1e-9)


def log_grid_curve(y: np.ndarray, scores: np.ndarray, *, points: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """The ROC as a step function sampled on a log-spaced FPR grid from 1/#non-members to 1
    (a small SVG whatever the sample size); TPRs of zero are dropped for the log axis."""
    fpr, tpr, _ = roc_curve(y, scores)
    neg = max(int((~np.asarray(y).astype(bool)).sum()), 1)
    grid = np.geomspace(1.0 / neg, 1.0, points)
    idx = np.searchsorted(fpr, grid + 1e-12, side="right") - 1
    ys = np.maximum.accumulate(tpr)[idx]
    keep = ys > 0
    return grid[keep], ys[keep]
