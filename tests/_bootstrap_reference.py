"""The fairness groups step as it was before it was sped up, kept as the specification of its numbers.

``bootstrap_ci`` below is audit.core.stats.bootstrap_ci as it stood: one resample at a time, one
``rng.integers`` call per stratum, the statistic called once per resample. The three interval
functions are the calls the fairness auditor made with it, under the names and signatures of
the vectorised functions in audit.auditors.fairness._metrics that replace them, so a test (or
bench/fairness_bootstrap.py, to time the old way) can swap them in. The statistics are the old
code too (the fairness auditor's ``_vs_rest`` and friends, and ``headline_metrics`` from weighted
``bincount``s), not the new count-based ones. ``_fairlearn_headline`` is the five fairlearn calls
the auditor made for its headline values, which it now reads off one MetricFrame
(audit.auditors.fairness._groups, patched in through ``AUDITOR_REPLACES``).

The gaps and ratios between groups (``headline_intervals``, ``vs_rest_interval``) have since moved
from the percentile interval to BCa (Efron 1987). Their reference here is the same loop's
bootstrap distribution, a jackknife that really leaves out one row at a time and recomputes the
old statistic, and the BCa formula written out row by row (:func:`bca`), as scipy writes it; a
test checks :func:`bca` against ``scipy.stats.bootstrap(method="BCa")`` given the same resamples.
The old percentile calls stay as ``headline_percentile_intervals`` and ``vs_rest_percentile_interval``.
The headline's end towards parity has since become a closed-form bound from group counts
(audit.auditors.fairness._metrics.parity_side_bounds), applied here to counts taken row by row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

REPLACES = ("rate_interval", "headline_intervals", "vs_rest_interval")  # in audit.auditors.fairness._metrics
AUDITOR_REPLACES = ("_fairlearn_headline",)  # in audit.auditors.fairness._groups
HEADLINE = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
            "equalized_odds_ratio", "equal_opportunity_difference")


def bootstrap_distribution(statistic: Callable[..., float], arrays: Sequence[Any], *, n_resamples: int,
                           seed: int, strata: Any | None = None) -> np.ndarray:
    """The statistic over the resamples ``bootstrap_ci`` draws, one per resample (NaN kept)."""
    arrays = [np.asarray(a) for a in arrays]
    idx = resamples(len(arrays[0]), n_resamples=n_resamples, seed=seed, strata=strata)
    return np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=float)


def jackknife(statistic: Callable[..., float], arrays: Sequence[Any], strata: Any) -> list[np.ndarray]:
    """Per stratum, the statistic with each of its rows left out in turn."""
    arrays = [np.asarray(a) for a in arrays]
    labels = np.asarray(strata)
    out = []
    for s in np.unique(labels):
        vals = []
        for i in np.flatnonzero(labels == s):
            keep = np.ones(len(labels), dtype=bool)
            keep[i] = False
            vals.append(statistic(*(a[keep] for a in arrays)))
        out.append(np.array(vals, dtype=float))
    return out


def bca(values: np.ndarray, estimate: float, jack: list[np.ndarray], confidence: float) -> tuple[float, float]:
    """BCa (Efron & Tibshirani 1993, eq. 14.10, 14.15; several samples as scipy sums them), row
    by row, with audit.core.stats.bca_interval's rules where scipy would answer NaN."""
    from scipy.stats import norm

    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    if not np.isfinite(estimate):
        return tuple(float(v) for v in np.quantile(values, [alpha, 1 - alpha]))  # type: ignore[return-value]
    b = values.size
    share = float(np.clip((np.sum(values < estimate) + np.sum(values <= estimate)) / (2 * b), 0.5 / b, 1 - 0.5 / b))
    z0 = norm.ppf(share)
    num = den = 0.0
    for theta in jack:
        theta = theta[np.isfinite(theta)]
        n = theta.size
        if n < 2:
            continue
        u = (n - 1) * (theta.mean() - theta)
        num += (u**3).sum() / n**3
        den += (u**2).sum() / n**2
    a = num / (6 * den**1.5) if den > 0 else 0.0
    z = norm.ppf(alpha)
    levels = [norm.cdf(z0 + (z0 + zz) / (1 - a * (z0 + zz))) for zz in (z, -z)]
    if not np.all(np.isfinite(levels)) or levels[0] > levels[1]:
        levels = [alpha, 1 - alpha]
    return tuple(float(v) for v in np.quantile(values, levels))  # type: ignore[return-value]


