"""Group fairness of each slice: per-group rates through fairlearn's ``MetricFrame``, the
headline metrics between groups, and each group against the rest through AIF360.

* Per group: selection rate, accuracy, TPR, FPR, FNR, precision (fairlearn), with seeded
  bootstrap intervals of the selection rate and TPR; a group below ``min_group_size`` is listed
  as too small to judge and left out of everything below.
* Headline, between the judged groups, worst case: demographic parity difference and ratio
  (Calders & Verwer 2010; the four-fifths rule), equalized odds difference and ratio and equal
  opportunity difference (Hardt, Price & Srebro 2016), with intervals from one set of resamples
  stratified by group.
* Each judged group against the rest, through AIF360's ``ClassificationMetric``: disparate
  impact, statistical parity, average odds, TPR and FPR differences, with Bonferroni-adjusted
  intervals over the slice's groups; the Theil and generalized entropy indices (Speicher et al.
  2018). The findings come from these fixed comparisons, not from the most extreme pair, whose
  gap is inflated by chance.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.auditors.fairness._inputs import JUDGED, TOO_SMALL, FairnessInputs, Slice, unclear
from audit.core.results import Figure, Finding, Metric, SectionPart, Table
from audit.core.stats import family_confidence

_RATE_TEXT = {"tpr": "true-positive rate", "fpr": "false-positive rate"}
# When no group of a grouping reaches min_group_size, the report says so in one sentence and
# collapses the rows (results.json keeps them all); a chart of such groups alone is never drawn.
NOTHING_JUDGED = ("No group could be judged: the {groups} groups seen ({names}) each have fewer than "
                  "min_group_size = {min_n} rows. For a judgeable result, pass --sensitive with a column of "
                  "larger groups, or audit more rows.")
SOME_NOT_JUDGED = ("Nothing could be judged in {k} of {total} groupings ({names}): their {groups} groups each have "
                   "fewer than min_group_size = {min_n} rows; pass --sensitive with a column of larger groups, "
                   "or audit more rows.")
# The per-group table on screen (its interval bounds and fnr/precision are in the full table beneath).
# How the headline intervals are made (audit.auditors.fairness._metrics.headline_intervals), in
# the figure captions and the table title.
HEADLINE_INTERVAL = "BCa bootstrap, with a simultaneous bound on the end towards parity"
GROUP_COLUMNS_SHOWN = ("slice", "group", "status", "count", "selection_rate", "accuracy", "tpr", "fpr")
# The AIF360 table on screen: the comparisons; their interval bounds are in the full table beneath.
AIF360_COLUMNS_SHOWN = ("slice", "group", "disparate_impact", "statistical_parity_difference",
                        "average_odds_difference", "tpr_difference", "fpr_difference")
# The generalized entropy index of Speicher et al. 2018 with alpha = 2 (AIF360's default): half
# the squared coefficient of variation of the benefits b = ŷ - y + 1.
GEI_ALPHA = 2


@dataclass(frozen=True, kw_only=True)
class _SliceOutcome:
    """One slice and class: its part of the section and its rows of the three tables."""

    part: SectionPart
    group_rows: tuple[dict[str, Any], ...] = ()
    headline_rows: tuple[dict[str, Any], ...] = ()
    aif_rows: tuple[dict[str, Any], ...] = ()


def group_fairness(inputs: FairnessInputs, *, slices: tuple[Slice, ...]) -> SectionPart:
    """Every slice for every judged class: metrics, findings, the per-group selection-rate
    charts, then the groups, headline and AIF360 tables and the headline charts."""
    import pandas as pd

    outcomes = [_slice_fairness(inputs, s.name + inputs.suffix(c), s.groups, s.kind, c)
                for c in inputs.classes
                for s in inputs.ctx.progress(slices, total=len(slices), desc="fairness: groups")]
    group_rows = [r for o in outcomes for r in o.group_rows]
    headline_rows = [r for o in outcomes for r in o.headline_rows]
    aif_rows = [r for o in outcomes for r in o.aif_rows]
    tables, figures = [], []
    extra = {}
    unjudged = unjudged_slices(group_rows)
    if unjudged:
        extra["groups_unjudged"] = {
            "slices": unjudged, "groups": sum(r["slice"] in unjudged for r in group_rows),
            "min_group_size": inputs.options["min_group_size"],
            "summary": nothing_judged_sentence(group_rows, min_group_size=inputs.options["min_group_size"])}
    if group_rows:
        tables.append(Table.from_frame("groups", pd.DataFrame(group_rows), title="Per-group rates (95% bootstrap CIs)",
                                       shown=GROUP_COLUMNS_SHOWN, chips=("status",)))
    if headline_rows:
        tables.append(Table.from_frame("headline", pd.DataFrame(headline_rows),
                                       title=f"Headline group-fairness metrics (95% intervals: {HEADLINE_INTERVAL})"))
        figures = _headline_figures(inputs, headline_rows)
    if aif_rows:
        aif = pd.DataFrame(aif_rows)
        tables.append(Table.from_frame("aif360", aif, title="AIF360 ClassificationMetric, each group against the rest",
                                       shown=[c for c in AIF360_COLUMNS_SHOWN if c in aif.columns]))
    return SectionPart.merge(*(o.part for o in outcomes), SectionPart(tables=tables, figures=figures, extra=extra))


def unjudged_slices(group_rows: list[dict[str, Any]]) -> list[str]:
    """The slices (in order of first row) none of whose groups reaches the minimum size."""
    seen: dict[str, bool] = {}
    for r in group_rows:
        seen[r["slice"]] = seen.get(r["slice"], False) or r["status"] == JUDGED
    return [name for name, judged in seen.items() if not judged]


def nothing_judged_sentence(group_rows: list[dict[str, Any]], *, min_group_size: int) -> str:
    """One sentence for the slices where nothing could be judged: how many groups were seen, the
    minimum size, and how to get a judgeable result; "" when every slice has a judged group."""
    unjudged = unjudged_slices(group_rows)
    if not unjudged:
        return ""
    total = len({r["slice"] for r in group_rows})
    groups = sum(r["slice"] in unjudged for r in group_rows)
    names = ", ".join(unjudged)
    if len(unjudged) == total:
        return NOTHING_JUDGED.format(groups=groups, names=names, min_n=min_group_size)
    return SOME_NOT_JUDGED.format(k=len(unjudged), total=total, names=names, groups=groups, min_n=min_group_size)


def _slice_fairness(inputs: FairnessInputs, slice_name: str, groups: np.ndarray, kind: str, c: int) -> _SliceOutcome:
    import functools

    import pandas as pd
    from fairlearn import metrics as flm
    from sklearn.metrics import accuracy_score, precision_score

    from audit.auditors.fairness._metrics import headline_intervals, rate_interval

    o = inputs.options
    in_slice = np.array([g is not None for g in groups])
    if in_slice.sum() == 0:
        return _SliceOutcome(part=SectionPart())
    y = (inputs.labels[in_slice] == c).astype(int)
    p = (inputs.preds[in_slice] == c).astype(int)
    g = np.asarray(groups[in_slice]).astype(str)
    frame = flm.MetricFrame(
        metrics={
            "count": flm.count,
            "selection_rate": flm.selection_rate,
            "accuracy": accuracy_score,
            "tpr": flm.true_positive_rate,
            "fpr": flm.false_positive_rate,
            "fnr": flm.false_negative_rate,
            "precision": functools.partial(precision_score, zero_division=np.nan),
        },
        y_true=y, y_pred=p, sensitive_features=pd.Series(g, name="group"))
    by_group = frame.by_group
    min_n = o["min_group_size"]
    judged = [str(k) for k in by_group.index if by_group.loc[k, "count"] >= min_n]
    group_rows, metrics = [], []
    for k in by_group.index:
        rows = g == str(k)
        row = by_group.loc[k]
        status = JUDGED if str(k) in judged else TOO_SMALL
        sel_ci = rate_interval(y[rows], p[rows], rate="selection_rate", n_resamples=o["n_bootstrap"],
                               seed=inputs.seed(f"sel:{slice_name}:{k}"))
        tpr_ci = rate_interval(y[rows], p[rows], rate="tpr", n_resamples=o["n_bootstrap"],
                               seed=inputs.seed(f"tpr:{slice_name}:{k}"))
        group_rows.append({
            "slice": slice_name, "group": str(k), "status": status, "count": int(row["count"]),
            "positives": int(y[rows].sum()),
            "selection_rate": float(row["selection_rate"]), "selection_rate_ci_low": sel_ci[0],
            "selection_rate_ci_high": sel_ci[1], "accuracy": float(row["accuracy"]),
            "tpr": float(row["tpr"]), "tpr_ci_low": tpr_ci[0], "tpr_ci_high": tpr_ci[1],
            "fpr": float(row["fpr"]), "fnr": float(row["fnr"]), "precision": float(row["precision"]),
        })
        metrics.append(Metric("selection_rate", float(row["selection_rate"]), *sel_ci, None,
                              f"{slice_name}={k}", "share of the group predicted positive"))
    if not judged:
        # Nothing here can be judged: no chart (of rates that mean nothing), no note of its own;
        # the section says it once for all such slices (nothing_judged_sentence).
        return _SliceOutcome(part=SectionPart(metrics=metrics), group_rows=tuple(group_rows))
    chart = _selection_chart(slice_name, group_rows,
                             caption=f"Selection rate by group of {slice_name}, 95% bootstrap CIs; "
                                     "groups marked * are too small to judge.")
    rates = SectionPart(metrics=metrics, figures=[chart])
    if len(judged) < 2:
        note = f"{slice_name}: fewer than two groups with at least {min_n} rows; no headline metrics."
        return _SliceOutcome(part=rates + SectionPart(extra={"notes": [note]}), group_rows=tuple(group_rows))
    keep = np.isin(g, judged)
    yj, pj, gj = y[keep], p[keep], g[keep]
    codes = np.searchsorted(np.array(sorted(judged)), gj)
    k_groups = len(judged)
    # The headline compares the judged groups only: the per-group frame serves when that is all of them.
    values = _fairlearn_headline(yj, pj, gj, frame=frame if len(judged) == len(by_group) else None)
    better = {"demographic_parity_ratio": True, "equalized_odds_ratio": True}
    # One set of resamples, stratified by group, for all five (one seed per slice).
    cis = headline_intervals(yj, pj, codes, k_groups, n_resamples=o["n_bootstrap"],
                             seed=inputs.seed(f"headline:{slice_name}"))
    headline, headline_rows = [], []
    for name, ci in cis.items():
        headline.append(Metric(name, float(values[name]), *ci, better.get(name, False), slice_name,
                               f"fairlearn {name}, between groups, worst case"))
        headline_rows.append({"metric": name, "slice": slice_name, "value": float(values[name]),
                              "ci_low": ci[0], "ci_high": ci[1], "groups_judged": k_groups,
                              "groups_too_small": len(by_group) - k_groups})
    vs_rest, aif_rows = _aif360(inputs, slice_name, kind, c, yj, pj, codes, sorted(judged))
    return _SliceOutcome(part=rates + SectionPart(metrics=headline) + vs_rest, group_rows=tuple(group_rows),
                         headline_rows=tuple(headline_rows), aif_rows=tuple(aif_rows))


def _aif360(inputs: FairnessInputs, slice_name: str, kind: str, c: int, y: np.ndarray, p: np.ndarray,
            codes: np.ndarray, names: list[str]) -> tuple[SectionPart, list[dict[str, Any]]]:
    """Each judged group against the rest of the slice, through AIF360, with intervals that
    are Bonferroni-adjusted over the slice's groups; the findings come from these fixed
    comparisons (not from the most extreme pair, whose gap is inflated by chance)."""
    import pandas as pd

    from audit.auditors.fairness._metrics import severity, vs_rest_interval

    o = inputs.options
    BinaryLabelDataset, ClassificationMetric = _import_aif360()
    k = len(names)
    confidence = family_confidence(k)
    level = f"95% CI adjusted for {k} groups" if k > 1 else "95% CI"
    positive = inputs.label_names[c]
    theil = gei = float("nan")
    metrics, findings, aif_rows = [], [], []
    for i, name in enumerate(names):
        member = codes == i
        df = pd.DataFrame({"member": member.astype(float), "label": y.astype(float)})
        truth = BinaryLabelDataset(df=df, label_names=["label"], protected_attribute_names=["member"],
                                   favorable_label=1.0, unfavorable_label=0.0)
        pred = truth.copy(deepcopy=True)
        pred.labels = p.astype(float).reshape(-1, 1)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            m = ClassificationMetric(truth, pred, unprivileged_groups=[{"member": 1.0}],
                                     privileged_groups=[{"member": 0.0}])
            di = float(m.disparate_impact())
            spd = float(m.statistical_parity_difference())
            aod = float(m.average_odds_difference())
            d_tpr = float(m.true_positive_rate_difference())
            d_fpr = float(m.false_positive_rate_difference())
            theil, gei = float(m.theil_index()), float(m.generalized_entropy_index(alpha=GEI_ALPHA))
        salt = f"{slice_name}:{name}"
        di_ci, tpr_ci, fpr_ci = (
            vs_rest_interval(y, p, codes, i, rate=rate, how=how, n_resamples=o["n_bootstrap"],
                             seed=inputs.seed(f"{key}:{salt}"), confidence=confidence)
            for key, rate, how in (("di", "selection_rate", "ratio"), ("tpr", "tpr", "diff"),
                                   ("fpr", "fpr", "diff")))
        aif_rows.append({"slice": slice_name, "group": name, "disparate_impact": di, "di_ci_low": di_ci[0],
                         "di_ci_high": di_ci[1], "statistical_parity_difference": spd,
                         "average_odds_difference": aod, "tpr_difference": d_tpr, "tpr_diff_ci_low": tpr_ci[0],
                         "tpr_diff_ci_high": tpr_ci[1], "fpr_difference": d_fpr, "fpr_diff_ci_low": fpr_ci[0],
                         "fpr_diff_ci_high": fpr_ci[1]})
        where = f"{slice_name}={name}"
        vs = f"the group against the rest of {slice_name} (AIF360); interval: {level}"
        metrics += [
            Metric("disparate_impact", di, *di_ci, True, where, f"selection-rate ratio, {vs}"),
            Metric("statistical_parity_difference", spd, None, None, None, where, f"selection-rate difference, {vs}"),
            Metric("average_odds_difference", aod, None, None, None, where, f"mean of TPR and FPR differences, {vs}"),
            Metric("true_positive_rate_difference", d_tpr, *tpr_ci, None, where, f"TPR difference, {vs}"),
            Metric("false_positive_rate_difference", d_fpr, *fpr_ci, None, where, f"FPR difference, {vs}"),
        ]
        evidence = {"slice": slice_name, "group": name, "reference_group": f"rest of {slice_name}",
                    "kind": kind, "confidence": confidence}
        sev = severity(di, *di_ci, threshold=o["dp_ratio_min"], parity=1.0, bad="below")
        if sev is not None:
            findings.append(Finding(
                sev,
                f"Group {name} ({slice_name}) receives '{positive}' at {di:.2f}× the rate of the other groups "
                f"({level} {di_ci[0]:.2f}–{di_ci[1]:.2f}): below the four-fifths threshold {o['dp_ratio_min']:g}",
                f"Selection rate {p[member].mean():.3f} (n={int(member.sum())}) against {p[~member].mean():.3f} "
                f"(n={int((~member).sum())}). Disparate impact (AIF360), the four-fifths rule of the US EEOC "
                "guidelines; demographic parity, Calders & Verwer 2010." + unclear(sev),
                {**evidence, "check": "disparate_impact", "direction": "less_positive", "value": di,
                 "ci": list(di_ci), "threshold": o["dp_ratio_min"]}))
        odds = _odds_finding(inputs, slice_name, name, positive, level, evidence,
                             (("tpr", d_tpr, tpr_ci), ("fpr", d_fpr, fpr_ci)))
        if odds is not None:
            findings.append(odds)
    metrics.append(Metric("theil_index", theil, None, None, False, slice_name,
                          "AIF360 Theil index of benefits b = ŷ - y + 1 (Speicher et al. 2018)"))
    metrics.append(Metric("generalized_entropy_index", gei, None, None, False, slice_name,
                          f"AIF360 generalized entropy index, alpha = {GEI_ALPHA} (Speicher et al. 2018)"))
    return SectionPart(metrics=metrics, findings=findings), aif_rows


def _odds_finding(inputs: FairnessInputs, slice_name: str, name: str, positive: str, level: str,
                  evidence: dict[str, Any],
                  rates: tuple[tuple[str, float, tuple[float, float]], ...]) -> Finding | None:
    """The equalized-odds finding of one group: the TPR or FPR difference past ``eo_diff_max``
    with the worse severity (then the larger size), or None when neither is past it."""
    from audit.auditors.fairness._metrics import severity

    limit = inputs.options["eo_diff_max"]
    found = []
    for rate, value, ci in rates:
        sign = -1.0 if value < 0 else 1.0
        mag_ci = sorted((sign * ci[0], sign * ci[1]))
        sev = severity(sign * value, *mag_ci, threshold=limit, parity=0.0, bad="above")
        if sev is not None:
            found.append((("info", "warn", "fail").index(sev), abs(value), rate, value, ci, sev))
    if not found:
        return None
    _, _, rate, value, ci, sev = max(found)
    lower = value < 0
    direction = "less_positive" if lower else "more_positive"
    if rate == "tpr":
        how = f"'{positive}' texts from group {name} are recognised {'less' if lower else 'more'} often"
    else:
        how = f"texts from group {name} are wrongly called '{positive}' {'less' if lower else 'more'} often"
    return Finding(
        sev,
        f"Equalized odds ({slice_name}): {how} than in the other groups ({_RATE_TEXT[rate]} "
        f"difference {value:+.2f}, {level} {ci[0]:+.2f} to {ci[1]:+.2f}; threshold ±{limit:g})",
        "Equalized odds (Hardt, Price & Srebro 2016) asks for equal true- and false-positive rates "
        "across groups." + unclear(sev),
        {**evidence, "check": "equalized_odds", "rate": rate, "direction": direction, "value": value,
         "ci": list(ci), "threshold": limit})


def _headline_figures(inputs: FairnessInputs, rows: list[dict[str, Any]]) -> list[Figure]:
    """One bar chart per headline metric, a bar per slice, with its threshold where it has one."""
    from audit.auditors.fairness._metrics import HEADLINE

    o = inputs.options
    refs = {"demographic_parity_ratio": (o["dp_ratio_min"], "four-fifths threshold"),
            "equalized_odds_difference": (o["eo_diff_max"], "threshold")}
    figures = []
    for name in HEADLINE:
        sel = [r for r in rows if r["metric"] == name]
        ref, ref_label = refs.get(name, (None, ""))
        figures.append(Figure.bar(f"headline:{name}", labels=[r["slice"] for r in sel],
                                  values=[r["value"] for r in sel], ci_low=[r["ci_low"] for r in sel],
                                  ci_high=[r["ci_high"] for r in sel], title=name.replace("_", " "),
                                  reference=ref, reference_label=ref_label,
                                  caption=f"{name} per grouping, 95% interval ({HEADLINE_INTERVAL})."))
    return figures


def _selection_chart(slice_name: str, rows: list[dict[str, Any]], *, caption: str) -> Figure:
    labels = [f"{r['group']} (n={r['count']}){' *' if r['status'] == TOO_SMALL else ''}" for r in rows]
    return Figure.bar(f"selection_rate:{slice_name}", labels=labels, values=[r["selection_rate"] for r in rows],
                      ci_low=[r["selection_rate_ci_low"] for r in rows],
                      ci_high=[r["selection_rate_ci_high"] for r in rows],
                      title=f"Selection rate by {slice_name}", xlabel="share predicted positive", caption=caption)


def _fairlearn_headline(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *,
                        frame: Any = None) -> dict[str, float]:
    """fairlearn's five headline functions (``demographic_parity_difference`` and ``_ratio``,
    ``equalized_odds_difference`` and ``_ratio``, ``equal_opportunity_difference``) of these
    rows, read off one ``MetricFrame`` with ``selection_rate``, ``tpr`` and ``fpr`` columns:
    ``frame`` when given (built over exactly these rows), else a new one.

    Each of those functions builds a frame of one or two of these metrics and returns its
    ``difference()`` or ``ratio()`` between groups (the equalized-odds pair through Python's
    max/min over tpr then fpr); a frame computes those per column, so these are the same values,
    without five more frames per grouping (once the bootstrap was vectorised, the largest part of
    the groups step).
    """
    if frame is None:
        import pandas as pd
        from fairlearn import metrics as flm

        frame = flm.MetricFrame(
            metrics={"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate,
                     "fpr": flm.false_positive_rate},
            y_true=y_true, y_pred=y_pred, sensitive_features=pd.Series(groups, name="group"))
    diff, ratio = frame.difference(), frame.ratio()
    return {
        "demographic_parity_difference": diff["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        "equalized_odds_difference": max(diff[["tpr", "fpr"]]),
        "equalized_odds_ratio": min(ratio[["tpr", "fpr"]]),
        "equal_opportunity_difference": diff["tpr"],
    }


def _import_aif360() -> tuple[Any, Any]:
    """Import AIF360 quietly: it logs missing optional backends (tensorflow, inFairness) on the
    root logger, and ``logging.warning`` would also install a stderr handler on the root logger
    as a side effect. Both are undone here so the CLI output stays clean."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from aif360.datasets import BinaryLabelDataset
            from aif360.metrics import ClassificationMetric
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return BinaryLabelDataset, ClassificationMetric
