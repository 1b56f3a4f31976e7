"""The seeded bootstrap: all resamples drawn at once are exactly the resamples of the
per-resample loop it replaced (tests/_bootstrap_reference.py), so every interval is unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from audit.core import stats
from tests import _bootstrap_reference as ref

_RNG = np.random.default_rng(2026)
CASES = {
    "unstratified, odd n": (37, None),
    "unstratified, one row": (1, None),
    "two strata": (120, np.repeat(["member", "rest"], [20, 100])),
    # 12 strata sort as text ("10" < "2"); strata of one row draw nothing; odd and even sizes
    "12 strata, some of one row": (200,
                                   np.concatenate([np.arange(12), _RNG.integers(0, 12, 188)])[_RNG.permutation(200)]),
    "1000 rows in 49 strata": (1000, _RNG.integers(0, 49, 1000)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("block_values", [1, 250, stats.BLOCK_VALUES])
def test_resamples_drawn_at_once_equal_the_per_resample_loop(case: str, block_values: int) -> None:
    n, strata = CASES[case]
    for seed in (0, 7, 2**31 - 2):
        got = np.concatenate(list(stats.bootstrap_resamples(n, n_resamples=60, seed=seed, strata=strata,
                                                            block_values=block_values)))
        np.testing.assert_array_equal(got, ref.resamples(n, n_resamples=60, seed=seed, strata=strata))


def test_bulk_draws_equal_numpy_including_rejections() -> None:
    assert stats._bulk_draws_match_numpy()  # else the loop is used: same numbers, none of the speed
    # A bound near 2**31.5 rejects about a quarter of the 32-bit draws: every later value shifts.
    for bound, count in ((3_000_000_001, 2000), (4_294_967_295, 500), (2, 999), (97, 70_001)):
        expected = np.random.default_rng(11).integers(0, bound, count)
        got = stats._BoundedDraws(11).below(np.array([bound]), count)[:, 0]
        np.testing.assert_array_equal(got, expected)


def _share(y: np.ndarray) -> float:
    return float(np.mean(y == 1))


def _undefined_sometimes(y: np.ndarray, s: np.ndarray) -> float:
    pos = y == 1
    return float(s[pos].mean() - s[~pos].mean()) if pos.any() and (~pos).any() else float("nan")


@pytest.mark.parametrize("statistic,arrays,strata", [
    (_share, lambda y, s: [y], None),
    (_undefined_sometimes, lambda y, s: [y, s], None),  # NaN resamples are dropped alike
    (_undefined_sometimes, lambda y, s: [y, s], "y"),
    (lambda y, s: float(np.quantile(s, 0.9)), lambda y, s: [y, s], "y"),
])
def test_bootstrap_ci_equals_the_per_resample_loop(statistic: Any, arrays: Any, strata: Any) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(9) < 0.3).astype(int)
    s = rng.random(9)
    kwargs = {"n_resamples": 300, "seed": 123, "strata": y if strata else None, "confidence": 0.9}
    assert stats.bootstrap_ci(statistic, arrays(y, s), **kwargs) == ref.bootstrap_ci(statistic, arrays(y, s), **kwargs)


def test_a_generator_as_seed_draws_through_the_loop() -> None:
    got = np.concatenate(list(stats.bootstrap_resamples(50, n_resamples=5, seed=np.random.default_rng(4))))
    np.testing.assert_array_equal(got, ref.resamples(50, n_resamples=5, seed=np.random.default_rng(4)))


def test_no_rows_or_no_resamples_give_no_blocks() -> None:
    assert list(stats.bootstrap_resamples(0, n_resamples=10, seed=0)) == []
    assert list(stats.bootstrap_resamples(5, n_resamples=0, seed=0)) == []
    assert np.isnan(stats.bootstrap_ci(np.mean, [[]], seed=0)).all()


@pytest.mark.parametrize("k", [1, 2, 3, 7, 13, 200])
def test_family_confidence_is_bonferroni_at_alpha(k: int) -> None:
    """Exactly the level the fairness auditor used as ``1 - 0.05 / k`` (so its intervals are
    unchanged), and k independent intervals at it err together at most ALPHA (Dunn 1961)."""
    level = stats.family_confidence(k)
    assert level == 1 - 0.05 / k
    assert 1 - level**k <= stats.ALPHA + 1e-15  # 1 - 0.95 is 0.05 plus a rounding error
    assert stats.family_confidence(0) == stats.family_confidence(1) == stats.CONFIDENCE