def _bca_ci(statistic: Callable[..., float], arrays: list[np.ndarray], *, n_resamples: int, seed: int, strata: Any,
            confidence: float) -> tuple[float, float]:
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays[0]) == 0:
        return (float("nan"), float("nan"))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = bootstrap_distribution(statistic, arrays, n_resamples=n_resamples, seed=seed, strata=strata)
        return bca(values, float(statistic(*arrays)), jackknife(statistic, arrays, strata), confidence)


def bootstrap_ci(statistic: Callable[..., float], arrays: Sequence[Any], *, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0, strata: Any | None = None) -> tuple[float, float]:
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)[1]
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        values[i] = statistic(*(a[idx] for a in arrays))
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return (float(low), float(high))


def resamples(n: int, *, n_resamples: int, seed: Any, strata: Any | None = None) -> np.ndarray:
    """The row indices ``bootstrap_ci`` above draws, one row per resample (the same loop)."""
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)[1]
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    return np.stack([np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(n_resamples)])


def _ci(statistic: Callable[..., float], arrays: list[np.ndarray], **kwargs: Any) -> tuple[float, float]:
    with np.errstate(divide="ignore", invalid="ignore"):  # as the auditor's _ci did
        return bootstrap_ci(statistic, arrays, **kwargs)


# --- the old statistics ---------------------------------------------------------------------

def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    c = np.asarray(codes, dtype=np.int64)
    count = np.bincount(c, minlength=n_groups).astype(float)
    pos = np.bincount(c, weights=y, minlength=n_groups)
    sel = np.bincount(c, weights=p, minlength=n_groups)
    tp = np.bincount(c, weights=y * p, minlength=n_groups)
    return {"count": count, "selection_rate": _div(sel, count), "tpr": _div(tp, pos),
            "fpr": _div(sel - tp, count - pos)}


def _spread(values: np.ndarray) -> tuple[float, float]:
    if values.size == 0 or not np.all(np.isfinite(values)):
        return (float("nan"), float("nan"))
    hi, lo = float(values.max()), float(values.min())
    return (hi - lo, lo / hi if hi > 0 else float("nan"))


def headline_metrics(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, float]:
    r = group_rates(y_true, y_pred, codes, n_groups)
    present = r["count"] > 0
    sel_diff, sel_ratio = _spread(r["selection_rate"][present])
    tpr_diff, tpr_ratio = _spread(r["tpr"][present])
    fpr_diff, fpr_ratio = _spread(r["fpr"][present])
    return {"demographic_parity_difference": sel_diff, "demographic_parity_ratio": sel_ratio,
            "equalized_odds_difference": float(np.max([tpr_diff, fpr_diff])),
            "equalized_odds_ratio": float(np.min([tpr_ratio, fpr_ratio])), "equal_opportunity_difference": tpr_diff}


def _selection(y: np.ndarray, p: np.ndarray) -> float:
    return float(p.mean()) if p.size else float("nan")


def _tpr(y: np.ndarray, p: np.ndarray) -> float:
    pos = y == 1
    return float(p[pos].mean()) if pos.any() else float("nan")


def _fpr(y: np.ndarray, p: np.ndarray) -> float:
    neg = y == 0
    return float(p[neg].mean()) if neg.any() else float("nan")


_RATES = {"selection_rate": _selection, "tpr": _tpr, "fpr": _fpr}


