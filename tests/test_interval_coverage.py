"""BCa intervals of gaps between groups (audit.core.stats.bca_interval, Efron 1987): the same
numbers as ``scipy.stats.bootstrap(method="BCa")`` given the same resamples, and coverage of a
known true demographic-parity gap in simulated data, against the old percentile interval."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from audit.auditors.fairness import _metrics as fm
from audit.core.stats import percentile_interval


def test_bca_equals_scipy_given_the_same_resamples() -> None:
    """Our resamples handed to scipy (``bootstrap_result``, no new ones): scipy jackknifes each
    group as a separate sample, exactly our stratified jackknife from counts."""
    from scipy import stats

    rng = np.random.default_rng(5)
    k = 6
    codes = np.repeat(np.arange(k), rng.integers(8, 30, k))
    y = np.tile([0, 1], codes.size)[:codes.size]  # every group has positives and negatives
    p = (rng.random(codes.size) < 0.2 + 0.1 * codes).astype(int)
    counts = fm.resampled_counts(y, p, codes, k, n_resamples=300, seed=7, strata=codes)
    ours = fm.headline_intervals(y, p, codes, k, n_resamples=300, seed=7)
    for name in ("demographic_parity_difference", "demographic_parity_ratio"):  # defined in every resample
        dist = fm.headline_from_counts(counts)[name]
        assert np.isfinite(dist).all()

        def statistic(*cells: np.ndarray, name: str = name) -> float:
            c = np.stack([np.bincount(s, minlength=4).reshape(2, 2) for s in cells])
            return float(fm.headline_from_counts(c)[name])

        samples = [(2 * y + p)[codes == g] for g in range(k)]
        res = stats.bootstrap(samples, statistic, vectorized=False, n_resamples=0, method="BCa",
                              bootstrap_result=SimpleNamespace(bootstrap_distribution=dist))
        ci = res.confidence_interval
        np.testing.assert_allclose(ours[name], (ci.low, ci.high), rtol=0, atol=1e-9)
        assert ours[name] != percentile_interval(dist)  # BCa moved it


def _coverage(n_sets: int, *, n_resamples: int = 400) -> tuple[float, float]:
    """Share of simulated data sets whose 95% interval covers the true demographic-parity
    difference: (BCa, percentile). 20-50 groups of 150-200 rows; three groups tie for the
    highest selection rate (0.6), one has the lowest (0.1), the rest lie in 0.3-0.4, so the
    true gap is 0.5 and the sample maximum is biased upward by the tie."""
    rng = np.random.default_rng(1)
    hits = np.zeros(2)
    for d in range(n_sets):
        k = int(rng.integers(20, 51))
        rates = rng.uniform(0.3, 0.4, k)
        rates[:3], rates[3] = 0.6, 0.1
        codes = np.repeat(np.arange(k), rng.integers(150, 201, k))
        p = (rng.random(codes.size) < rates[codes]).astype(int)
        y = (rng.random(codes.size) < 0.5).astype(int)
        truth = rates.max() - rates.min()
        bca = fm.headline_intervals(y, p, codes, k, n_resamples=n_resamples, seed=d)["demographic_parity_difference"]
        dist = fm.headline_from_counts(fm.resampled_counts(y, p, codes, k, n_resamples=n_resamples, seed=d,
                                                           strata=codes))["demographic_parity_difference"]
        pct = percentile_interval(dist)
        hits += [bca[0] <= truth <= bca[1], pct[0] <= truth <= pct[1]]
    return float(hits[0] / n_sets), float(hits[1] / n_sets)


def test_bca_covers_a_tied_maximum_gap_where_the_percentile_interval_does_not() -> None:
    bca, pct = _coverage(60)
    assert pct < 0.88  # the old interval misses the true gap (measured 0.83 on this simulation)
    assert bca >= 0.90, (bca, pct)


@pytest.mark.slow
def test_bca_coverage_full_simulation() -> None:
    """Measured: BCa 0.91, percentile 0.795 (below the nominal 0.95 both: a tied maximum makes
    the gap non-smooth, which no bootstrap interval fully repairs)."""
    bca, pct = _coverage(200)
    assert bca >= 0.90 and bca - pct >= 0.08, (bca, pct)
