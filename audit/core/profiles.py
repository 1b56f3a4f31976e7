"""Audit profiles: the budgets of every auditor (rows explained, IG steps, rows attacked, bootstrap
resamples, reference models) chosen together by one word, declared once in :data:`BUDGETS`.

* ``quick``: a CI gate on every commit; small samples, wider intervals, minutes on a CPU.
* ``standard``: the auditors' own defaults (exactly; a test keeps the two equal).
* ``thorough``: a sign-off review; larger samples and tighter intervals, for hours if need be.

Explicit options (``--option auditor.key=value`` or the config's ``options``) always win over the
profile. The report prints the profile, its table, and what the number of bootstrap resamples
means for the intervals (:func:`interval_note`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROFILES = ("quick", "standard", "thorough")
DEFAULT_PROFILE = "standard"
PURPOSES = {
    "quick": "a CI gate on every commit: small samples, wider intervals",
    "standard": "the auditors' defaults",
    "thorough": "a sign-off review: larger samples, tighter intervals",
}
# Two-sided 95% percentile interval: the endpoints are the 2.5% and 97.5% bootstrap quantiles.
_ALPHA = 0.025
_Z = 1.959963984540054

PROFILE_UNKNOWN = "profile {value!r} is not a profile; profiles are {known}"


@dataclass(frozen=True, kw_only=True)
class Budget:
    """One auditor option whose value the profile sets: what it counts, then its value per profile."""

    auditor: str
    option: str
    what: str
    quick: Any
    standard: Any
    thorough: Any

    def value(self, profile: str) -> Any:
        return getattr(self, profile)


# The one table. ``standard`` is each option's declared default (tests/test_profiles.py checks it).
BUDGETS: tuple[Budget, ...] = (
    Budget(auditor="performance", option="n_bootstrap", what="bootstrap resamples", quick=200, standard=1000,
           thorough=5000),
    Budget(auditor="fairness", option="n_bootstrap", what="bootstrap resamples", quick=200, standard=1000,
           thorough=5000),
    Budget(auditor="fairness", option="max_counterfactual_rows", what="counterfactual rows per category",
           quick=50, standard=200, thorough=1000),
    Budget(auditor="explainability", option="explain_examples", what="sampled rows explained", quick=12,
           standard=50, thorough=200),
    Budget(auditor="explainability", option="interesting_examples", what="flagged rows explained", quick=5,
           standard=20, thorough=50),
    Budget(auditor="explainability", option="n_steps", what="Integrated Gradients steps", quick=25, standard=50,
           thorough=100),
    Budget(auditor="explainability", option="sanity_examples", what="rows in the sanity check", quick=5,
           standard=10, thorough=30),
    Budget(auditor="explainability", option="sanity_stages", what="cascade stages explained (0: all)", quick=2,
           standard=0, thorough=0),
    Budget(auditor="robustness", option="attack_examples", what="rows attacked per recipe", quick=20,
           standard=100, thorough=500),
    Budget(auditor="robustness", option="invariance_examples", what="rows perturbed by invariance tests",
           quick=100, standard=500, thorough=2000),
    Budget(auditor="privacy", option="mia_examples", what="members and non-members each", quick=300,
           standard=1000, thorough=5000),
    Budget(auditor="privacy", option="n_bootstrap", what="bootstrap resamples", quick=200, standard=1000,
           thorough=5000),
    Budget(auditor="privacy", option="train_reference", what="reference models trained here", quick=0,
           standard=0, thorough=2),
)


def check_profile(value: Any) -> str:
    """The profile's name, or ValueError naming the known ones (the config turns it into the user's error)."""
    if value not in PROFILES:
        raise ValueError(PROFILE_UNKNOWN.format(value=value, known=", ".join(PROFILES)))
    return str(value)


def profile_options(*, profile: str, options: Mapping[str, Mapping[str, Any]] | None = None,
                    auditors: Any = None) -> dict[str, dict[str, Any]]:
    """Each auditor's options: the profile's budgets under the user's explicit ``options`` (which
    win). ``auditors`` (names) limits the profile's entries to auditors that exist; the user's own
    entries are always kept, so an unknown auditor there is still reported as the user's mistake."""
    check_profile(profile)
    known = None if auditors is None else set(auditors)
    merged: dict[str, dict[str, Any]] = {}
    for b in BUDGETS:
        if known is None or b.auditor in known:
            merged.setdefault(b.auditor, {})[b.option] = b.value(profile)
    for auditor, opts in (options or {}).items():
        merged[auditor] = {**merged.get(auditor, {}), **opts}
    return merged


def endpoint_error(n_bootstrap: int) -> float:
    """Monte-Carlo standard error of a 95% percentile-bootstrap endpoint as a share of the
    interval's half-width, for a normal sampling distribution: the sample quantile's variance
    p(1-p) / (B f(q)^2) (Efron & Tibshirani 1993, ch. 19), divided by the half-width 1.96 sigma."""
    density = math.exp(-_Z * _Z / 2) / math.sqrt(2 * math.pi)
    return math.sqrt(_ALPHA * (1 - _ALPHA) / n_bootstrap) / density / _Z


def interval_note(profile: str) -> str:
    """One sentence on what the profile's bootstrap resamples mean for the intervals."""
    n = _bootstrap(profile)
    ref = _bootstrap(DEFAULT_PROFILE)
    sentence = (f"{profile}: {n:,} bootstrap resamples; an interval's endpoints move by about "
                f"±{100 * endpoint_error(n):.1f}% of its half-width from one seed to another")
    if profile != DEFAULT_PROFILE:
        sentence += f" (standard, {ref:,} resamples: ±{100 * endpoint_error(ref):.1f}%)"
    return sentence + "; fewer rows also widen the intervals themselves, as 1/sqrt(rows)."


def describe(*, profile: str, options: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What results.json records and the report prints: the name, its purpose, each budget's
    value (the user's where ``options`` set it, marked ``overridden``) and the interval note."""
    check_profile(profile)
    options = options or {}
    budgets = []
    for b in BUDGETS:
        given = options.get(b.auditor, {})
        budgets.append({"auditor": b.auditor, "option": b.option, "what": b.what,
                        "value": given.get(b.option, b.value(profile)), "overridden": b.option in given})
    return {"name": profile, "purpose": PURPOSES[profile], "intervals": interval_note(profile), "budgets": budgets}


def _bootstrap(profile: str) -> int:
    return int(next(b for b in BUDGETS if b.option == "n_bootstrap").value(profile))
