"""Simulated data sets with a known true gap between groups, for checking that the fairness
headline intervals cover it (tests/test_interval_coverage.py, bench/fairness_bootstrap.py --coverage).

Each set has 20-50 groups of 150-200 rows, labels drawn at random (half positive) and predictions
drawn independently of them at a rate fixed per group, so every group's selection rate, TPR and
FPR have the same true value: 0.3-0.4 for most groups, 0.1 for one and 0.6 for the highest. In the
tied scenario three groups share the highest rate (the case where a bootstrap of a maximum fails,
Andrews 2000); in the other one group holds it alone. The true headline values follow: every
difference is 0.5 and every ratio 1/6.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

HIGH, LOW = 0.6, 0.1
TRUTH = {
    "demographic_parity_difference": HIGH - LOW,
    "demographic_parity_ratio": LOW / HIGH,
    "equalized_odds_difference": HIGH - LOW,
    "equalized_odds_ratio": LOW / HIGH,
    "equal_opportunity_difference": HIGH - LOW,
}
Method = Callable[..., dict[str, tuple[float, float]]]


@dataclass(frozen=True, kw_only=True)
class SimulatedSet:
    y: np.ndarray
    p: np.ndarray
    codes: np.ndarray
    k: int


@dataclass(frozen=True, kw_only=True)
class Coverage:
    """Per metric: the share of sets whose interval held the truth, the mean width, and how many
    missed it from above (interval wholly above the truth) and from below."""

    covered: dict[str, float]
    width: dict[str, float]
    above: dict[str, int]
    below: dict[str, int]


def simulated_sets(n_sets: int, *, tied: bool) -> Iterator[SimulatedSet]:
    """The tied scenario is the simulation the coverage test has used from the start (seed 1)."""
    rng = np.random.default_rng(1 if tied else 2)
    for _ in range(n_sets):
        k = int(rng.integers(20, 51))
        rates = rng.uniform(0.3, 0.4, k)
        rates[:3 if tied else 1], rates[3] = HIGH, LOW
        codes = np.repeat(np.arange(k), rng.integers(150, 201, k))
        p = (rng.random(codes.size) < rates[codes]).astype(int)
        y = (rng.random(codes.size) < 0.5).astype(int)
        yield SimulatedSet(y=y, p=p, codes=codes, k=k)


def coverage(method: Method, n_sets: int, *, tied: bool, n_resamples: int = 400) -> Coverage:
    """``method(y, p, codes, k, n_resamples=..., seed=...)`` (the signature of
    ``headline_intervals``) on ``n_sets`` simulated sets, the set's index as its seed."""
    hits = dict.fromkeys(TRUTH, 0)
    above, below = dict.fromkeys(TRUTH, 0), dict.fromkeys(TRUTH, 0)
    widths: dict[str, list[float]] = {name: [] for name in TRUTH}
    for seed, s in enumerate(simulated_sets(n_sets, tied=tied)):
        intervals = method(s.y, s.p, s.codes, s.k, n_resamples=n_resamples, seed=seed)
        for name, truth in TRUTH.items():
            low, high = intervals[name]
            hits[name] += bool(low <= truth <= high)
            above[name] += bool(low > truth)
            below[name] += bool(high < truth)
            widths[name].append(high - low)
    return Coverage(covered={n: h / n_sets for n, h in hits.items()},
                    width={n: float(np.mean(w)) for n, w in widths.items()}, above=above, below=below)
