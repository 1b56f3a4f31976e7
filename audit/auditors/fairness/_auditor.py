"""Fairness auditor: group metrics with confidence intervals, identity-term bias AUCs and
counterfactual token swaps, plus advisory post-processing evidence.

* Group fairness over the sensitive columns (each alone and, with several, intersected), or
  over identity-term groups when no column is given: per-group rates through fairlearn's
  ``MetricFrame``; demographic parity (Calders & Verwer 2010; the four-fifths rule),
  equalized odds and equal opportunity (Hardt et al. 2016) through fairlearn's functions;
  disparate impact, statistical parity, average odds (each group against the rest), Theil and
  generalized entropy indices (Speicher et al. 2018) through AIF360's ``ClassificationMetric``.
  Seeded bootstrap intervals are stratified by group; a group below ``min_group_size`` is
  listed as too small to judge and left out of the headline metrics.
* Bias AUCs per identity subgroup (Borkan et al. 2019) and the Jigsaw final score; a subgroup
  whose rows all have one class is listed with that reason (its AUCs are undefined), apart from
  those too small to judge.
* Counterfactual token fairness (Garg et al. 2019): each identity term swapped for the other
  terms of its category, the variants re-scored through the shared target.
* Mitigation evidence: fairlearn's ``ThresholdOptimizer`` (Hardt et al. 2016) fitted on a
  seeded half and scored on the other; advisory only.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.core.options import Option
from audit.core.results import AuditorResult, Figure, Finding, Metric, Table
from audit.errors import OPTION_INVALID, AuditInputError

if TYPE_CHECKING:
    import pandas as pd

    from audit.auditors.fairness._identity import Lexicon
    from audit.core.context import AuditContext

SKIP_MULTI_LABEL = "multi-label classifiers are not supported by the fairness auditor yet"
POSITIVE_LABEL_UNKNOWN = "expected one of the model's labels {known} (name or index), got {value!r}"
INTERSECTION = "×"
TOO_SMALL = "too small to judge"
# A bias AUC ranks positives against negatives: with one class on a side it does not exist,
# however many rows there are (Borkan et al. 2019 leave such subgroups out too).
ONE_CLASS = "one class only: AUC undefined"
REST_ONE_CLASS = "fewer than two classes outside it: BPSN/BNSP AUC undefined"
JUDGED = "judged"
ADVISORY = ("Advisory: what post-processing with per-group thresholds could buy on held-out rows; "
            "it uses the sensitive attribute at prediction time, which may be unlawful or unwanted.")

_RATE_TEXT = {"tpr": "true-positive rate", "fpr": "false-positive rate"}


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


class FairnessAuditor(Auditor):
    """Group fairness, bias AUCs and counterfactual token fairness of a text classifier."""

    name: ClassVar[str] = "fairness"
    title: ClassVar[str] = "Fairness"
    description: ClassVar[str] = (
        "Group metrics with bootstrap intervals over sensitive columns or identity terms (fairlearn, AIF360), "
        "bias AUCs (Borkan et al. 2019), counterfactual identity-term swaps (Garg et al. 2019)."
    )
    requires: ClassVar[frozenset[str]] = frozenset({"labels"})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "average_odds_difference", "bnsp_auc", "bnsp_auc_gap", "bpsn_auc", "bpsn_auc_gap",
        "counterfactual_flip_rate", "counterfactual_max_abs_delta", "counterfactual_mean_abs_delta",
        "counterfactual_term_effect", "demographic_parity_difference", "demographic_parity_ratio",
        "disparate_impact", "equal_opportunity_difference", "equalized_odds_difference", "equalized_odds_ratio",
        "false_positive_rate_difference", "generalized_entropy_index", "jigsaw_final_score", "overall_auc",
        "power_mean_bnsp_auc", "power_mean_bpsn_auc", "power_mean_subgroup_auc", "selection_rate",
        "statistical_parity_difference", "subgroup_auc", "subgroup_auc_gap", "theil_index",
        "true_positive_rate_difference",
    })
    params: ClassVar[dict[str, Option]] = {
        "positive_label": Option(kind="label", nullable=True,
                                 help="label name or id; default class 1 when binary, one-vs-rest when multi-class"),
        "min_group_size": Option(kind="int", min=1, default=30, help="smaller groups are listed as too small to judge"),
        "dp_ratio_min": Option(kind="float", min=0, min_exclusive=True, max=1, default=0.8, help="four-fifths rule"),
        "eo_diff_max": Option(kind="float", min=0, max=0.999999, default=0.1, help="equalized-odds difference"),
        "bias_auc_gap_max": Option(kind="float", min=0, max=0.999999, default=0.05,
                                   help="overall AUC minus a subgroup's bias AUC"),
        "cf_effect_max": Option(kind="float", min=0, max=0.999999, default=0.1,
                                help="counterfactual term effect on the positive-class probability"),
        "n_bootstrap": Option(kind="int", min=1, max=1_000_000, default=1000, help="bootstrap resamples"),
        "lexicon": Option(kind="file", nullable=True, help="YAML file extending the built-in identity terms"),
        "identity_groups": Option(kind="str", choices=("auto", "always", "never"), default="auto",
                                  help="group metrics over identity terms"),
        "counterfactual": Option(kind="bool", default=True, help="counterfactual identity-term swaps"),
        "swap_to": Option(kind="str", choices=("observed", "lexicon"), default="observed",
                          help="swap in terms seen in the data, or every lexicon term"),
        "min_term_rows": Option(kind="int", min=1, default=5, help="with swap_to=observed: rows a term needs"),
        "max_counterfactual_rows": Option(kind="int", min=1, default=200, help="per category, seeded sample"),
        "n_examples": Option(kind="int", min=1, default=10, help="examples shown"),
        "mitigation": Option(kind="bool", default=True, help="advisory mitigation (fairlearn ThresholdOptimizer)"),
    }

    def _validate(self) -> None:
        """A user lexicon is read now, so a malformed one is an error before the model loads."""
        if self.options["lexicon"] is not None:
            from audit.auditors.fairness._identity import load_lexicon

            load_lexicon(self.options["lexicon"])
    # ------------------------------------------------------------------ run

    def _run(self, ctx: AuditContext) -> AuditorResult:
        from audit.auditors.fairness._identity import load_lexicon

        if ctx.data.multi_label:
            return AuditorResult(auditor=self.name, status="skipped", reason=SKIP_MULTI_LABEL)
        run = _Run(self.options, ctx, load_lexicon(self.options["lexicon"]))
        return run.execute()


class _Run:
    """One execution of the auditor; collects metrics, tables, figures and findings."""

    def __init__(self, options: dict[str, Any], ctx: AuditContext, lexicon: Lexicon) -> None:
        self.o = options
        self.ctx = ctx
        self.lexicon = lexicon
        self.labels = np.asarray(ctx.data.labels, dtype=int)
        self.label_names = list(ctx.data.label_names)
        self.probs = ctx.predictions.probs
        self.preds = np.asarray(ctx.predictions.preds, dtype=int)
        self.texts = list(ctx.data.texts)
        self.classes = self._positive_classes()
        self.metrics: list[Metric] = []
        self.tables: list[Table] = []
        self.figures: list[Figure] = []
        self.findings: list[Finding] = []
        self.extra: dict[str, Any] = {}
        self.mentions = lexicon.mentions(self.texts)
        self.observed = {k for k, v in self.mentions.items() if v.any()}

    # ----------------------------------------------------------- helpers

    def _positive_classes(self) -> list[int]:
        k = len(self.label_names)
        value = self.o["positive_label"]
        if value is None:
            return [1] if k == 2 else list(range(k))
        if isinstance(value, int) and 0 <= value < k:
            return [value]
        if isinstance(value, str) and value in self.label_names:
            return [self.label_names.index(value)]
        raise AuditInputError(OPTION_INVALID.format(
            option="positive_label", problem=POSITIVE_LABEL_UNKNOWN.format(known=self.label_names, value=value)))

    def _suffix(self, c: int) -> str:
        return "" if len(self.classes) == 1 else f" [{self.label_names[c]}]"

    def _seed(self, salt: str) -> int:
        return int(self.ctx.rng(f"fairness:{salt}").integers(2**31 - 1))

    def _ci(self, statistic: Callable[..., float], arrays: list[np.ndarray], *, salt: str,
            strata: np.ndarray | None = None, confidence: float = 0.95) -> tuple[float, float]:
        from audit.core.stats import bootstrap_ci

        with np.errstate(divide="ignore", invalid="ignore"):
            return bootstrap_ci(statistic, arrays, n_resamples=self.o["n_bootstrap"], seed=self._seed(salt),
                                strata=strata, confidence=confidence)

    def _slices(self) -> list[tuple[str, np.ndarray, str]]:
        """(name, group label per row or None, kind) for every grouping to judge."""
        out: list[tuple[str, np.ndarray, str]] = []
        cols = list(self.ctx.sensitive)
        values = {c: np.array([str(v) for v in self.ctx.data.column(c).to_numpy()], dtype=object) for c in cols}
        for c in cols:
            out.append((c, values[c], "column"))
        if len(cols) > 1:
            joined = np.array([INTERSECTION.join(parts) for parts in zip(*(values[c] for c in cols), strict=True)],
                              dtype=object)
            out.append((INTERSECTION.join(cols), joined, "intersection"))
        mode = self.o["identity_groups"]
        if mode == "always" or (mode == "auto" and not cols):
            for category, terms in self.lexicon.categories.items():
                names = [t.name for t in terms if (category, t.name) in self.observed]
                if len(names) < 2:
                    continue
                hits = np.column_stack([self.mentions[(category, n)] for n in names])
                one = hits.sum(axis=1) == 1
                groups = np.full(len(self.texts), None, dtype=object)
                groups[one] = np.asarray(names, dtype=object)[hits[one].argmax(axis=1)]
                out.append((category, groups, "identity"))
        return out

    # ----------------------------------------------------------- execute

    def execute(self) -> AuditorResult:
        headline_rows: list[dict[str, Any]] = []
        group_rows: list[dict[str, Any]] = []
        aif_rows: list[dict[str, Any]] = []
        start = time.perf_counter()
        slices = self._slices()
        for c in self.classes:
            for name, groups, kind in self.ctx.progress(slices, total=len(slices), desc="fairness: groups"):
                self._group_fairness(name + self._suffix(c), groups, kind, c, headline_rows, group_rows, aif_rows)
        if group_rows:
            import pandas as pd

            self.tables.append(Table.from_frame("groups", pd.DataFrame(group_rows),
                                                title="Per-group rates (95% bootstrap CIs)"))
        if headline_rows:
            import pandas as pd

            self.tables.append(Table.from_frame("headline", pd.DataFrame(headline_rows),
                                                title="Headline group-fairness metrics (95% bootstrap CIs)"))
            self._headline_figures(headline_rows)
        if aif_rows:
            import pandas as pd

            self.tables.append(Table.from_frame("aif360", pd.DataFrame(aif_rows),
                                                title="AIF360 ClassificationMetric, each group against the rest"))
        timings = {"groups": time.perf_counter() - start}
        for step, enabled, work in (("bias_auc", True, lambda: self._bias_aucs(slices)),
                                    ("counterfactual", self.o["counterfactual"], self._counterfactuals),
                                    ("mitigation", self.o["mitigation"], lambda: self._mitigation(slices))):
            if enabled:
                t0 = time.perf_counter()
                work()
                timings[step] = time.perf_counter() - t0
        if not slices:
            self.extra["note"] = "No sensitive column was given and the data mentions too few identity terms for groups."
        rank = {"fail": 0, "warn": 1, "info": 2}
        findings = sorted(self.findings, key=lambda f: rank[f.severity])
        return AuditorResult(auditor="fairness", metrics=tuple(self.metrics), tables=tuple(self.tables),
                             figures=tuple(self.figures), findings=tuple(findings), timings=timings,
                             extra=self.extra)

    # ----------------------------------------------------------- group fairness

    def _group_fairness(self, slice_name: str, groups: np.ndarray, kind: str, c: int,
                        headline_rows: list[dict[str, Any]], group_rows: list[dict[str, Any]],
                        aif_rows: list[dict[str, Any]]) -> None:
        import functools

        import pandas as pd
        from fairlearn import metrics as flm
        from sklearn.metrics import accuracy_score, precision_score

        from audit.auditors.fairness._metrics import headline_intervals, rate_interval

        in_slice = np.array([g is not None for g in groups])
        if in_slice.sum() == 0:
            return
        y = (self.labels[in_slice] == c).astype(int)
        p = (self.preds[in_slice] == c).astype(int)
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
        min_n = self.o["min_group_size"]
        judged = [str(k) for k in by_group.index if by_group.loc[k, "count"] >= min_n]
        for k in by_group.index:
            rows = g == str(k)
            row = by_group.loc[k]
            status = JUDGED if str(k) in judged else TOO_SMALL
            sel_ci = rate_interval(y[rows], p[rows], rate="selection_rate", n_resamples=self.o["n_bootstrap"],
                                   seed=self._seed(f"sel:{slice_name}:{k}"))
            tpr_ci = rate_interval(y[rows], p[rows], rate="tpr", n_resamples=self.o["n_bootstrap"],
                                   seed=self._seed(f"tpr:{slice_name}:{k}"))
            group_rows.append({
                "slice": slice_name, "group": str(k), "status": status, "count": int(row["count"]),
                "positives": int(y[rows].sum()),
                "selection_rate": float(row["selection_rate"]), "selection_rate_ci_low": sel_ci[0],
                "selection_rate_ci_high": sel_ci[1], "accuracy": float(row["accuracy"]),
                "tpr": float(row["tpr"]), "tpr_ci_low": tpr_ci[0], "tpr_ci_high": tpr_ci[1],
                "fpr": float(row["fpr"]), "fnr": float(row["fnr"]), "precision": float(row["precision"]),
            })
            self.metrics.append(Metric("selection_rate", float(row["selection_rate"]), *sel_ci, None,
                                       f"{slice_name}={k}", "share of the group predicted positive"))
        self.figures.append(_selection_chart(slice_name, group_rows,
                                             caption=f"Selection rate by group of {slice_name}, 95% bootstrap CIs; "
                                                     "groups marked * are too small to judge."))
        if len(judged) < 2:
            self.extra.setdefault("notes", []).append(
                f"{slice_name}: fewer than two groups with at least {min_n} rows; no headline metrics.")
            return
        keep = np.isin(g, judged)
        yj, pj, gj = y[keep], p[keep], g[keep]
        codes = np.searchsorted(np.array(sorted(judged)), gj)
        k_groups = len(judged)
        # The headline compares the judged groups only: the per-group frame serves when that is all of them.
        values = _fairlearn_headline(yj, pj, gj, frame=frame if len(judged) == len(by_group) else None)
        better = {"demographic_parity_ratio": True, "equalized_odds_ratio": True}
        # One set of resamples, stratified by group, for all five (one seed per slice).
        cis = headline_intervals(yj, pj, codes, k_groups, n_resamples=self.o["n_bootstrap"],
                                 seed=self._seed(f"headline:{slice_name}"))
        for name, ci in cis.items():
            self.metrics.append(Metric(name, float(values[name]), *ci, better.get(name, False), slice_name,
                                       f"fairlearn {name}, between groups, worst case"))
            headline_rows.append({"metric": name, "slice": slice_name, "value": float(values[name]),
                                  "ci_low": ci[0], "ci_high": ci[1], "groups_judged": k_groups,
                                  "groups_too_small": len(by_group) - k_groups})
        self._aif360(slice_name, kind, c, yj, pj, codes, sorted(judged), aif_rows)

    def _aif360(self, slice_name: str, kind: str, c: int, y: np.ndarray, p: np.ndarray, codes: np.ndarray,
                names: list[str], aif_rows: list[dict[str, Any]]) -> None:
        """Each judged group against the rest of the slice, through AIF360, with intervals that
        are Bonferroni-adjusted over the slice's groups; the findings come from these fixed
        comparisons (not from the most extreme pair, whose gap is inflated by chance)."""
        import pandas as pd

        from audit.auditors.fairness._metrics import severity, vs_rest_interval

        BinaryLabelDataset, ClassificationMetric = _import_aif360()
        k = len(names)
        confidence = 1 - 0.05 / k
        level = f"95% CI adjusted for {k} groups" if k > 1 else "95% CI"
        positive = self.label_names[c]
        theil = gei = float("nan")
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
                theil, gei = float(m.theil_index()), float(m.generalized_entropy_index(alpha=2))
            salt = f"{slice_name}:{name}"
            di_ci, tpr_ci, fpr_ci = (
                vs_rest_interval(y, p, codes, i, rate=rate, how=how, n_resamples=self.o["n_bootstrap"],
                                 seed=self._seed(f"{key}:{salt}"), confidence=confidence)
                for key, rate, how in (("di", "selection_rate", "ratio"), ("tpr", "tpr", "diff"),
                                       ("fpr", "fpr", "diff")))
            aif_rows.append({"slice": slice_name, "group": name, "disparate_impact": di, "di_ci_low": di_ci[0],
                             "di_ci_high": di_ci[1], "statistical_parity_difference": spd,
                             "average_odds_difference": aod, "tpr_difference": d_tpr, "tpr_diff_ci_low": tpr_ci[0],
                             "tpr_diff_ci_high": tpr_ci[1], "fpr_difference": d_fpr, "fpr_diff_ci_low": fpr_ci[0],
                             "fpr_diff_ci_high": fpr_ci[1]})
            where = f"{slice_name}={name}"
            vs = f"the group against the rest of {slice_name} (AIF360); interval: {level}"
            self.metrics += [
                Metric("disparate_impact", di, *di_ci, True, where, f"selection-rate ratio, {vs}"),
                Metric("statistical_parity_difference", spd, None, None, None, where, f"selection-rate difference, {vs}"),
                Metric("average_odds_difference", aod, None, None, None, where, f"mean of TPR and FPR differences, {vs}"),
                Metric("true_positive_rate_difference", d_tpr, *tpr_ci, None, where, f"TPR difference, {vs}"),
                Metric("false_positive_rate_difference", d_fpr, *fpr_ci, None, where, f"FPR difference, {vs}"),
            ]
            evidence = {"slice": slice_name, "group": name, "reference_group": f"rest of {slice_name}",
                        "kind": kind, "confidence": confidence}
            sev = severity(di, *di_ci, threshold=self.o["dp_ratio_min"], parity=1.0, bad="below")
            if sev is not None:
                self.findings.append(Finding(
                    sev,
                    f"Group {name} ({slice_name}) receives '{positive}' at {di:.2f}× the rate of the other groups "
                    f"({level} {di_ci[0]:.2f}–{di_ci[1]:.2f}): below the four-fifths threshold {self.o['dp_ratio_min']:g}",
                    f"Selection rate {p[member].mean():.3f} (n={int(member.sum())}) against {p[~member].mean():.3f} "
                    f"(n={int((~member).sum())}). Disparate impact (AIF360), the four-fifths rule of the US EEOC "
                    "guidelines; demographic parity, Calders & Verwer 2010." + _unclear(sev),
                    {**evidence, "check": "disparate_impact", "direction": "less_positive", "value": di,
                     "ci": list(di_ci), "threshold": self.o["dp_ratio_min"]}))
            found = []
            for rate, value, ci in (("tpr", d_tpr, tpr_ci), ("fpr", d_fpr, fpr_ci)):
                sign = -1.0 if value < 0 else 1.0
                mag_ci = sorted((sign * ci[0], sign * ci[1]))
                sev = severity(sign * value, *mag_ci, threshold=self.o["eo_diff_max"], parity=0.0, bad="above")
                if sev is not None:
                    found.append((("info", "warn", "fail").index(sev), abs(value), rate, value, ci, sev))
            if found:
                _, _, rate, value, ci, sev = max(found)
                lower = value < 0
                direction = "less_positive" if lower else "more_positive"
                if rate == "tpr":
                    how = f"'{positive}' texts from group {name} are recognised {'less' if lower else 'more'} often"
                else:
                    how = f"texts from group {name} are wrongly called '{positive}' {'less' if lower else 'more'} often"
                self.findings.append(Finding(
                    sev,
                    f"Equalized odds ({slice_name}): {how} than in the other groups ({_RATE_TEXT[rate]} "
                    f"difference {value:+.2f}, {level} {ci[0]:+.2f} to {ci[1]:+.2f}; threshold ±{self.o['eo_diff_max']:g})",
                    "Equalized odds (Hardt, Price & Srebro 2016) asks for equal true- and false-positive rates "
                    "across groups." + _unclear(sev),
                    {**evidence, "check": "equalized_odds", "rate": rate, "direction": direction, "value": value,
                     "ci": list(ci), "threshold": self.o["eo_diff_max"]}))
        self.metrics.append(Metric("theil_index", theil, None, None, False, slice_name,
                                   "AIF360 Theil index of benefits b = ŷ - y + 1 (Speicher et al. 2018)"))
        self.metrics.append(Metric("generalized_entropy_index", gei, None, None, False, slice_name,
                                   "AIF360 generalized entropy index, alpha = 2 (Speicher et al. 2018)"))

    def _headline_figures(self, rows: list[dict[str, Any]]) -> None:
        from audit.auditors.fairness._metrics import HEADLINE

        refs = {"demographic_parity_ratio": (self.o["dp_ratio_min"], "four-fifths threshold"),
                "equalized_odds_difference": (self.o["eo_diff_max"], "threshold")}
        for name in HEADLINE:
            sel = [r for r in rows if r["metric"] == name]
            ref, ref_label = refs.get(name, (None, ""))
            self.figures.append(Figure.bar(f"headline:{name}", labels=[r["slice"] for r in sel],
                                           values=[r["value"] for r in sel], ci_low=[r["ci_low"] for r in sel],
                                           ci_high=[r["ci_high"] for r in sel], title=name.replace("_", " "),
                                           reference=ref, reference_label=ref_label,
                                           caption=f"{name} per grouping, 95% bootstrap CI."))

    # ----------------------------------------------------------- bias AUCs

    def _subgroups(self) -> list[tuple[str, np.ndarray]]:
        """Identity-term subgroups (rows mentioning the term), then sensitive-column groups
        whose rows are not already an identity subgroup."""
        out: list[tuple[str, np.ndarray]] = []
        for (_, term), mask in self.mentions.items():
            if mask.any():
                out.append((term, mask))
        seen = [m for _, m in out]
        for col in self.ctx.sensitive:
            values = np.array([str(v) for v in self.ctx.data.column(col).to_numpy()], dtype=object)
            for v in sorted(set(values)):
                mask = values == v
                if any(np.array_equal(mask, s) for s in seen):
                    continue
                out.append((f"{col}={v}", mask))
        return out

    def _bias_aucs(self, slices: list[Any]) -> None:
        import pandas as pd

        from audit.auditors.fairness._metrics import auc, bias_auc, bias_aucs, jigsaw_final_score, power_mean, severity

        subgroups = self._subgroups()
        if not subgroups:
            return
        rows: list[dict[str, Any]] = []
        for c in self.classes:
            suffix = self._suffix(c)
            y = (self.labels == c).astype(int)
            score = self.probs[:, c]
            overall = auc(y, score)
            if not np.isfinite(overall):
                continue
            self.metrics.append(Metric("overall_auc", overall, None, None, True, None if not suffix else suffix.strip(),
                                       "ROC AUC over all rows"))
            judged: dict[str, list[float]] = {"subgroup_auc": [], "bpsn_auc": [], "bnsp_auc": []}
            any_term = False
            min_n = self.o["min_group_size"]
            status = {name: _subgroup_status(y, mask, min_n) for name, mask in subgroups}
            usable = [(name, mask) for name, mask in subgroups if status[name] == JUDGED]
            # Bonferroni over the judged subgroups, so many subgroups do not raise alarms by chance.
            confidence = 1 - 0.05 / max(len(usable), 1)
            level = f"95% CI adjusted for {len(usable)} subgroups" if len(usable) > 1 else "95% CI"
            for name, mask in self.ctx.progress(subgroups, total=len(subgroups), desc="fairness: bias AUCs"):
                values = bias_aucs(y, score, mask)
                ok = status[name] == JUDGED
                row = {"subgroup": name + suffix, "count": int(mask.sum()), "positives": int(y[mask].sum()),
                       "status": status[name], **values}
                rows.append(row)
                if not ok:
                    continue
                is_term = "=" not in name
                any_term = any_term or is_term
                strata = mask.astype(int) * 2 + y
                for kind, value in values.items():
                    gap_ci = self._ci(lambda yy, ss, mm, kind=kind: auc(yy, ss) - bias_auc(yy, ss, mm, kind),
                                      [y, score, mask], salt=f"{kind}:{name}{suffix}", strata=strata,
                                      confidence=confidence)
                    gap = overall - value
                    self.metrics.append(Metric(kind, value, None, None, True, name + suffix,
                                               f"Borkan et al. 2019 {kind.replace('_', ' ')}"))
                    self.metrics.append(Metric(f"{kind}_gap", gap, *gap_ci, False, name + suffix,
                                               f"overall AUC minus the {kind.replace('_', ' ')}; interval: {level}"))
                    row[f"{kind}_gap_ci_low"], row[f"{kind}_gap_ci_high"] = gap_ci
                    if is_term:
                        judged[kind].append(value)
                    sev = severity(gap, *gap_ci, threshold=self.o["bias_auc_gap_max"], parity=0.0, bad="above")
                    if sev is not None:
                        self.findings.append(self._bias_finding(sev, kind, name, suffix, c, value, overall, gap, gap_ci,
                                                                level))
            if not any_term:  # no identity-term subgroup: score the sensitive-column groups instead
                for row in rows:
                    if row["status"] == JUDGED and row["subgroup"].endswith(suffix):
                        for kind in judged:
                            judged[kind].append(row[kind])
            if judged["subgroup_auc"]:
                pm = {kind: power_mean(v, -5.0) for kind, v in judged.items()}
                for kind, v in pm.items():
                    self.metrics.append(Metric(f"power_mean_{kind}", v, None, None, True, suffix.strip() or None,
                                               "generalized mean (p = -5) over judged subgroups, Borkan et al. 2019"))
                final = jigsaw_final_score(overall, judged["subgroup_auc"], judged["bpsn_auc"], judged["bnsp_auc"])
                self.metrics.append(Metric("jigsaw_final_score", final, None, None, True, suffix.strip() or None,
                                           "0.25 overall AUC + 0.25 each power mean of the bias AUCs (Jigsaw benchmark)"))
        if rows:
            frame = pd.DataFrame(rows)
            self.tables.append(Table.from_frame("bias_auc", frame, title="Bias AUCs per subgroup (Borkan et al. 2019)"))
            shown = frame[frame["status"] == JUDGED]
            if len(shown):
                self.figures.append(Figure.heatmap(
                    "bias_auc_heatmap", cells=shown[["subgroup_auc", "bpsn_auc", "bnsp_auc"]].to_numpy(),
                    rows=list(shown["subgroup"]), columns=["subgroup AUC", "BPSN AUC", "BNSP AUC"], title="Bias AUCs",
                    decimals=2, colourmap="RdYlGn", vmin=0.5, vmax=1.0,
                    caption="Bias AUCs per judged subgroup; low BNSP: the subgroup's positives score too low; "
                            "low BPSN: its negatives score too high."))

    def _bias_finding(self, sev: str, kind: str, name: str, suffix: str, c: int, value: float, overall: float,
                      gap: float, ci: tuple[float, float], level: str) -> Finding:
        positive = self.label_names[c]
        who = f"texts mentioning '{name}'" if "=" not in name else f"rows with {name}"
        label = {"subgroup_auc": "subgroup AUC", "bpsn_auc": "BPSN AUC", "bnsp_auc": "BNSP AUC"}[kind]
        numbers = f"{label} {value:.2f} against {overall:.2f} overall (gap {gap:.2f}, {level} {ci[0]:.2f}–{ci[1]:.2f})"
        if kind == "bnsp_auc":
            title, direction = f"The model pushes {who} away from '{positive}'{suffix}: {numbers}", "less_positive"
            detail = "Their positive examples score below negative examples without the mention (BNSP AUC)."
        elif kind == "bpsn_auc":
            title, direction = f"The model pushes {who} toward '{positive}'{suffix}: {numbers}", "more_positive"
            detail = "Their negative examples score above positive examples without the mention (BPSN AUC)."
        else:
            title, direction = f"The model separates the classes worse within {who}{suffix}: {numbers}", "worse_separation"
            detail = "Within the subgroup, positives and negatives are ranked less well than overall (subgroup AUC)."
        detail += " Borkan et al. 2019, 'Nuanced Metrics for Measuring Unintended Bias with Real Data'."
        if sev == "info":
            detail += " The interval reaches the threshold, so this is not statistically clear."
        return Finding(sev, title, detail, {"check": kind, "subgroup": name, "group": name.split("=")[-1],
                                           "direction": direction, "value": value, "overall_auc": overall,
                                           "gap_ci": list(ci), "threshold": self.o["bias_auc_gap_max"]})

    # ----------------------------------------------------------- counterfactuals

    def _counterfactuals(self) -> None:
        import pandas as pd

        from audit.auditors.fairness._identity import split_spans, swap_term, term_spans
        from audit.auditors.fairness._metrics import severity

        rng = self.ctx.rng("fairness:counterfactual")
        pairs = self.ctx.data.pairs
        plan: list[tuple[str, int, str, list[str]]] = []  # category, row, source term, target terms
        for category, terms in self.lexicon.categories.items():
            usable = [t.name for t in terms if self.o["swap_to"] == "lexicon"
                      or self.mentions[(category, t.name)].sum() >= self.o["min_term_rows"]]
            if len(usable) < 2:
                continue
            hits = np.column_stack([self.mentions[(category, t.name)] for t in terms])
            # A row with several terms of a category is ambiguous; a row whose term is too rare to swap
            # in elsewhere cannot be compared on the same set of terms as the others.
            source_ok = np.isin(np.array([t.name for t in terms], dtype=object)[hits.argmax(axis=1)], usable)
            rows = np.flatnonzero((hits.sum(axis=1) == 1) & source_ok)
            if rows.size > self.o["max_counterfactual_rows"]:
                rows = np.sort(rng.choice(rows, self.o["max_counterfactual_rows"], replace=False))
            for r in rows:
                source = terms[int(hits[r].argmax())].name
                plan.append((category, int(r), source, [t for t in usable if t != source]))
        if not plan:
            self.extra["counterfactual_note"] = "No row mentions an identity term with another term to swap to."
            return
        records: list[dict[str, Any]] = []
        variants: list[str] = []
        variant_pairs: list[str] = []
        for category, r, source, targets in plan:
            src = self.lexicon.term(category, source)
            for target in targets:
                s = swap_term(self.texts[r], src, self.lexicon.term(category, target))
                records.append({"category": category, "row": r, "source": source, "target": target,
                                "variant": s.text, "spans": s.spans, "index": len(variants)})
                variants.append(s.text)
                if pairs is not None:
                    variant_pairs.append(pairs[r])
        unique = list(dict.fromkeys(zip(variants, variant_pairs or [None] * len(variants), strict=True)))
        where = {v: i for i, v in enumerate(unique)}
        scored = self.ctx.predict([u[0] for u in unique], [u[1] for u in unique] if pairs is not None else None,
                                  desc="fairness: counterfactual variants")
        vprobs = scored.probs[[where[(v, variant_pairs[i] if pairs is not None else None)] for i, v in enumerate(variants)]]
        vpreds = scored.preds[[where[(v, variant_pairs[i] if pairs is not None else None)] for i, v in enumerate(variants)]]
        rows_idx = np.array([rec["row"] for rec in records])
        flips = vpreds != self.preds[rows_idx]
        primary = self.classes[0]
        cat_rows, pair_rows, term_rows = [], [], []
        for c in self.classes:
            suffix = self._suffix(c)
            positive = self.label_names[c]
            delta = vprobs[:, c] - self.probs[rows_idx, c]
            frame = pd.DataFrame({"category": [r["category"] for r in records], "row": rows_idx,
                                  "source": [r["source"] for r in records], "target": [r["target"] for r in records],
                                  "delta": delta, "flip": flips})
            for category, part in frame.groupby("category", sort=False):
                flip_rate = float(part["flip"].mean())
                mean_abs, max_abs = float(part["delta"].abs().mean()), float(part["delta"].abs().max())
                cat_rows.append({"category": category + suffix, "rows": int(part["row"].nunique()),
                                 "variants": len(part), "flip_rate": flip_rate, "mean_abs_delta": mean_abs,
                                 "max_abs_delta": max_abs})
                sl = category + suffix
                self.metrics += [
                    Metric("counterfactual_flip_rate", flip_rate, None, None, False, sl,
                           "share of term swaps that change the predicted class (Garg et al. 2019)"),
                    Metric("counterfactual_mean_abs_delta", mean_abs, None, None, False, sl,
                           f"mean |change| of P({positive}) over term swaps"),
                    Metric("counterfactual_max_abs_delta", max_abs, None, None, False, sl,
                           f"largest |change| of P({positive}) over term swaps"),
                ]
                for (src, tgt), pp in part.groupby(["source", "target"], sort=True):
                    pair_rows.append({"category": category + suffix, "from": src, "to": tgt, "variants": len(pp),
                                      "flip_rate": float(pp["flip"].mean()), "mean_delta": float(pp["delta"].mean()),
                                      "max_abs_delta": float(pp["delta"].abs().max())})
                # Term effect: per row, P(positive) with the term minus the mean over the category's terms.
                wide = self._term_matrix(part, c)
                terms = list(wide.columns)
                confidence = 1 - 0.05 / max(len(terms), 1)  # Bonferroni over the category's terms
                level = f"95% CI adjusted for {len(terms)} terms"
                for t in terms:
                    effect = (wide[t] - wide.mean(axis=1)).to_numpy()
                    value = float(effect.mean())
                    ci = self._ci(np.mean, [effect], salt=f"cf:{category}:{t}{suffix}", confidence=confidence)
                    term_rows.append({"category": category + suffix, "term": t, "rows": len(effect),
                                      "effect": value, "ci_low": ci[0], "ci_high": ci[1]})
                    self.metrics.append(Metric("counterfactual_term_effect", value, *ci, None, t + suffix,
                                               f"mean P({positive}) with this term minus the mean over the "
                                               f"{category} terms, same texts (Garg et al. 2019); interval: {level}"))
                    sign = -1.0 if value < 0 else 1.0  # judge the size of the effect in its own direction
                    mag_ci = sorted((sign * ci[0], sign * ci[1]))
                    sev = severity(sign * value, *mag_ci, threshold=self.o["cf_effect_max"], parity=0.0, bad="above")
                    if sev is None:
                        continue
                    direction = "less_positive" if value < 0 else "more_positive"
                    verb = "lowers" if value < 0 else "raises"
                    t_flip = float(part.loc[(part["target"] == t), "flip"].mean()) if (part["target"] == t).any() else 0.0
                    self.findings.append(Finding(
                        sev,
                        f"Writing '{t}' instead of another {category.replace('_', ' ')} term {verb} P({positive}) "
                        f"by {abs(value):.2f} on average ({level} {mag_ci[0]:.2f}–{mag_ci[1]:.2f}); "
                        f"{t_flip:.0%} of swaps to '{t}' flip the prediction",
                        f"Counterfactual token fairness (Garg et al. 2019) over {len(effect)} texts that mention a "
                        f"{category.replace('_', ' ')} term, each re-scored with every other term of the category."
                        + ("" if sev != "info" else " The interval reaches the threshold, so this is not statistically clear."),
                        {"check": "counterfactual_term_effect", "category": category, "term": t, "group": t,
                         "direction": direction, "value": value, "ci": list(ci), "flip_rate_to_term": t_flip,
                         "threshold": self.o["cf_effect_max"]}))
        self.tables.append(Table.from_frame("counterfactual_categories", pd.DataFrame(cat_rows),
                                            title="Counterfactual term swaps per category"))
        self.tables.append(Table.from_frame("counterfactual_terms", pd.DataFrame(term_rows),
                                            title="Term effect on P(positive): with the term minus the category mean"))
        self.tables.append(Table.from_frame("counterfactual_pairs", pd.DataFrame(pair_rows),
                                            title="Counterfactual swaps per term pair"))
        self._counterfactual_figure(term_rows)
        # Worst examples (primary class): flips first, then by size of the change.
        delta = vprobs[:, primary] - self.probs[rows_idx, primary]
        order = sorted(range(len(records)), key=lambda i: (not flips[i], -abs(delta[i]), i))
        examples, seen_rows = [], set()
        for i in order:
            rec = records[i]
            if rec["row"] in seen_rows:
                continue
            seen_rows.add(rec["row"])
            original = self.texts[rec["row"]]
            src = self.lexicon.term(rec["category"], rec["source"])
            examples.append({
                "category": rec["category"], "from": rec["source"], "to": rec["target"],
                "original": original, "variant": rec["variant"],
                "original_parts": split_spans(original, term_spans(original, src)),
                "variant_parts": split_spans(rec["variant"], rec["spans"]),
                "p_original": float(self.probs[rec["row"], primary]), "p_variant": float(vprobs[i, primary]),
                "delta": float(delta[i]), "flipped": bool(flips[i]),
                "pred_original": self.label_names[int(self.preds[rec["row"]])],
                "pred_variant": self.label_names[int(vpreds[i])],
            })
            if len(examples) >= self.o["n_examples"]:
                break
        self.extra["counterfactual_examples"] = examples
        self.extra["counterfactual_positive_label"] = self.label_names[primary]
        # Declared output for auditors that consume fairness (explainability explains these rows).
        self.extra["interesting_rows"] = [
            {"text": ex["original"], "reason": "fairness: counterfactual flip", "variant": ex["variant"],
             "swap": f"{ex['from']} -> {ex['to']}"} for ex in examples if ex["flipped"]]

    def _term_matrix(self, part: pd.DataFrame, c: int) -> pd.DataFrame:
        """Rows x terms: P(class c) of each text with each term of the category (original included)."""
        import pandas as pd

        base = part.groupby("row")["source"].first()
        orig = pd.DataFrame({"row": base.index, "target": base.to_numpy(),
                             "p": self.probs[base.index.to_numpy(), c]})
        var = pd.DataFrame({"row": part["row"].to_numpy(), "target": part["target"].to_numpy(),
                            "p": self.probs[part["row"].to_numpy(), c] + part["delta"].to_numpy()})
        wide = pd.concat([orig, var]).pivot_table(index="row", columns="target", values="p", aggfunc="mean")
        return wide.dropna(axis=0)

    def _counterfactual_figure(self, term_rows: list[dict[str, Any]]) -> None:
        if not term_rows:
            return
        self.figures.append(Figure.bar(
            "counterfactual_effects", labels=[f"{r['category']}: {r['term']}" for r in term_rows],
            values=[r["effect"] for r in term_rows], ci_low=[r["ci_low"] for r in term_rows],
            ci_high=[r["ci_high"] for r in term_rows], title="Counterfactual term effect", reference=0.0,
            xlabel="change in P(positive class)",
            caption="Mean P(positive) with the term minus the category mean over the same texts, 95% bootstrap CI "
                    "(Garg et al. 2019)."))

    # ----------------------------------------------------------- mitigation

    def _mitigation(self, slices: list[tuple[str, np.ndarray, str]]) -> None:
        import pandas as pd

        rows = []
        c = self.classes[0]
        for name, groups, kind in slices:
            if kind == "identity":
                continue
            try:
                rows.extend(self._threshold_optimizer(name, groups, c))
            except Exception as exc:  # noqa: BLE001 - advisory evidence must not sink the section
                self.extra.setdefault("notes", []).append(f"mitigation on {name}: {type(exc).__name__}: {exc}")
        if rows:
            self.tables.append(Table.from_frame("mitigation", pd.DataFrame(rows),
                                                title="Advisory: ThresholdOptimizer on a held-out half"))
            self.extra["mitigation_note"] = ADVISORY

    def _threshold_optimizer(self, name: str, groups: np.ndarray, c: int) -> list[dict[str, Any]]:
        from fairlearn import metrics as flm
        from fairlearn.postprocessing import ThresholdOptimizer

        g = np.asarray(groups).astype(str)
        counts = {k: int((g == k).sum()) for k in set(g)}
        keep = np.array([counts[k] >= self.o["min_group_size"] for k in g])
        if len(set(g[keep])) < 2:
            return []
        idx = np.flatnonzero(keep)
        y = (self.labels == c).astype(int)
        rng = self.ctx.rng(f"fairness:mitigation:{name}")
        strata = np.array([f"{a}|{b}" for a, b in zip(g[idx], y[idx], strict=True)])
        fit = np.zeros(len(idx), dtype=bool)
        for s in np.unique(strata):
            members = np.flatnonzero(strata == s)
            fit[rng.permutation(members)[: len(members) // 2]] = True
        fit_rows, test_rows = idx[fit], idx[~fit]
        X = self.probs[:, [c]]
        estimator = _score_estimator()
        base = (self.preds[test_rows] == c).astype(int)
        out = []
        for constraint in ("demographic_parity", "equalized_odds"):
            opt = ThresholdOptimizer(estimator=estimator, constraints=constraint, objective="accuracy_score",
                                     prefit=True, predict_method="predict_proba")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                opt.fit(X[fit_rows], y[fit_rows], sensitive_features=g[fit_rows])
                new = np.asarray(opt.predict(X[test_rows], sensitive_features=g[test_rows],
                                             random_state=self._seed(f"mitigation:{name}:{constraint}")))
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
            metrics={"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate},
            y_true=y_true, y_pred=y_pred, sensitive_features=pd.Series(groups, name="group"))
    diff, ratio = frame.difference(), frame.ratio()
    return {
        "demographic_parity_difference": diff["selection_rate"],
        "demographic_parity_ratio": ratio["selection_rate"],
        "equalized_odds_difference": max(diff[["tpr", "fpr"]]),
        "equalized_odds_ratio": min(ratio[["tpr", "fpr"]]),
        "equal_opportunity_difference": diff["tpr"],
    }


def _subgroup_status(y: np.ndarray, mask: np.ndarray, min_n: int) -> str:
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


def _unclear(severity: str) -> str:
    return " The interval reaches the threshold, so this is not statistically clear." if severity == "info" else ""


def _selection_chart(slice_name: str, rows: list[dict[str, Any]], *, caption: str) -> Figure:
    sel = [r for r in rows if r["slice"] == slice_name]
    labels = [f"{r['group']} (n={r['count']}){' *' if r['status'] == TOO_SMALL else ''}" for r in sel]
    return Figure.bar(f"selection_rate:{slice_name}", labels=labels, values=[r["selection_rate"] for r in sel],
                      ci_low=[r["selection_rate_ci_low"] for r in sel], ci_high=[r["selection_rate_ci_high"] for r in sel],
                      title=f"Selection rate by {slice_name}", xlabel="share predicted positive", caption=caption)


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
            return (np.asarray(X, dtype=float)[:, 0] >= 0.5).astype(int)

    return _Scores().fit(np.zeros((2, 1)), np.array([0, 1]))
