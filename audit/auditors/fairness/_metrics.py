"""Fast NumPy versions of the fairness statistics, for bootstrap resampling.

Point estimates in the report come from fairlearn and AIF360 themselves; these functions give
the same numbers (the tests compare them) thousands of times faster, which the seeded
bootstrap intervals need. Every group statistic here is a function of four counts per group
(rows by label and prediction), so the bootstrap draws all its resamples at once
(:func:`audit.core.stats.resample_positions`), counts each resample's rows by group in one
``bincount`` and evaluates the statistic for every resample together: the same resamples and
the same arithmetic as one ``bootstrap_ci`` call per statistic, so the same intervals to the
last bit, without a Python call per resample.

Intervals: a single group's rate keeps the percentile interval; every gap or ratio between
groups (the five headline metrics, a group against the rest) gets the bias-corrected and
accelerated (BCa) interval of Efron 1987 (:func:`audit.core.stats.bca_interval`). The headline
gaps are a maximum minus a minimum of noisy group rates, biased upward the more groups there
are, so the percentile interval of their resamples sits mostly above the estimate and misses the
true gap far too often; BCa re-centres it. Its acceleration needs a jackknife over rows, which
from counts is cheap: leaving one row out lowers one cell of one group's counts, so each stratum
has at most four distinct jackknife values. When groups tie for the highest (or lowest) rate no
bootstrap of the maximum is right (Andrews 2000): BCa still covered a true gap only 91% of the
time (tests/test_interval_coverage.py), so the headline's end towards parity is the bound of
:mod:`audit.core.gap_bounds`, built from simultaneous per-group intervals and valid however the
groups tie (:func:`parity_side_bounds`). A group against the rest is a smooth function of two
rates (no maximum), where BCa is accurate to second order, so it stays BCa. A single rate is a
mean of 0/1 values: unbiased, so its resamples centre on it (z0 ~ 0) and its acceleration is
``(1 - 2p) / (6 sqrt(n p (1 - p)))``, small at the group sizes judged, so BCa would barely move it.

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

from audit.core.stats import CONFIDENCE

# The final metric of the Jigsaw Unintended Bias in Toxicity Classification benchmark (Borkan et
# al. 2019): power means with p = -5 (the worst subgroups weigh most) of each bias AUC, and the
# overall AUC, weighted 0.25 each. Fixed by the benchmark, so scores stay comparable with it.
JIGSAW_POWER = -5.0
JIGSAW_WEIGHTS = (0.25, 0.25, 0.25, 0.25)

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


def group_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Rows by group, label and prediction: ``counts[g, y, p]`` (0/1 labels and predictions)."""
    cell = (np.asarray(codes, dtype=np.int64) * 4 + np.asarray(y_true, dtype=np.int64) * 2
            + np.asarray(y_pred, dtype=np.int64))
    return np.bincount(cell, minlength=4 * n_groups).reshape(n_groups, 2, 2)


def rates_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Count, selection rate, accuracy, TPR, FPR, FNR and precision per group, from counts
    shaped ``(..., groups, 2, 2)`` as :func:`group_counts` gives them; NaN where undefined."""
    count = counts.sum(axis=(-2, -1))
    pos, neg = counts[..., 1, :].sum(axis=-1), counts[..., 0, :].sum(axis=-1)
    tp, fp = counts[..., 1, 1], counts[..., 0, 1]
    sel = tp + fp
    return {
        "count": count,
        "selection_rate": _div(sel, count),
        "accuracy": _div(counts[..., 0, 0] + tp, count),
        "tpr": _div(tp, pos),
        "fpr": _div(fp, neg),
        "fnr": _div(pos - tp, pos),
        "precision": _div(tp, sel),
    }


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group count, selection rate, accuracy, TPR, FPR, FNR and precision (0/1 inputs)."""
    return rates_from_counts(group_counts(y_true, y_pred, codes, n_groups))


