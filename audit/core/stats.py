"""Seeded bootstrap confidence intervals, shared by every auditor.

Our own rather than ``scipy.stats.bootstrap`` because fairness needs resampling *within*
groups (stratified, so a small group is never resampled away) and every auditor needs the same
seeded, NaN-tolerant percentile interval over a statistic of several paired arrays.

The resamples are defined by a loop: per resample, per stratum ``g`` (in the order of
``np.unique`` over the strata as text), ``g[rng.integers(0, len(g), len(g))]`` with
``rng = np.random.default_rng(seed)``. :func:`bootstrap_resamples` produces exactly those rows
for every resample at once, as a matrix, so a statistic that can be computed for all resamples
together (the fairness auditor's counts per group) needs no Python loop over resamples at all.
It does so by reproducing in bulk what ``Generator.integers`` does for each value (below), and
checks once per process, on a small case, that the result equals ``Generator.integers``; if a
NumPy release ever draws differently, the loop itself is used and the numbers stay the loop's.

``Generator.integers(0, m)`` for ``1 < m < 2**32`` (NumPy's ``buffered_bounded_lemire_uint32``,
after Lemire 2019, "Fast Random Integer Generation in an Interval") takes the next 32-bit output
``u`` of the bit generator (PCG64 hands out the low, then the high half of each 64-bit word, and
keeps an unused half for the next call), returns ``(u * m) >> 32`` and rejects ``u`` (takes the
next one) while ``(u * m) mod 2**32 < (2**32 - m) mod m``. With ``m == 1`` it returns 0 and
draws nothing.

Intervals of a gap or ratio over groups (the fairness auditor's max - min and min / max of group
rates) are bias-corrected and accelerated (BCa; Efron 1987, "Better Bootstrap Confidence
Intervals", JASA 82:171-185; Efron & Tibshirani 1993, ch. 14) by :func:`bca_interval`, not
percentile intervals: the maximum of noisy group rates is biased upward, so with many groups
nearly every resample's gap exceeds the estimate and the percentile interval can sit almost
entirely above it (it then misses the true gap far more often than 5% of the time). BCa shifts
the percentiles by the bias correction ``z0`` (how far from half the resamples lie below the
estimate) and the acceleration ``a`` (the skewness of the jackknife values, one jackknife per
independent stratum), as ``scipy.stats.bootstrap(method="BCa")`` does for several samples.
When groups tie for the highest rate even BCa misses the true gap too often, on the side towards
parity; the fairness auditor bounds that side with :mod:`audit.core.gap_bounds` instead.
"""


from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = 1 << 32
_LITTLE = sys.byteorder == "little"
_CHUNK = 1 << 16  # values checked for rejection at a time (a rejection re-reads at most one chunk)
BLOCK_VALUES = 1 << 22  # row indices per block of resamples (32 MiB of int64)

# Every interval in the report is a 95% interval: error rate ALPHA. A family of k intervals judged
# together (fairness: the groups of one slice, the terms of one category) is Bonferroni-adjusted
# to confidence 1 - ALPHA / k each, so the whole family errs at most ALPHA (Dunn 1961).
ALPHA = 0.05
CONFIDENCE = 1 - ALPHA


def family_confidence(k: int, *, alpha: float = ALPHA) -> float:
    """The confidence of each of ``k`` intervals judged together so that the family errs at
    most ``alpha`` (Bonferroni; Dunn 1961): ``1 - alpha / k``, plain ``1 - alpha`` for k <= 1."""
    return 1 - alpha / max(k, 1)


