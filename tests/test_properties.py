"""Property-based tests (hypothesis) for the metric functions: order invariance, bounds, and
agreement with the reference libraries on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.auditors.performance import expected_calibration_error
from audit.stats import bootstrap_ci

probabilities = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=60, deadline=None)
@given(probabilities, st.randoms(use_true_random=False))
def test_ece_is_bounded_and_ignores_row_order(conf, rnd):
    conf = np.asarray(conf)
    correct = np.asarray([rnd.random() < 0.5 for _ in conf])
    ece, bins = expected_calibration_error(conf, correct, n_bins=10)
    assert 0.0 <= ece <= 1.0 + 1e-12
    order = np.asarray(rnd.sample(range(len(conf)), len(conf)))
    assert np.isclose(expected_calibration_error(conf[order], correct[order], n_bins=10)[0], ece)
    assert bins["count"].sum() == len(conf)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=4, max_size=120), st.integers(0, 2**31 - 1))
def test_bootstrap_interval_is_ordered_bounded_and_seeded(values, seed):
    y = np.asarray(values)
    stat = lambda a: float(a.mean())  # noqa: E731
    low, high = bootstrap_ci(stat, [y], n_resamples=200, seed=seed)
    assert 0.0 <= low <= high <= 1.0
    assert (low, high) == bootstrap_ci(stat, [y], n_resamples=200, seed=seed)
    # Stratified resampling keeps each stratum's size, so a statistic of the strata is fixed.
    strata = np.arange(len(y)) % 2
    share = lambda s: float(np.mean(s == 0))  # noqa: E731
    assert bootstrap_ci(share, [strata], n_resamples=50, seed=seed, strata=strata) == (share(strata), share(strata))
