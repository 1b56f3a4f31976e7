"""Each judged group against the best one, for the token fairness parts: the gap and ratio of a
rate (whole-name recognition, entity F1) with Bonferroni-adjusted bootstrap intervals, and the
finding when they pass the thresholds.

The intervals come from the resamples each part drew (names within a group, or sentences), the
``r``-th resample of a group against the ``r``-th of the best group: independent draws for
independent groups, and paired ones where the groups share their sentences (entity switching
draws the same sentence indices for every group), which is the paired bootstrap. The best group
is fixed by the point estimates; the ``k - 1`` comparisons of a slice are one family, each at
confidence ``1 - 0.05 / (k - 1)`` (Bonferroni; :func:`audit.core.stats.family_confidence`), as
the text auditor adjusts its group-against-the-rest intervals. Severities follow the text
auditor's rule (:func:`._metrics.severity`): a ratio below ``ratio_min`` or a gap above
``gap_max`` is info while its interval reaches back over the threshold, warn when the whole
interval is past it, fail when it is past a line twice as far from parity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from audit.core.results import Finding, Metric, SectionPart
from audit.core.stats import family_confidence, percentile_interval

_RANK = {None: -1, "info": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True, kw_only=True)
class Gap:
    """One group against the best group of its slice, with intervals at ``confidence``."""

    group: str
    best: str
    value: float
    best_value: float
    gap: float
    gap_ci: tuple[float, float]
    ratio: float
    ratio_ci: tuple[float, float]
    confidence: float
    comparisons: int
    severity: str | None


def gaps_to_best(*, values: Mapping[str, float], resamples: Mapping[str, np.ndarray], judged: Sequence[str],
                 gap_max: float, ratio_min: float) -> tuple[Gap, ...]:
    """The gap (best minus group) and ratio (group over best) of every judged group but the best,
    from the point ``values`` and the per-group ``resamples`` (one value per resample, the same
    number for every group). Fewer than two judged groups: nothing to compare."""
    from audit.auditors.fairness._metrics import severity

    if len(judged) < 2:
        return ()
    best = max(judged, key=lambda g: (values[g], g))
    confidence = family_confidence(len(judged) - 1)
    out = []
    for group in [g for g in judged if g != best]:
        with np.errstate(divide="ignore", invalid="ignore"):
            gap_ci = percentile_interval(resamples[best] - resamples[group], confidence=confidence)
            ratio_ci = percentile_interval(resamples[group] / resamples[best], confidence=confidence)
            ratio = values[group] / values[best] if values[best] > 0 else float("nan")
        gap = values[best] - values[group]
        by_ratio = severity(ratio, *ratio_ci, threshold=ratio_min, parity=1.0, bad="below")
        by_gap = severity(gap, *gap_ci, threshold=gap_max, parity=0.0, bad="above")
        out.append(Gap(group=group, best=best, value=values[group], best_value=values[best], gap=gap,
                       gap_ci=gap_ci, ratio=ratio, ratio_ci=ratio_ci, confidence=confidence,
                       comparisons=len(judged) - 1,
                       severity=max((by_ratio, by_gap), key=lambda s: _RANK[s])))
    return tuple(out)


def gap_part(gaps: Sequence[Gap], *, slice_name: str, metric: str, what: str, source: str, check: str,
             gap_max: float, ratio_min: float) -> SectionPart:
    """The ``{metric}_gap`` and ``{metric}_ratio`` metrics of each comparison and a finding for
    each past a threshold; ``what`` names the rate in a sentence ("whole-name PER recognition"),
    ``source`` cites the method."""
    from audit.auditors.fairness._inputs import unclear

    metrics, findings = [], []
    for g in gaps:
        level = (f"{g.confidence:.1%} CI, Bonferroni over {g.comparisons} comparisons" if g.comparisons > 1
                 else "95% CI")
        where = f"{slice_name}={g.group}"
        against = f"against the best group {g.best} of {slice_name}"
        metrics += [Metric(f"{metric}_gap", g.gap, *g.gap_ci, False, where, f"{what}: best group minus this one, "
                           f"{against}; interval: {level}"),
                    Metric(f"{metric}_ratio", g.ratio, *g.ratio_ci, True, where,
                           f"{what}: this group over the best, {against}; interval: {level}")]
        if g.severity is None:
            continue
        findings.append(Finding(
            g.severity,
            f"{what[0].upper()}{what[1:]} is lower for {g.group} ({slice_name}): {g.value:.2f} against "
            f"{g.best_value:.2f} for {g.best}, gap {g.gap:.2f} ({level} {g.gap_ci[0]:.2f}–{g.gap_ci[1]:.2f}), "
            f"ratio {g.ratio:.2f} ({g.ratio_ci[0]:.2f}–{g.ratio_ci[1]:.2f})",
            f"Thresholds: gap above {gap_max:g} or ratio below {ratio_min:g}. {source}" + unclear(g.severity),
            {"slice": slice_name, "group": g.group, "reference_group": g.best, "check": check,
             "direction": "lower", "value": g.value, "reference_value": g.best_value, "gap": g.gap,
             "gap_ci": list(g.gap_ci), "ratio": g.ratio, "ratio_ci": list(g.ratio_ci),
             "confidence": g.confidence, "gap_max": gap_max, "ratio_min": ratio_min}))
    return SectionPart(metrics=metrics, findings=findings)
