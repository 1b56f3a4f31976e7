"""Advisory mitigation evidence: what post-processing with per-group thresholds could buy.

fairlearn's ``ThresholdOptimizer`` (Hardt, Price & Srebro 2016) is fitted, for demographic
parity and for equalized odds, on a seeded half of the rows (stratified by group and label) of
each sensitive-column slice and scored on the other half. It uses the sensitive attribute at
prediction time, which may be unlawful or unwanted, so this is evidence, never a verdict; a
slice where it fails leaves a note, not a failed section.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from audit.auditors.fairness._inputs import FairnessInputs, Slice
from audit.core.results import SectionPart, Table

ADVISORY = ("Advisory: what post-processing with per-group thresholds could buy on held-out rows; "
            "it uses the sensitive attribute at prediction time, which may be unlawful or unwanted.")
CONSTRAINTS = ("demographic_parity", "equalized_odds")
# On screen: the constraint and what it buys, parity gaps before and after and the accuracy after;
# the accuracy before (the model's own, the same for every constraint) and the split sizes are in
# the full table beneath. Seven columns fit a 1280-pixel window (measured in headless Chromium);
# all ten scrolled sideways. ``constraint`` is a short status-like value: a chip.
COLUMNS_SHOWN = ("slice", "constraint", "dp_difference_before", "dp_difference_after", "eo_difference_before",
                 "eo_difference_after", "accuracy_after")


def mitigation(inputs: FairnessInputs, *, slices: tuple[Slice, ...]) -> SectionPart:
    """The before/after table over the sensitive-column slices (identity-term slices are not
    attributes a deployment could threshold on), for the first judged class."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    c = inputs.classes[0]
    for s in slices:
        if s.kind == "identity":
            continue
        try:
            rows.extend(_threshold_optimizer(inputs, s.name, s.groups, c))
        except Exception as exc:  # noqa: BLE001 - advisory evidence must not sink the section
            notes.append(f"mitigation on {s.name}: {type(exc).__name__}: {exc}")
    part = SectionPart(extra={"notes": notes} if notes else {})
    if not rows:
        return part
    table = Table.from_frame("mitigation", pd.DataFrame(rows), title="Advisory: ThresholdOptimizer on a held-out half",
                             shown=COLUMNS_SHOWN, chips=("constraint",))
    return part + SectionPart(tables=[table], extra={"mitigation_note": ADVISORY})


def _threshold_optimizer(inputs: FairnessInputs, name: str, groups: np.ndarray, c: int) -> list[dict[str, Any]]:
    """One row per constraint: parity, equalized odds and accuracy on the held-out half, before
    and after; none when fewer than two groups have ``min_group_size`` rows."""
    from fairlearn import metrics as flm
    from fairlearn.postprocessing import ThresholdOptimizer

    g = np.asarray(groups).astype(str)
    counts = {k: int((g == k).sum()) for k in set(g)}
    keep = np.array([counts[k] >= inputs.options["min_group_size"] for k in g])
    if len(set(g[keep])) < 2:
        return []
    idx = np.flatnonzero(keep)
    y = (inputs.labels == c).astype(int)
    rng = inputs.rng(f"mitigation:{name}")
    strata = np.array([f"{a}|{b}" for a, b in zip(g[idx], y[idx], strict=True)])
    fit = np.zeros(len(idx), dtype=bool)
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        fit[rng.permutation(members)[: len(members) // 2]] = True
    fit_rows, test_rows = idx[fit], idx[~fit]
    X = inputs.probs[:, [c]]
    estimator = _score_estimator()
    base = (inputs.preds[test_rows] == c).astype(int)
    out = []
    for constraint in CONSTRAINTS:
        opt = ThresholdOptimizer(estimator=estimator, constraints=constraint, objective="accuracy_score",
                                 prefit=True, predict_method="predict_proba")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            opt.fit(X[fit_rows], y[fit_rows], sensitive_features=g[fit_rows])
            new = np.asarray(opt.predict(X[test_rows], sensitive_features=g[test_rows],
                                         random_state=inputs.seed(f"mitigation:{name}:{constraint}")))
        sf, yt = g[test_rows], y[test_rows]
        out.append({
            "slice": name, "constraint": constraint, "fit_rows": int(fit.sum()), "eval_rows": int((~fit).sum()),
            "dp_difference_before": float(flm.demographic_parity_difference(yt, base, sensitive_features=sf)),
            "dp_difference_after": float(flm.demographic_parity_difference(yt, new, sensitive_features=sf)),
            "eo_difference_before": float(flm.equalized_odds_difference(yt, base, sensitive_features=sf)),
            "eo_difference_after": float(flm.equalized_odds_difference(yt, new, sensitive_features=sf)),
            "accuracy_before": float((base == yt).mean()), "accuracy_after": float((new == yt).mean()),
        })
    return out


def _score_estimator() -> Any:
    """A fitted scikit-learn classifier whose input is the model's positive-class probability,
    so ThresholdOptimizer can post-process the shared predictions (prefit)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class _Scores(ClassifierMixin, BaseEstimator):
        def fit(self, X: Any, y: Any) -> _Scores:  # noqa: N803 - scikit-learn's argument names
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
            s = np.asarray(X, dtype=float)[:, 0]
            return np.column_stack([1 - s, s])

        def predict(self, X: Any) -> np.ndarray:  # noqa: N803
            # The argmax of predict_proba's two columns (ties to the positive class).
            return (np.asarray(X, dtype=float)[:, 0] >= 0.5).astype(int)

    return _Scores().fit(np.zeros((2, 1)), np.array([0, 1]))
