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
