"""Bias AUCs per identity subgroup (Borkan et al. 2019, "Nuanced Metrics for Measuring
Unintended Bias with Real Data for Text Classification") and the final score of the Jigsaw
Unintended Bias in Toxicity Classification benchmark.

Subgroups are the rows mentioning each identity term, then the groups of each sensitive column
not already among them. A subgroup whose rows all have one class (inside it, or outside it) is
listed with that reason, as its AUCs are undefined, apart from those too small to judge. The gap
of each bias AUC to the overall AUC gets a seeded bootstrap interval, stratified by subgroup and
class and Bonferroni-adjusted over the judged subgroups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from audit.auditors.fairness._inputs import JUDGED, ONE_CLASS, REST_ONE_CLASS, TOO_SMALL, FairnessInputs, unclear
from audit.auditors.fairness._metrics import JIGSAW_POWER
from audit.core.results import Figure, Finding, Metric, SectionPart, Table
from audit.core.stats import family_confidence

# The heatmap's colour scale: an AUC of 0.5 ranks no better than chance, 1.0 perfectly.
AUC_CHANCE, AUC_PERFECT = 0.5, 1.0
_LABELS = {"subgroup_auc": "subgroup AUC", "bpsn_auc": "BPSN AUC", "bnsp_auc": "BNSP AUC"}
# No subgroup judged: the report says so in one sentence and collapses the table (results.json keeps it).
NO_SUBGROUP_JUDGED = ("No subgroup could be judged: none of the {subgroups} identity-term subgroups seen has "
                      "min_group_size = {min_n} rows with both classes. For a judgeable result, audit more rows "
                      "that mention identity terms, or pass --sensitive with a column of larger groups.")

# On screen: the AUCs; their gap intervals stay in the collapsed full table and results.json.
BIAS_AUC_COLUMNS_SHOWN = ("subgroup", "count", "positives", "status", "subgroup_auc", "bpsn_auc", "bnsp_auc")


def bias_aucs(inputs: FairnessInputs) -> SectionPart:
    """Per judged class: the overall AUC, each subgroup's bias AUCs and their gaps, the power
    means (p = JIGSAW_POWER) and the Jigsaw final score; then the table and the heatmap."""
    import pandas as pd

    subgroups = _subgroups(inputs)
    if not subgroups:
        return SectionPart()
    rows: list[dict[str, Any]] = []
    parts = []
    for c in inputs.classes:
        part, class_rows = _class_bias_aucs(inputs, subgroups, c)
        parts.append(part)
        rows += class_rows
    if not rows:
        return SectionPart.merge(*parts)
    frame = pd.DataFrame(rows)
    tables = [Table.from_frame("bias_auc", frame, title="Bias AUCs per subgroup (Borkan et al. 2019)",
                               shown=[c for c in BIAS_AUC_COLUMNS_SHOWN if c in frame.columns],
                               chips=[c for c in ("status",) if c in frame.columns])]
    shown = frame[frame["status"] == JUDGED]
    figures = []
    extra = {}
    if not len(shown):
        extra["bias_auc_unjudged"] = NO_SUBGROUP_JUDGED.format(subgroups=frame["subgroup"].nunique(),
                                                               min_n=inputs.options["min_group_size"])
    if len(shown):
        figures.append(Figure.heatmap(
            "bias_auc_heatmap", cells=shown[["subgroup_auc", "bpsn_auc", "bnsp_auc"]].to_numpy(),
            rows=list(shown["subgroup"]), columns=["subgroup AUC", "BPSN AUC", "BNSP AUC"], title="Bias AUCs",
            decimals=2, colourmap="RdYlGn", vmin=AUC_CHANCE, vmax=AUC_PERFECT,
            caption="Bias AUCs per judged subgroup; low BNSP: the subgroup's positives score too low; "
                    "low BPSN: its negatives score too high."))
    return SectionPart.merge(*parts, SectionPart(tables=tables, figures=figures, extra=extra))


def _class_bias_aucs(inputs: FairnessInputs, subgroups: list[tuple[str, np.ndarray]],
                     c: int) -> tuple[SectionPart, list[dict[str, Any]]]:
    """Class ``c`` against the rest: its metrics and findings, and a table row per subgroup."""
    from audit.auditors.fairness._metrics import auc, bias_auc, bias_aucs, jigsaw_final_score, power_mean, severity

    o = inputs.options
    suffix = inputs.suffix(c)
    y = (inputs.labels == c).astype(int)
    score = inputs.probs[:, c]
    overall = auc(y, score)
    if not np.isfinite(overall):
        return SectionPart(), []
    metrics = [Metric("overall_auc", overall, None, None, True, None if not suffix else suffix.strip(),
                      "ROC AUC over all rows")]
    findings = []
    rows: list[dict[str, Any]] = []
    judged: dict[str, list[float]] = {"subgroup_auc": [], "bpsn_auc": [], "bnsp_auc": []}
    any_term = False
    status = {name: subgroup_status(y, mask, o["min_group_size"]) for name, mask in subgroups}
    usable = [(name, mask) for name, mask in subgroups if status[name] == JUDGED]
    # Bonferroni over the judged subgroups, so many subgroups do not raise alarms by chance.
    confidence = family_confidence(len(usable))
    level = f"95% CI adjusted for {len(usable)} subgroups" if len(usable) > 1 else "95% CI"
    for name, mask in inputs.ctx.progress(subgroups, total=len(subgroups), desc="fairness: bias AUCs"):
        values = bias_aucs(y, score, mask)
        row = {"subgroup": name + suffix, "count": int(mask.sum()), "positives": int(y[mask].sum()),
               "status": status[name], **values}
        rows.append(row)
        if status[name] != JUDGED:
            continue
        is_term = "=" not in name
        any_term = any_term or is_term
        strata = mask.astype(int) * 2 + y
        for kind, value in values.items():
            gap_ci = inputs.ci(lambda yy, ss, mm, kind=kind: auc(yy, ss) - bias_auc(yy, ss, mm, kind),
                               [y, score, mask], salt=f"{kind}:{name}{suffix}", strata=strata, confidence=confidence)
            gap = overall - value
            metrics.append(Metric(kind, value, None, None, True, name + suffix,
                                  f"Borkan et al. 2019 {kind.replace('_', ' ')}"))
            metrics.append(Metric(f"{kind}_gap", gap, *gap_ci, False, name + suffix,
                                  f"overall AUC minus the {kind.replace('_', ' ')}; interval: {level}"))
            row[f"{kind}_gap_ci_low"], row[f"{kind}_gap_ci_high"] = gap_ci
            if is_term:
                judged[kind].append(value)
            sev = severity(gap, *gap_ci, threshold=o["bias_auc_gap_max"], parity=0.0, bad="above")
            if sev is not None:
                findings.append(_bias_finding(inputs, sev, kind, name, suffix, c, value, overall, gap, gap_ci, level))
    if not any_term:  # no identity-term subgroup: score the sensitive-column groups instead
        for row in rows:
            if row["status"] == JUDGED:
                for kind in judged:
                    judged[kind].append(row[kind])
    if judged["subgroup_auc"]:
        where = suffix.strip() or None
        for kind, v in judged.items():
            metrics.append(Metric(f"power_mean_{kind}", power_mean(v, JIGSAW_POWER), None, None, True, where,
                                  f"generalized mean (p = {JIGSAW_POWER:g}) over judged subgroups, Borkan et al. 2019"))
        final = jigsaw_final_score(overall, judged["subgroup_auc"], judged["bpsn_auc"], judged["bnsp_auc"])
        metrics.append(Metric("jigsaw_final_score", final, None, None, True, where,
                              "0.25 overall AUC + 0.25 each power mean of the bias AUCs (Jigsaw benchmark)"))
    return SectionPart(metrics=metrics, findings=findings), rows


def _subgroups(inputs: FairnessInputs) -> list[tuple[str, np.ndarray]]:
    """Identity-term subgroups (rows mentioning the term), then sensitive-column groups
    whose rows are not already an identity subgroup."""
    out: list[tuple[str, np.ndarray]] = []
    for (_, term), mask in inputs.mentions.items():
        if mask.any():
            out.append((term, mask))
    seen = [m for _, m in out]
    for col in inputs.ctx.sensitive:
        values = np.array([str(v) for v in inputs.ctx.data.column(col).to_numpy()], dtype=object)
        for v in sorted(set(values)):
            mask = values == v
            if any(np.array_equal(mask, s) for s in seen):
                continue
            out.append((f"{col}={v}", mask))
    return out


def subgroup_status(y: np.ndarray, mask: np.ndarray, min_n: int) -> str:
    """Whether a subgroup's bias AUCs can be judged, and if not, why: too few rows, or one class
    only inside it (or outside it), where the AUCs are undefined rather than uncertain."""
    n, positives = int(mask.sum()), int(y[mask].sum())
    if n < min_n:
        return TOO_SMALL
    if positives in (0, n):
        return ONE_CLASS
    rest, rest_positives = int((~mask).sum()), int(y[~mask].sum())
    if rest_positives in (0, rest):
        return REST_ONE_CLASS
    return JUDGED


def _bias_finding(inputs: FairnessInputs, sev: str, kind: str, name: str, suffix: str, c: int, value: float,
                  overall: float, gap: float, ci: tuple[float, float], level: str) -> Finding:
    positive = inputs.label_names[c]
    who = f"texts mentioning '{name}'" if "=" not in name else f"rows with {name}"
    numbers = (f"{_LABELS[kind]} {value:.2f} against {overall:.2f} overall "
               f"(gap {gap:.2f}, {level} {ci[0]:.2f}–{ci[1]:.2f})")
    if kind == "bnsp_auc":
        title, direction = f"The model pushes {who} away from '{positive}'{suffix}: {numbers}", "less_positive"
        detail = "Their positive examples score below negative examples without the mention (BNSP AUC)."
    elif kind == "bpsn_auc":
        title, direction = f"The model pushes {who} toward '{positive}'{suffix}: {numbers}", "more_positive"
        detail = "Their negative examples score above positive examples without the mention (BPSN AUC)."
    else:
        title, direction = f"The model separates the classes worse within {who}{suffix}: {numbers}", "worse_separation"
        detail = "Within the subgroup, positives and negatives are ranked less well than overall (subgroup AUC)."
    detail += " Borkan et al. 2019, 'Nuanced Metrics for Measuring Unintended Bias with Real Data'." + unclear(sev)
    return Finding(sev, title, detail, {"check": kind, "subgroup": name, "group": name.split("=")[-1],
                                       "direction": direction, "value": value, "overall_auc": overall,
                                       "gap_ci": list(ci), "threshold": inputs.options["bias_auc_gap_max"]})
