"""Fast NumPy versions of the fairness statistics, for bootstrap resampling.

Point estimates in the report come from fairlearn and AIF360 themselves; these functions give
the same numbers (the tests compare them) thousands of times faster, which the seeded
bootstrap intervals need.

* Group fairness (fairlearn definitions, ``method="between_groups"``, worst case): demographic
  parity difference/ratio (Calders & Verwer 2010; the four-fifths rule of the US EEOC Uniform
  Guidelines, 29 CFR 1607.4(D)), equalized odds difference/ratio (Hardt, Price & Srebro 2016,
  "Equality of Opportunity in Supervised Learning") and equal opportunity difference (ibid.).
* Bias AUCs (Borkan et al. 2019, "Nuanced Metrics for Measuring Unintended Bias with Real Data
  for Text Classification"): subgroup AUC, BPSN AUC, BNSP AUC, and the final score of the
  Jigsaw Unintended Bias in Toxicity Classification benchmark (a power mean with p = -5 of each
  bias AUC over subgroups, averaged with the overall AUC, weights 0.25 each).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HEADLINE = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group count, selection rate, accuracy, TPR, FPR, FNR and precision (0/1 inputs)."""
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    c = np.asarray(codes, dtype=np.int64)
    count = np.bincount(c, minlength=n_groups).astype(float)
    pos = np.bincount(c, weights=y, minlength=n_groups)
    sel = np.bincount(c, weights=p, minlength=n_groups)
    tp = np.bincount(c, weights=y * p, minlength=n_groups)
    fp = sel - tp
    correct = np.bincount(c, weights=(y == p), minlength=n_groups)
    neg = count - pos
    return {
        "count": count,
        "selection_rate": _div(sel, count),
        "accuracy": _div(correct, count),
        "tpr": _div(tp, pos),
        "fpr": _div(fp, neg),
        "fnr": _div(pos - tp, pos),
        "precision": _div(tp, sel),
    }


def _spread(values: np.ndarray) -> tuple[float, float]:
    """(max - min, min / max) over the groups, NaN when a group's value is undefined."""
    if values.size == 0 or not np.all(np.isfinite(values)):
        return (float("nan"), float("nan"))
    hi, lo = float(values.max()), float(values.min())
    return (hi - lo, lo / hi if hi > 0 else float("nan"))


def headline_metrics(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, float]:
    """The five headline group-fairness metrics, as fairlearn defines them (between groups)."""
    r = group_rates(y_true, y_pred, codes, n_groups)
    present = r["count"] > 0
    sel_diff, sel_ratio = _spread(r["selection_rate"][present])
    tpr_diff, tpr_ratio = _spread(r["tpr"][present])
    fpr_diff, fpr_ratio = _spread(r["fpr"][present])
    return {
        "demographic_parity_difference": sel_diff,
        "demographic_parity_ratio": sel_ratio,
        # NaN-propagating: Python's max/min silently drop a NaN depending on argument order.
        "equalized_odds_difference": float(np.max([tpr_diff, fpr_diff])),
        "equalized_odds_ratio": float(np.min([tpr_ratio, fpr_ratio])),
        "equal_opportunity_difference": tpr_diff,
    }


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance that a random positive scores above a
    random negative, ties counting one half. NaN without both classes. (Binary search over the
    sorted negatives: fast enough for thousands of bootstrap resamples.)"""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=float)
    pos, neg = s[y], np.sort(s[~y])
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (pos.size * neg.size))


BIAS_AUCS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")


def bias_auc(y_true: np.ndarray, score: np.ndarray, in_group: np.ndarray, kind: str) -> float:
    """One bias AUC of Borkan et al. 2019 (see :func:`bias_aucs`)."""
    y = np.asarray(y_true).astype(bool)
    g = np.asarray(in_group).astype(bool)
    s = np.asarray(score, dtype=float)
    if kind == "subgroup_auc":
        rows = g
    elif kind == "bpsn_auc":
        rows = (~g & y) | (g & ~y)
    elif kind == "bnsp_auc":
        rows = (~g & ~y) | (g & y)
    else:
        raise ValueError(f"kind must be one of {BIAS_AUCS}, got {kind!r}")
    return auc(y[rows], s[rows])


def bias_aucs(y_true: np.ndarray, score: np.ndarray, in_group: np.ndarray) -> dict[str, float]:
    """Borkan et al. 2019: subgroup AUC (within the subgroup), BPSN AUC (background positives
    against subgroup negatives: low when the subgroup's negatives score too high) and BNSP AUC
    (background negatives against subgroup positives: low when its positives score too low)."""
    return {kind: bias_auc(y_true, score, in_group, kind) for kind in BIAS_AUCS}


def power_mean(values: Sequence[float], p: float = -5.0) -> float:
    """Generalized (power) mean ``(mean(x**p))**(1/p)``; p = -5 weighs the worst subgroups most."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    return float(np.mean(x**p) ** (1.0 / p))


def jigsaw_final_score(overall_auc: float, subgroup: Sequence[float], bpsn: Sequence[float], bnsp: Sequence[float],
                       *, p: float = -5.0, weights: Sequence[float] = (0.25, 0.25, 0.25, 0.25)) -> float:
    """Final metric of the Jigsaw Unintended Bias benchmark (Borkan et al. 2019): a weighted sum
    of the overall AUC and the power means of the three bias AUCs over subgroups."""
    parts = (overall_auc, power_mean(subgroup, p), power_mean(bpsn, p), power_mean(bnsp, p))
    return float(sum(w * v for w, v in zip(weights, parts, strict=True)))


def severity(value: float, ci_low: float, ci_high: float, *, threshold: float, parity: float,
             bad: str) -> str | None:
    """Severity of a metric against its threshold, by where the whole interval lies.

    ``bad`` is "below" or "above": the side of the threshold that is a problem. None when the
    point estimate is on the fair side; "info" when it is past the threshold but the interval
    reaches back over it; "warn" when the whole interval is past it; "fail" when the whole
    interval is past a line twice as far from parity (``parity``: 1 for ratios, 0 for
    differences) as the threshold, e.g. a parity ratio whose interval lies below 0.6 when the
    threshold is 0.8.
    """
    if not np.isfinite(value):
        return None
    far = parity + 2 * (threshold - parity)
    if bad == "below":
        if value >= threshold:
            return None
        if not np.isfinite(ci_high) or ci_high >= threshold:
            return "info"
        return "fail" if ci_high < far else "warn"
    if value <= threshold:
        return None
    if not np.isfinite(ci_low) or ci_low <= threshold:
        return "info"
    return "fail" if ci_low > far else "warn"