def _spread(values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max - min, min / max) over the present groups (last axis), NaN when a present group's
    value is undefined or no group is present."""
    ok = np.all(np.isfinite(values) | ~present, axis=-1) & present.any(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = np.max(np.where(present, values, -np.inf), axis=-1)
        lo = np.min(np.where(present, values, np.inf), axis=-1)
        diff = np.where(ok, hi - lo, np.nan)
        ratio = np.where(ok & (hi > 0), lo / np.where(hi > 0, hi, 1), np.nan)
    return diff, ratio


def headline_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """The five headline metrics of :func:`headline_metrics` for each leading index of counts
    shaped ``(..., groups, 2, 2)`` (one per bootstrap resample, say)."""
    r = rates_from_counts(counts)
    present = r["count"] > 0
    sel_diff, sel_ratio = _spread(r["selection_rate"], present)
    tpr_diff, tpr_ratio = _spread(r["tpr"], present)
    fpr_diff, fpr_ratio = _spread(r["fpr"], present)
    return {
        "demographic_parity_difference": sel_diff,
        "demographic_parity_ratio": sel_ratio,
        # NaN-propagating (Python's max/min would drop a NaN depending on argument order).
        "equalized_odds_difference": np.maximum(tpr_diff, fpr_diff),
        "equalized_odds_ratio": np.minimum(tpr_ratio, fpr_ratio),
        "equal_opportunity_difference": tpr_diff,
    }


def headline_metrics(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, float]:
    """The five headline group-fairness metrics, as fairlearn defines them (between groups)."""
    values = headline_from_counts(group_counts(y_true, y_pred, codes, n_groups))
    return {name: float(v) for name, v in values.items()}


def vs_rest_from_counts(counts: np.ndarray, member: int, *, rate: str, how: str) -> np.ndarray:
    """A group's ``rate`` over (``how="ratio"``, NaN when the rest's is 0) or minus
    (``how="diff"``) the rate of the other groups together, per leading index of ``counts``."""
    inside = counts[..., member, :, :]
    rest = counts.sum(axis=-3) - inside
    a, b = rates_from_counts(inside)[rate], rates_from_counts(rest)[rate]
    if how == "diff":
        return a - b
    return _div(a, b)


def resampled_counts(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, *,
                     n_resamples: int, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """:func:`group_counts` of every bootstrap resample, ``(n_resamples, groups, 2, 2)``: the
    resamples ``bootstrap_ci(..., seed=seed, strata=strata)`` draws."""
    from audit.core.stats import resample_positions

    cells = 4 * n_groups
    cell = (np.asarray(codes, dtype=np.int64) * 4 + np.asarray(y_true, dtype=np.int64) * 2
            + np.asarray(y_pred, dtype=np.int64))
    rows, blocks = resample_positions(len(cell), n_resamples=n_resamples, seed=seed, strata=strata)
    per_position = cell if rows is None else cell[rows]
    out = np.empty((n_resamples, cells), dtype=np.int64)
    done = 0
    for block in blocks:
        keys = per_position[block]
        keys += (np.arange(len(block), dtype=np.int64) * cells)[:, None]  # one bin range per resample
        out[done:done + len(block)] = np.bincount(keys.ravel(), minlength=len(block) * cells).reshape(-1, cells)
        done += len(block)
    return out.reshape(n_resamples, n_groups, 2, 2)


# The intervals the fairness auditor reports. Each takes the seed of one ``bootstrap_ci`` call
# and returns what that call returned (tests/_bootstrap_reference.py keeps those calls).

def _leave_one_out(codes: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, to_group: np.ndarray,
                   n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct leave-one-row-out count table of rows stratified by ``codes`` (stratum s
    counted as group ``to_group[s]``): ``(counts (m, n_groups, 2, 2), stratum (m,), rows (m,))``,
    ``rows`` the number of rows of the stratum whose removal gives that table."""
    n_strata = len(to_group)
    by_stratum = group_counts(y_true, y_pred, codes, n_strata).reshape(n_strata, 4)
    full = np.zeros((n_groups, 4), dtype=np.int64)
    np.add.at(full, to_group, by_stratum)
    stratum, cell = np.nonzero(by_stratum)
    out = np.repeat(full[None], len(stratum), axis=0)
    out[np.arange(len(stratum)), to_group[stratum], cell] -= 1
    return out.reshape(-1, n_groups, 2, 2), stratum, by_stratum[stratum, cell]