def bootstrap_ci(
    statistic: Callable[..., float],
    arrays: Sequence[Any],
    *,
    n_resamples: int = 1000,
    confidence: float = CONFIDENCE,
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
    confidence: float = CONFIDENCE,
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
    rows = []
    for block in bootstrap_resamples(n, n_resamples=n_resamples, seed=seed, strata=strata):
        for idx in block:
            rows.append(np.atleast_1d(np.asarray(statistic(*(a[idx] for a in arrays)), dtype=np.float64)))
    values = np.vstack(rows)
    return [percentile_interval(column, confidence=confidence) for column in values.T]


def percentile_interval(values: np.ndarray, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` interval of the finite ``values`` (NaN resamples dropped);
    (nan, nan) when none is finite."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return (float(low), float(high))


def bca_interval(values: np.ndarray, *, estimate: float, jackknife: Sequence[tuple[np.ndarray, np.ndarray]],
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval (Efron 1987; Efron & Tibshirani 1993,
    eq. 14.10 and 14.15) from a bootstrap distribution already drawn.

    ``values`` are the statistic over the resamples (NaN resamples dropped, as by
    :func:`percentile_interval`), ``estimate`` its value on the data. ``jackknife`` holds, per
    independent stratum (a group resampled within itself), the distinct leave-one-row-out values
    of the statistic and how many rows of the stratum give each (see :func:`bca_acceleration`).

    As ``scipy.stats.bootstrap(method="BCa")`` computes it for several samples (the same numbers
    given the same resamples; the tests compare them): ``z0 = Phi^-1(p)`` with ``p`` the share of
    resamples below the estimate, ties counting one half; levels
    ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = Phi^-1(alpha/2), Phi^-1(1 - alpha/2)``;
    the interval is the bootstrap distribution's quantiles at those levels (linear interpolation).
    Where scipy answers NaN we do not: an estimate beyond every resample takes ``p`` half a
    resample from 0 or 1, and the acceleration skips undefined jackknife values (0 if none vary).
    A NaN estimate gives the percentile interval.
    """
    from scipy.special import ndtr, ndtri

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    if not np.isfinite(estimate):
        return percentile_interval(values, confidence=confidence)
    b = values.size
    share = (np.count_nonzero(values < estimate) + np.count_nonzero(values <= estimate)) / (2 * b)
    share = min(max(share, 1 / (2 * b)), 1 - 1 / (2 * b))
    z0 = float(ndtri(share))
    a = bca_acceleration(jackknife)
    z = float(ndtri((1 - confidence) / 2))
    levels = []
    for zz in (z, -z):
        levels.append(float(ndtr(z0 + (z0 + zz) / (1 - a * (z0 + zz)))))
    if not all(np.isfinite(levels)) or levels[0] > levels[1]:  # an acceleration too large to use
        return percentile_interval(values, confidence=confidence)
    low, high = np.quantile(values, levels)
    return (float(low), float(high))


def bca_acceleration(jackknife: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """The BCa acceleration ``a`` from jackknife values of several independent strata (Efron &
    Tibshirani 1993, eq. 14.15; the several-sample sum of ``scipy.stats.bootstrap``):
    ``a = sum_j sum_i U_ji^3 / n_j^3 / (6 (sum_j sum_i U_ji^2 / n_j^2)^(3/2))`` with
    ``U_ji = (n_j - 1) (mean_i theta_ji - theta_ji)``, ``theta_ji`` the statistic without row i of
    stratum j. Each stratum is given as (distinct values, how many rows give each), so a
    statistic of counts needs one value per distinct kind of row, not one per row. Undefined
    values are skipped; 0 when nothing varies."""
    num = den = 0.0
    for theta, weight in jackknife:
        theta, weight = np.asarray(theta, dtype=float), np.asarray(weight, dtype=float)
        ok = np.isfinite(theta) & (weight > 0)
        theta, weight = theta[ok], weight[ok]
        n = weight.sum()
        if n < 2:
            continue
        u = (n - 1) * (np.dot(weight, theta) / n - theta)
        num += np.dot(weight, u**3) / n**3
        den += np.dot(weight, u**2) / n**2
    return float(num / (6 * den**1.5)) if den > 0 else 0.0


def bootstrap_resamples(n: int, *, n_resamples: int, seed: Any = 0, strata: Any | None = None,
                        block_values: int = BLOCK_VALUES) -> Iterator[np.ndarray]:
    """Row indices of the seeded bootstrap resamples of ``n`` rows: blocks of consecutive
    resamples, one row of the block per resample (``block_values`` indices per block at most).

    Exactly the rows of the loop in the module docstring, resample after resample: with
    ``strata`` each resample lists the rows drawn from each stratum in turn.
    """
    rows, blocks = resample_positions(n, n_resamples=n_resamples, seed=seed, strata=strata,
                                      block_values=block_values)
    for positions in blocks:
        yield positions if rows is None else rows[positions]


def resample_positions(n: int, *, n_resamples: int, seed: Any = 0, strata: Any | None = None,
                       block_values: int = BLOCK_VALUES) -> tuple[np.ndarray | None, Iterator[np.ndarray]]:
    """:func:`bootstrap_resamples` as ``(rows, blocks)``: the resampled row indices are
    ``rows[block]`` (``rows`` lists the rows stratum by stratum; None when it is every row in
    order, unstratified). A caller that wants a per-row value of each drawn row gathers
    ``value[rows][block]`` and so reads each block once instead of twice."""
    if n <= 0 or n_resamples <= 0:
        return None, iter(())
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)[1].reshape(-1)
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    rows = None if strata is None else np.concatenate(groups)
    per_block = max(1, block_values // n)
    if not (isinstance(seed, (int, np.integer)) and n < _TWO32 and _bulk_draws_match_numpy()):
        # a Generator passed in, or a NumPy that draws differently: the loop itself
        return None, _loop_blocks(groups, n_resamples=n_resamples, seed=seed, per_block=per_block)
    return rows, _bulk_blocks(groups, n_resamples=n_resamples, seed=int(seed), per_block=per_block)


def _loop_blocks(groups: list[np.ndarray], *, n_resamples: int, seed: Any, per_block: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, per_block):
        count = min(per_block, n_resamples - start)
        yield np.stack([np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(count)])


def _bulk_blocks(groups: list[np.ndarray], *, n_resamples: int, seed: int, per_block: int) -> Iterator[np.ndarray]:
    sizes = np.array([len(g) for g in groups], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bound = np.repeat(sizes, sizes)  # per position of a resample: the size of its stratum
    offset = np.repeat(starts, sizes)  # and where the stratum starts in the grouped rows
    drawn = bound > 1  # a stratum of one row draws nothing: its row is taken
    whole = bool(drawn.all())
    stream = _BoundedDraws(seed)
    for start in range(0, n_resamples, per_block):
        count = min(per_block, n_resamples - start)
        if whole:
            local = stream.below(bound, count)
        else:
            local = np.zeros((count, len(bound)), dtype=np.int64)
            if drawn.any():
                local[:, drawn] = stream.below(bound[drawn], count)
        if len(groups) > 1:
            local += offset
        yield local


class _BoundedDraws:
    """``Generator.integers(0, m)`` values of a fresh ``default_rng(seed)``, many at a time
    (see the module docstring for the method)."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(seed)
        self._u32 = np.empty(0, dtype=np.uint32)  # 32-bit outputs of the bit generator not used yet
        self._at = 0

    def _next(self, count: int) -> np.ndarray:
        """The next ``count`` unused 32-bit outputs (a view; not marked used)."""
        have = len(self._u32) - self._at
        if have < count:
            words = self._bits.random_raw((count - have + 1) // 2 + 8)
            if sys.byteorder == "little":
                halves = words.view(np.uint32)  # low half first, as PCG64 hands them out
            else:
                halves = np.empty(2 * len(words), dtype=np.uint32)
                halves[0::2], halves[1::2] = words & _LOW32, words >> np.uint64(32)
            self._u32 = np.concatenate([self._u32[self._at:], halves]) if have else halves
            self._at = 0
        return self._u32[self._at:self._at + count]

    def below(self, pattern: np.ndarray, count: int) -> np.ndarray:
        """``count`` rows of values, value j of a row in ``[0, pattern[j])`` (every bound in
        2..2**32-1), drawn row after row."""
        pattern = np.asarray(pattern, dtype=np.uint64)
        width = len(pattern)
        thresholds = (np.uint64(_TWO32) - pattern) % pattern
        out = np.empty((count, width), dtype=np.uint64)
        self._next(count * width)  # one call to the bit generator for the whole block
        per_chunk = max(1, _CHUNK // width)
        r = 0
        while r < count:
            rows = min(per_chunk, count - r)
            chunk = out[r:r + rows]
            np.multiply(self._next(rows * width).reshape(rows, width), pattern, out=chunk)
            # Rejected where the low 32 bits of the product fall below the threshold.
            low = chunk.view(np.uint32)[:, 0::2] if _LITTLE else chunk & _LOW32
            if not (low < thresholds).any():  # the usual case: no rejection in the chunk
                np.right_shift(chunk, np.uint64(32), out=chunk)
                self._at += rows * width
                r += rows
                continue
            for _ in range(rows):  # rare: a rejection shifts every later value by one output
                out[r] = self._row(pattern, thresholds)
                r += 1
        return out.view(np.int64)

    def _row(self, pattern: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        out = np.empty(len(pattern), dtype=np.uint64)
        i = 0
        while i < len(pattern):
            product = self._next(len(pattern) - i) * pattern[i:]
            rejected = np.flatnonzero((product & _LOW32) < thresholds[i:])
            take = len(product) if rejected.size == 0 else int(rejected[0])
            out[i:i + take] = product[:take] >> np.uint64(32)
            i += take
            self._at += take + (1 if rejected.size else 0)  # a rejected output is used up
        return out


@functools.cache
def _bulk_draws_match_numpy() -> bool:
    """Whether :class:`_BoundedDraws` equals ``Generator.integers`` on this NumPy, for strata of
    odd and even sizes and of one row, and for a bound so large that about a quarter of the
    draws are rejected."""
    pattern = [3, 1, 8, 1001, 2, 7]
    for seed in (0, 12345):
        rng = np.random.default_rng(seed)
        expected = np.stack([np.concatenate([rng.integers(0, m, m) for m in pattern]) for _ in range(5)])
        bound = np.repeat(pattern, pattern).astype(np.uint64)
        got = np.zeros_like(expected)
        got[:, bound > 1] = _BoundedDraws(seed).below(bound[bound > 1], 5)
        rng = np.random.default_rng(seed)
        rare = rng.integers(0, 3_000_000_001, 300)
        if not (np.array_equal(got, expected)
                and np.array_equal(_BoundedDraws(seed).below(np.array([3_000_000_001]), 300)[:, 0], rare)):
            return False
    return True