def _vs_rest(rate: Callable[[np.ndarray, np.ndarray], float], how: str) -> Callable[..., float]:
    def statistic(y: np.ndarray, p: np.ndarray, member: np.ndarray) -> float:
        a, b = rate(y[member], p[member]), rate(y[~member], p[~member])
        if how == "diff":
            return a - b
        return a / b if b > 0 else float("nan")

    return statistic


# --- the calls the auditor made, under the new functions' signatures ---------------------------

def rate_interval(y_true: np.ndarray, y_pred: np.ndarray, *, rate: str, n_resamples: int, seed: int,
                  confidence: float = 0.95) -> tuple[float, float]:
    if rate == "selection_rate":
        return _ci(np.mean, [y_pred], n_resamples=n_resamples, seed=seed, confidence=confidence)
    if rate == "tpr":
        return _ci(lambda yy, pp: pp[yy == 1].mean() if (yy == 1).any() else np.nan, [y_true, y_pred],
                   n_resamples=n_resamples, seed=seed, confidence=confidence)
    raise ValueError(f"the auditor never bootstrapped {rate!r} per group")


def headline_percentile_intervals(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, *,
                       n_resamples: int, seed: int, confidence: float = 0.95) -> dict[str, tuple[float, float]]:
    return {name: _ci(lambda a, b, cc, name=name: headline_metrics(a, b, cc, n_groups)[name], [y_true, y_pred, codes],
                      n_resamples=n_resamples, seed=seed, strata=codes, confidence=confidence)
            for name in HEADLINE}


def vs_rest_percentile_interval(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, member: int, *,
                                rate: str, how: str, n_resamples: int, seed: int,
                                confidence: float = 0.95) -> tuple[float, float]:
    return _ci(_vs_rest(_RATES[rate], how), [y_true, y_pred, np.asarray(codes) == member], n_resamples=n_resamples,
               seed=seed, strata=codes, confidence=confidence)


def headline_intervals(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, n_groups: int, *,
                       n_resamples: int, seed: int, confidence: float = 0.95) -> dict[str, tuple[float, float]]:
    from audit.auditors.fairness._metrics import parity_side_bounds

    bca = {name: _bca_ci(lambda a, b, cc, name=name: headline_metrics(a, b, cc, n_groups)[name],
                         [y_true, y_pred, codes], n_resamples=n_resamples, seed=seed, strata=codes,
                         confidence=confidence)
           for name in HEADLINE}
    if len(y_true) == 0:
        return bca
    # The end towards parity is a closed-form bound from the group counts, not a bootstrap
    # (tests/test_gap_bounds.py checks it on its own): the same function on counts taken row by row.
    counts = np.zeros((n_groups, 2, 2), dtype=np.int64)
    np.add.at(counts, (np.asarray(codes), np.asarray(y_true), np.asarray(y_pred)), 1)
    return parity_side_bounds(counts, bca, confidence=confidence)


def vs_rest_interval(y_true: np.ndarray, y_pred: np.ndarray, codes: np.ndarray, member: int, *, rate: str, how: str,
                     n_resamples: int, seed: int, confidence: float = 0.95) -> tuple[float, float]:
    return _bca_ci(_vs_rest(_RATES[rate], how), [y_true, y_pred, np.asarray(codes) == member],
                   n_resamples=n_resamples, seed=seed, strata=codes, confidence=confidence)


def _fairlearn_headline(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *,
                        frame: Any = None) -> dict[str, float]:
    import pandas as pd
    from fairlearn import metrics as flm

    sf = pd.Series(groups, name="group")
    return {
        "demographic_parity_difference": flm.demographic_parity_difference(y_true, y_pred, sensitive_features=sf),
        "demographic_parity_ratio": flm.demographic_parity_ratio(y_true, y_pred, sensitive_features=sf),
        "equalized_odds_difference": flm.equalized_odds_difference(y_true, y_pred, sensitive_features=sf),
        "equalized_odds_ratio": flm.equalized_odds_ratio(y_true, y_pred, sensitive_features=sf),
        "equal_opportunity_difference": flm.equal_opportunity_difference(y_true, y_pred, sensitive_features=sf),
    }