def _jackknife(values: np.ndarray, stratum: np.ndarray, rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(values[stratum == s], rows[stratum == s]) for s in np.unique(stratum)]


def rate_interval(y_true: np.ndarray, y_pred: np.ndarray, *, rate: str, n_resamples: int, seed: int,
                  confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bootstrap interval of one group's ``rate`` (``selection_rate``, ``tpr``, ...), its rows
    resampled with replacement."""
    from audit.core.stats import percentile_interval

    if len(y_true) == 0:
        return (float("nan"), float("nan"))
    counts = resampled_counts(y_true, y_pred, np.zeros(len(y_true), dtype=np.int64), 1, n_resamples=n_resamples,
                              seed=seed)
    return percentile_interval(rates_from_counts(counts)[rate][:, 0], confidence=confidence)


def headline_intervals(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, *,
                       n_resamples: int, seed: int, confidence: float = CONFIDENCE) -> dict[str, tuple[float, float]]:
    """Intervals of the five headline metrics: the BCa bootstrap end (:func:`headline_bca_intervals`)
    away from parity and, on the side towards parity, where a bootstrap of a maximum fails when
    groups tie, the bound of :mod:`audit.core.gap_bounds` (:func:`parity_side_bounds`)."""
    bca = headline_bca_intervals(y_true, y_pred, codes, n_groups, n_resamples=n_resamples, seed=seed,
                                 confidence=confidence)
    if len(y_true) == 0:
        return bca
    observed = group_counts(y_true, y_pred, codes, n_groups)
    return parity_side_bounds(observed, bca, confidence=confidence)


def headline_bca_intervals(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, *,
                           n_resamples: int, seed: int,
                           confidence: float = CONFIDENCE) -> dict[str, tuple[float, float]]:
    """BCa bootstrap intervals (Efron 1987) of the five headline metrics from one set of
    resamples stratified by group, the jackknife taken within each group."""
    from audit.core.stats import bca_interval

    if len(y_true) == 0:
        return {name: (float("nan"), float("nan")) for name in HEADLINE}
    codes = np.asarray(codes, dtype=np.int64)
    counts = resampled_counts(y_true, y_pred, codes, n_groups, n_resamples=n_resamples, seed=seed, strata=codes)
    values = headline_from_counts(counts)
    estimate = headline_from_counts(group_counts(y_true, y_pred, codes, n_groups))
    loo, stratum, rows = _leave_one_out(codes, y_true, y_pred, np.arange(n_groups), n_groups)
    jackknife = headline_from_counts(loo)
    return {name: bca_interval(values[name], estimate=float(estimate[name]),
                               jackknife=_jackknife(jackknife[name], stratum, rows), confidence=confidence)
            for name in HEADLINE}


def _families(counts: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(successes, trials) per present group of the three rates the headline compares."""
    counts = counts[counts.sum(axis=(-2, -1)) > 0]
    return {
        "selection_rate": (counts[:, :, 1].sum(axis=1), counts.sum(axis=(1, 2))),
        "tpr": (counts[:, 1, 1], counts[:, 1, :].sum(axis=1)),
        "fpr": (counts[:, 0, 1], counts[:, 0, :].sum(axis=1)),
    }


def parity_side_bounds(counts: np.ndarray, intervals: dict[str, tuple[float, float]], *,
                       confidence: float = CONFIDENCE) -> dict[str, tuple[float, float]]:
    """The headline ``intervals`` with their end towards parity (a difference's low, a ratio's
    high) replaced by the bound of :mod:`audit.core.gap_bounds` from the group ``counts``, which
    errs at most half of ``1 - confidence`` however the groups tie. Equalized odds is the worse of
    two gaps (TPR, FPR), so each of its two bounds gets half of that side's error. A bound that
    cannot be taken (a group's rate undefined: the metric is NaN too) leaves the end as it was."""
    from audit.core.gap_bounds import gap_lower_bound, ratio_upper_bound

    side = (1 - confidence) / 2
    fam = _families(counts)

    def gap(rate: str, alpha: float) -> float:
        return gap_lower_bound(successes=fam[rate][0], trials=fam[rate][1], alpha=alpha)

    def ratio(rate: str, alpha: float) -> float:
        return ratio_upper_bound(successes=fam[rate][0], trials=fam[rate][1], alpha=alpha)

    # Both components must hold for a bound of their max (min): max of lower bounds, min of upper
    # (NaN-propagating, as the metric is NaN when either component is).
    towards_parity = {
        "demographic_parity_difference": ("low", gap("selection_rate", side)),
        "demographic_parity_ratio": ("high", ratio("selection_rate", side)),
        "equalized_odds_difference": ("low", float(np.maximum(gap("tpr", side / 2), gap("fpr", side / 2)))),
        "equalized_odds_ratio": ("high", float(np.minimum(ratio("tpr", side / 2), ratio("fpr", side / 2)))),
        "equal_opportunity_difference": ("low", gap("tpr", side)),
    }
    out = {}
    for name, (low, high) in intervals.items():
        end, bound = towards_parity[name]
        if not np.isfinite(bound) or not (np.isfinite(low) and np.isfinite(high)):
            out[name] = (low, high)
        elif end == "low":
            out[name] = (min(bound, high), high)
        else:
            out[name] = (low, max(bound, low))
    return out


def vs_rest_interval(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, member: int, *, rate: str, how: str,
                     n_resamples: int, seed: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """BCa bootstrap interval (Efron 1987) of :func:`vs_rest_from_counts`, resampled and
    jackknifed within each group."""
    from audit.core.stats import bca_interval

    if len(y_true) == 0:
        return (float("nan"), float("nan"))
    # Counted as two groups (the rest, the member), drawn within each group of ``codes``.
    codes = np.asarray(codes, dtype=np.int64)
    inside = (codes == member).astype(np.int64)
    counts = resampled_counts(y_true, y_pred, inside, 2, n_resamples=n_resamples, seed=seed, strata=codes)
    estimate = vs_rest_from_counts(group_counts(y_true, y_pred, inside, 2), 1, rate=rate, how=how)
    n_strata = int(codes.max()) + 1
    loo, stratum, rows = _leave_one_out(codes, y_true, y_pred, (np.arange(n_strata) == member).astype(np.int64), 2)
    jackknife = vs_rest_from_counts(loo, 1, rate=rate, how=how)
    return bca_interval(vs_rest_from_counts(counts, 1, rate=rate, how=how), estimate=float(estimate),
                        jackknife=_jackknife(jackknife, stratum, rows), confidence=confidence)


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


def power_mean(values: Sequence[float], p: float = JIGSAW_POWER) -> float:
    """Generalized (power) mean ``(mean(x**p))**(1/p)``; the default p (JIGSAW_POWER, -5) weighs the
    worst subgroups most."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    return float(np.mean(x**p) ** (1.0 / p))


def jigsaw_final_score(overall_auc: float, subgroup: Sequence[float], bpsn: Sequence[float], bnsp: Sequence[float],
                       *, p: float = JIGSAW_POWER, weights: Sequence[float] = JIGSAW_WEIGHTS) -> float:
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
