"""Performance: the classification report a reader expects first, confusion matrix, ROC/PR AUC,
log loss, calibration (ECE with a reliability diagram) and bootstrap intervals.

All metric values come from scikit-learn on the shared predictions; ECE is ours (sklearn has
none): the top-label expected calibration error with equal-width bins (Guo et al. 2017, "On
Calibration of Modern Neural Networks").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.core.options import Option
from audit.core.results import AuditorResult, Figure, Finding, Metric, Table
from audit.tasks import SEQUENCE, TOKEN

if TYPE_CHECKING:
    from audit.core.context import AuditContext


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 15
                               ) -> tuple[float, dict[str, np.ndarray]]:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - confidence| weighted by
    the bin's share of rows (Guo et al. 2017). Returns the ECE and the per-bin figures."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, with confidence 0 in the first: (0, 1/n], ..., ((n-1)/n, 1].
    idx = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        bin_acc = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
    n = max(len(confidence), 1)
    ece = float(np.nansum(np.abs(bin_acc - bin_conf) * count / n))
    return ece, {"confidence": bin_conf, "accuracy": bin_acc, "count": count}


def macro_f1_from_counts(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro F1 over ``k`` classes from one confusion-count pass: F1 = 2TP / (2TP + FP + FN), 0 where
    a class is never true nor predicted (scikit-learn's zero_division=0). Used inside the bootstrap,
    where calling sklearn.metrics.f1_score a thousand times dominates the auditor's run time."""
    cm = np.bincount(np.asarray(y_true) * k + np.asarray(y_pred), minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    denom = 2 * tp + (cm.sum(axis=0) - tp) + (cm.sum(axis=1) - tp)
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    return float(f1.mean())


class PerformanceAuditor(Auditor):
    """Classification performance on the eval set, from the shared predictions."""

    name: ClassVar[str] = "performance"
    cost: ClassVar[float] = 0.2  # no forward pass of its own
    title: ClassVar[str] = "Performance"
    description: ClassVar[str] = ("classification report, confusion matrix, ROC/PR AUC, log loss, calibration (ECE); "
                                  "for token classifiers the entity-level report (seqeval strict) and its breakdowns")
    requires: ClassVar[frozenset[str]] = frozenset({"labels"})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "balanced_accuracy", "log_loss",
        "roc_auc", "pr_auc", "ece", "micro_f1", "hamming_loss",
        # token classification (NER)
        "entity_f1_micro", "entity_precision_micro", "entity_recall_micro", "entity_f1_macro", "entity_f1_weighted",
        "entity_f1_micro_lenient", "token_accuracy", "pred_violations"})
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE, TOKEN})
    params: ClassVar[dict[str, Option]] = {
        "n_bootstrap": Option(kind="int", min=0, max=1_000_000, default=1000, help="bootstrap resamples (0: none)"),
        "ece_bins": Option(kind="int", min=2, max=10_000, default=15, help="bins of the calibration error"),
        "ece_warn": Option(kind="float", min=0, max=1, default=0.1, help="ECE above which a warning is raised"),
        "min_accuracy": Option(kind="float", min=0, max=1, nullable=True,
                               help="accuracy below which a finding is raised"),
    }

    def _run(self, ctx: AuditContext) -> AuditorResult:
        if ctx.task == TOKEN:
            from audit.auditors.performance._token_section import token_section

            return token_section(ctx, self.options, name=self.name)
        preds = ctx.predictions
        y = np.asarray(ctx.data.labels)
        names = ctx.data.label_names or [str(i) for i in range(preds.probs.shape[1])]
        if preds.multi_label:
            return self._multi_label(ctx, y, preds.probs, preds.preds, names)
        return self._single_label(ctx, y, preds.probs, preds.preds, names)

    # -- single-label (binary and multi-class) -------------------------------------------------
    def _single_label(self, ctx: AuditContext, y: np.ndarray, probs: np.ndarray, pred: np.ndarray,
                      names: list[str]) -> AuditorResult:
        import pandas as pd
        from sklearn import metrics as skm

        from audit.core.stats import bootstrap_ci

        k = probs.shape[1]
        labels = list(range(k))
        present = np.unique(y)
        report = skm.classification_report(y, pred, labels=labels, target_names=names, output_dict=True,
                                           zero_division=0)
        rows = []
        for key, val in report.items():
            if isinstance(val, dict):
                rows.append([key, val["precision"], val["recall"], val["f1-score"], int(val["support"])])
        acc = float(skm.accuracy_score(y, pred))
        rows.append(["accuracy", None, None, acc, int(len(y))])
        table = pd.DataFrame(rows, columns=["class", "precision", "recall", "f1-score", "support"])
        # Put accuracy after the per-class rows, averages last, as sklearn prints it.
        order = [*names, "accuracy", "micro avg", "macro avg", "weighted avg"]
        table["_o"] = table["class"].map({c: i for i, c in enumerate(order)})
        table = table.sort_values("_o").drop(columns="_o")

        n_boot = self.options["n_bootstrap"]

        def macro_f1(a: np.ndarray, b: np.ndarray) -> float:
            return macro_f1_from_counts(a, b, k)

        def accuracy(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.mean(a == b))

        acc_ci = (bootstrap_ci(accuracy, [y, pred], n_resamples=n_boot, seed=ctx.seed_for("performance.accuracy"))
                  if n_boot else (None, None))
        f1_macro = float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0))
        f1_ci = (bootstrap_ci(macro_f1, [y, pred], n_resamples=n_boot, seed=ctx.seed_for("performance.macro_f1"))
                 if n_boot else (None, None))

        metrics = [
            Metric("accuracy", acc, acc_ci[0], acc_ci[1], True, description="share of rows predicted right"),
            Metric("macro_f1", f1_macro, f1_ci[0], f1_ci[1], True, description="unweighted mean of per-class F1"),
            Metric("weighted_f1", float(skm.f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
                   higher_is_better=True),
            Metric("macro_precision",
                   float(skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0)),
                   higher_is_better=True),
            Metric("macro_recall", float(skm.recall_score(y, pred, labels=labels, average="macro", zero_division=0)),
                   higher_is_better=True),
            Metric("balanced_accuracy",
                   float(skm.balanced_accuracy_score(y, pred)) if len(present) > 1 else float("nan"),
                   higher_is_better=True),
            Metric("log_loss", float(skm.log_loss(y, probs, labels=labels)), higher_is_better=False,
                   description="mean negative log-likelihood of the true class"),
        ]
        notes = []
        if len(present) < 2:
            notes.append("the eval set holds a single class: ROC-AUC and PR-AUC need two and are not computed")
        elif k == 2:
            metrics.append(Metric("roc_auc", float(skm.roc_auc_score(y, probs[:, 1])), higher_is_better=True))
            metrics.append(Metric("pr_auc", float(skm.average_precision_score(y, probs[:, 1])), higher_is_better=True,
                                  description=f"average precision for the positive class {names[1]!r}"))
        elif len(present) == k:
            metrics.append(Metric("roc_auc",
                                  float(skm.roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=labels)),
                                  higher_is_better=True, description="one-vs-rest, macro average"))
            onehot = np.eye(k)[y]
            metrics.append(Metric("pr_auc", float(skm.average_precision_score(onehot, probs, average="macro")),
                                  higher_is_better=True, description="one-vs-rest average precision, macro average"))
        else:
            notes.append("some classes never occur in the eval set: one-vs-rest AUCs are not computed")

        conf = probs.max(axis=1)
        ece, bins = expected_calibration_error(conf, pred == y, n_bins=self.options["ece_bins"])
        metrics.append(Metric("ece", ece, higher_is_better=False,
                              description=f"expected calibration error, top label, {self.options['ece_bins']} bins"))

        cm = skm.confusion_matrix(y, pred, labels=labels)
        cm_table = pd.DataFrame(cm, columns=[f"pred: {n}" for n in names])
        cm_table.insert(0, "true", names)
        figures = [
            Figure.heatmap("confusion_matrix", cells=cm, rows=names, columns=names, title="Confusion matrix",
                           xlabel="predicted", ylabel="true",
                           caption="Rows are true classes, columns predicted classes; the diagonal is correct."),
            Figure.reliability("reliability", confidence=bins["confidence"], accuracy=bins["accuracy"],
                               count=bins["count"],
                               caption=f"Calibration: accuracy against confidence per bin (ECE {ece:.3f}); "
                                       "points on the diagonal are perfectly calibrated, dot size is the bin's share."),
        ]
        if k == 2 and len(present) == 2:
            fpr, tpr, _ = skm.roc_curve(y, probs[:, 1])
            prec, rec, _ = skm.precision_recall_curve(y, probs[:, 1])
            figures.append(Figure.lines("roc", series=[("ROC", fpr, tpr)], title="ROC curve",
                                        xlabel="false positive rate", ylabel="true positive rate",
                                        diagonal=True, xlim=(0, 1), ylim=(0, 1.01),
                                        caption="ROC curve of the positive class; the dashed line is chance."))
            figures.append(Figure.lines("pr", series=[("PR", rec, prec)], title="Precision-recall curve",
                                        xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
                                        caption=f"Precision-recall curve of the positive class {names[1]!r}."))
        bins_table = pd.DataFrame({"bin": [f"{i / len(bins['count']):.2f}–{(i + 1) / len(bins['count']):.2f}"
                                           for i in range(len(bins["count"]))],
                                   "rows": bins["count"], "mean confidence": bins["confidence"],
                                   "accuracy": bins["accuracy"]})
        bins_table = bins_table[bins_table["rows"] > 0]

        findings = []
        if ece > self.options["ece_warn"]:
            findings.append(Finding("warn", f"Poorly calibrated: expected calibration error {ece:.3f}",
                                    f"Confidence and accuracy differ by {ece:.3f} on average (threshold "
                                    f"{self.options['ece_warn']}); treat the model's probabilities with care.",
                                    {"ece": ece}))
        worst = int(np.argmin([report[n]["recall"] for n in names])) if len(present) > 1 else None
        if worst is not None:
            findings.append(Finding("info",
                                    f"Accuracy {acc:.3f} (95% CI {acc_ci[0]:.3f}–{acc_ci[1]:.3f}) on {len(y):,} rows"
                                    if acc_ci[0] is not None else f"Accuracy {acc:.3f} on {len(y):,} rows",
                                    f"Lowest recall: class {names[worst]!r} ({report[names[worst]]['recall']:.3f})."))
        min_acc = self.options["min_accuracy"]
        if min_acc is not None and acc < min_acc:
            findings.append(Finding("fail", f"Accuracy {acc:.3f} is below the required {min_acc}"))
        for note in notes:
            findings.append(Finding("info", note))
        return AuditorResult(
            auditor=self.name,
            metrics=tuple(metrics),
            tables=(Table.from_frame("classification_report", table, title="Classification report"),
                    Table.from_frame("confusion_matrix", cm_table, title="Confusion matrix (counts)"),
                    Table.from_frame("calibration_bins", bins_table, title="Calibration bins")),
            figures=tuple(figures),
            findings=tuple(findings),
            extra={"rows": int(len(y)), "labels": names,
                   "truncated_rows": ctx.eval_truncated_rows},
        )

    # -- multi-label ---------------------------------------------------------------------------
    def _multi_label(self, ctx: AuditContext, y: np.ndarray, probs: np.ndarray, pred: np.ndarray,
                     names: list[str]) -> AuditorResult:
        import pandas as pd
        from sklearn import metrics as skm

        from audit.core.stats import bootstrap_ci

        report = skm.classification_report(y, pred, target_names=names, output_dict=True, zero_division=0)
        rows = [[k, v["precision"], v["recall"], v["f1-score"], int(v["support"])] for k, v in report.items()]
        table = pd.DataFrame(rows, columns=["class", "precision", "recall", "f1-score", "support"])
        subset_acc = float(skm.accuracy_score(y, pred))
        n_boot = self.options["n_bootstrap"]

        def macro_f1(a: np.ndarray, b: np.ndarray) -> float:
            return float(skm.f1_score(a, b, average="macro", zero_division=0))

        def subset(a: np.ndarray, b: np.ndarray) -> float:
            return float(np.mean(np.all(a == b, axis=1)))

        acc_ci = (bootstrap_ci(subset, [y, pred], n_resamples=n_boot, seed=ctx.seed_for("performance.accuracy"))
                  if n_boot else (None, None))
        f1_ci = (bootstrap_ci(macro_f1, [y, pred], n_resamples=n_boot, seed=ctx.seed_for("performance.macro_f1"))
                 if n_boot else (None, None))
        metrics = [
            Metric("accuracy", subset_acc, acc_ci[0], acc_ci[1], True, description="subset accuracy: all labels right"),
            Metric("macro_f1", macro_f1(y, pred), f1_ci[0], f1_ci[1], True),
            Metric("micro_f1", float(skm.f1_score(y, pred, average="micro", zero_division=0)), higher_is_better=True),
            Metric("hamming_loss", float(skm.hamming_loss(y, pred)), higher_is_better=False),
        ]
        both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
        if both:
            metrics.append(Metric("roc_auc", float(skm.roc_auc_score(y[:, both], probs[:, both], average="macro")),
                                  higher_is_better=True,
                                  description="macro over labels that occur and do not always occur"))
            metrics.append(Metric("pr_auc",
                                  float(skm.average_precision_score(y[:, both], probs[:, both], average="macro")),
                                  higher_is_better=True))
        return AuditorResult(auditor=self.name, metrics=tuple(metrics),
                             tables=(Table.from_frame("classification_report", table, title="Classification report"),),
                             extra={"rows": int(len(y)), "labels": names, "multi_label": True})
