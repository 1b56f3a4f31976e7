"""Seeded bootstrap confidence intervals, shared by every auditor.

Our own rather than ``scipy.stats.bootstrap`` because fairness needs resampling *within*
groups (stratified, so a small group is never resampled away) and every auditor needs the same
seeded, NaN-tolerant percentile interval over a statistic of several paired arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def bootstrap_ci(
    statistic: Callable[..., float],
    arrays: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Any | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)`` over paired rows.

    ``arrays`` are indexed together with the same resampled row indices. With ``strata``
    (one label per row) rows are resampled within each stratum, keeping stratum sizes fixed.
    Resamples where the statistic is undefined (NaN) are dropped; if all are, (nan, nan).
    """
    if len(arrays[0]) == 0:
        return (float("nan"), float("nan"))
    return bootstrap_cis(lambda *a: np.array([statistic(*a)]), arrays, n_resamples=n_resamples,
                         confidence=confidence, seed=seed, strata=strata)[0]


def bootstrap_cis(
    statistic: Callable[..., np.ndarray],
    arrays: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    strata: Any | None = None,
) -> list[tuple[float, float]]:
    """:func:`bootstrap_ci` for a statistic that returns several numbers at once (a vector):
    one interval per number, from the same resamples, so shared work (one ROC curve for AUC and
    TPR) is done once per resample. The same seed gives the same resamples as ``bootstrap_ci``.
    The arrays must not be empty."""
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n == 0:
        raise ValueError("bootstrap_cis: no rows to resample")
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)[1]
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    rows = []
    for _ in range(n_resamples):
        idx = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        rows.append(np.atleast_1d(np.asarray(statistic(*(a[idx] for a in arrays)), dtype=np.float64)))
    values = np.vstack(rows)
    alpha = (1 - confidence) / 2
    out = []
    for column in values.T:
        column = column[np.isfinite(column)]
        if column.size == 0:
            out.append((float("nan"), float("nan")))
            continue
        low, high = np.quantile(column, [alpha, 1 - alpha])
        out.append((float(low), float(high)))
    return out
