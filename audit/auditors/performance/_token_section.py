"""The performance section of a token classifier (NER): the entity-level report first (strict,
seqeval), the lenient conlleval-compatible figure beside it, the token-level tag report in
scikit-learn's layout, the MUC/SemEval-2013 error breakdown, the entity-type confusion, the
calibration of the word predictions, entity metrics per sentence-level group, and a few eval
sentences with their gold and predicted spans. The numbers come from :mod:`._token`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import AuditorResult, Figure, Finding, Metric, Table

if TYPE_CHECKING:
    import pandas as pd

    from audit.core.context import AuditContext

EXAMPLES_SHOWN = 8  # sentences rendered with their spans: the wrong ones first, then right ones
GROUP_MIN_ENTITIES = 20  # below this many gold entities a group's recall is shown but not compared
REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")


def token_section(ctx: AuditContext, options: dict[str, Any], *, name: str) -> AuditorResult:
    """Evaluate the shared word predictions against the gold tags of ``ctx.data``."""
    from audit.auditors.performance._auditor import expected_calibration_error
    from audit.auditors.performance._token import token_performance
    from audit.tasks.tagging import entity_spans

    data, words = ctx.data, ctx.word_predictions
    tag_names = list(ctx.target.label_names)
    pred = [[tag_names[int(i)] for i in p] for p in words.preds]
    perf = token_performance(gold=data.tags, pred=pred, probs=words.probs, tag_names=tag_names,
                             scheme=data.scheme, n_bootstrap=int(options["n_bootstrap"]),
                             rng=ctx.rng("performance.token"))
    metrics = perf.metrics()

    flat_probs = np.concatenate([p for p in words.probs if len(p)]) if perf.n_words else np.zeros((0, 1))
    flat_gold = np.array([tag_names.index(t) for s in data.tags for t in s])
    ece, bins = expected_calibration_error(flat_probs.max(axis=1), flat_probs.argmax(axis=1) == flat_gold,
                                           n_bins=int(options["ece_bins"]))
    if options["ece_bins"] != 15 or perf.ece is None:  # the report's ECE follows the option, as for text
        metrics["ece"] = Metric("ece", ece, higher_is_better=False,
                                description=f"expected calibration error of the word predictions, top tag, "
                                            f"{options['ece_bins']} bins")

    gold_spans = [entity_spans(t, scheme=data.scheme) for t in data.tags]
    pred_spans = [entity_spans(t, scheme=data.scheme) for t in pred]
    tables = [
        _report_table("entity_report", perf.entity_report,
                      f"Entity-level report (strict, {data.scheme}; seqeval mode='strict')"),
        _report_table("entity_report_lenient", perf.entity_report_lenient,
                      "Entity-level report, lenient (conlleval-compatible; seqeval's default mode): "
                      "for comparison with published numbers"),
        _report_table("token_report", perf.token_report,
                      "Token-level tag report (scikit-learn's classification_report; 'O' is shown as a "
                      "diagnostic and left out of the averages)"),
        Table.from_frame("error_breakdown", perf.error_breakdown.reset_index(drop=True),
                         title="Errors by MUC/SemEval-2013 category (nervaluate schemas)",
                         shown=("schema", "entity", "correct", "incorrect", "partial", "missed", "spurious",
                                "precision", "recall", "f1")),
        Table.from_frame("entity_confusion", perf.confusion.reset_index(),
                         title="Entity-type confusion: gold type (rows) against predicted type on overlapping "
                               "spans, with missed and spurious entities"),
        Table.from_frame("intervals", perf.intervals.reset_index(),
                         title=f"Bootstrap intervals over sentences ({perf.n_bootstrap:,} resamples)"),
    ]
    groups = _group_tables(data, gold_spans, pred_spans, sensitive=ctx.sensitive)
    tables.extend(table for table, _ in groups)
    figures = [_type_f1_figure(perf), _confusion_figure(perf.confusion),
               Figure.reliability("reliability", confidence=bins["confidence"], accuracy=bins["accuracy"],
                                  count=bins["count"],
                                  caption=f"Calibration of the word predictions (ECE {ece:.3f}): accuracy "
                                          "against confidence per bin; the diagonal is perfect calibration.")]
    findings = _findings(perf, metrics, data=data, words=words, options=options, groups=groups)
    return AuditorResult(
        auditor=name, metrics=tuple(metrics.values()), tables=tuple(tables), figures=tuple(figures),
        findings=tuple(findings),
        extra={"task": "token-classification", "scheme": data.scheme, "rows": len(data),
               "sentences": len(data), "words": perf.n_words, "labels": tag_names,
               "token_report_text": perf.token_report_text, "windowed_sentences": words.n_windowed,
               "empty_words": words.n_empty_words, "gold_violations": data.gold_violations,
               "pred_violations": perf.pred_violations, "aggregation": ctx.config.aggregation,
               "examples": _examples(data.tokens, gold_spans, pred_spans)},
    )


def _report_table(name: str, frame: pd.DataFrame, title: str) -> Table:
    out = frame.copy()
    out.insert(0, "type" if "entity" in name else "tag", out.index.astype(str))
    return Table.from_frame(name, out.reset_index(drop=True), title=title)


def _type_f1_figure(perf: Any) -> Figure:
    rep = perf.entity_report
    types = [t for t in rep.index if not str(t).endswith(" avg")]
    micro = float(rep.loc["micro avg", "f1-score"])
    return Figure.bar("entity_f1_by_type", labels=[str(t) for t in types],
                      values=[float(rep.loc[t, "f1-score"]) for t in types], title="Entity F1 by type (strict)",
                      xlabel="F1", reference=micro, reference_label=f"micro F1 {micro:.3f}",
                      caption="Strict entity-level F1 per entity type; the dashed line is the micro average.")


def _confusion_figure(confusion: pd.DataFrame) -> Figure:
    return Figure.heatmap("entity_confusion", cells=confusion.to_numpy(dtype=float).tolist(),
                          rows=[str(r) for r in confusion.index], columns=[str(c) for c in confusion.columns],
                          title="Entity-type confusion", xlabel="predicted", ylabel="gold",
                          caption="Gold entity type against the predicted type of the overlapping span; "
                                  "'missed': no predicted span overlaps, 'spurious': no gold span overlaps.")


def _group_tables(data: Any, gold_spans: Sequence[Sequence[Any]], pred_spans: Sequence[Sequence[Any]], *,
                  sensitive: Sequence[str]) -> list[tuple[Table, dict[str, dict[str, int]]]]:
    """Strict entity precision, recall and F1 per value of each per-sentence column that was
    named sensitive, with per-type recall: where a group's entities go missing."""
    import pandas as pd

    out = []
    for column in [c for c in sensitive if c in data.columns.columns]:
        rows, counts = [], {}
        values = data.columns[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            idx = np.flatnonzero(values == value)
            g = {(i, s.type, s.start, s.end) for i in idx for s in gold_spans[i]}
            p = {(i, s.type, s.start, s.end) for i in idx for s in pred_spans[i]}
            tp = len(g & p)
            prec = tp / len(p) if p else 0.0
            rec = tp / len(g) if g else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            row = {"group": value, "sentences": len(idx), "gold entities": len(g), "precision": prec,
                   "recall": rec, "f1-score": f1}
            counts[value] = {"all": len(g)}
            for t in sorted({s[1] for s in g}):
                gt = {s for s in g if s[1] == t}
                row[f"recall {t}"] = len(gt & p) / len(gt)
                counts[value][t] = len(gt)
            rows.append(row)
        out.append((Table.from_frame(f"groups_{column}", pd.DataFrame(rows),
                                     title=f"Strict entity metrics by {column} (a per-sentence column)"), counts))
    return out


def _findings(perf: Any, metrics: dict[str, Metric], *, data: Any, words: Any, options: dict[str, Any],
              groups: list[tuple[Table, dict[str, dict[str, int]]]]) -> list[Finding]:
    f1 = metrics["entity_f1_micro"]
    ci = f" (95% CI {f1.ci_low:.3f}–{f1.ci_high:.3f})" if f1.ci_low is not None else ""
    out = [Finding("info", f"Entity-level micro F1 {f1.value:.3f}{ci} on {len(data):,} sentences, strict "
                           f"{perf.scheme}; lenient (conlleval) {metrics['entity_f1_micro_lenient'].value:.3f}")]
    ece = metrics["ece"].value
    if ece is not None and ece > options["ece_warn"]:
        out.append(Finding("warn", f"Poorly calibrated word predictions: expected calibration error {ece:.3f}",
                           f"Confidence and accuracy differ by {ece:.3f} on average (threshold "
                           f"{options['ece_warn']}).", {"ece": ece}))
    min_acc = options["min_accuracy"]
    if min_acc is not None and perf.token_accuracy < min_acc:
        out.append(Finding("fail", f"Token accuracy {perf.token_accuracy:.3f} is below the required {min_acc}"))
    if perf.pred_violations:
        out.append(Finding("info", f"{perf.pred_violations:,} predicted tag transitions are invalid under "
                                   f"{perf.scheme}", "Strict matching drops the entities they would open; the "
                                   "lenient report counts them as conlleval does."))
    if data.gold_violations:
        out.append(Finding("info", f"The gold tags hold {data.gold_violations:,} transitions invalid under "
                                   f"{perf.scheme}", "Entities they would open are not counted under strict "
                                   "matching; check the annotation or the --scheme option."))
    if words.n_windowed:
        out.append(Finding("info", f"{words.n_windowed:,} sentences were longer than the model's maximum length "
                                   "and were predicted in overlapping windows (none was truncated)"))
    if words.n_empty_words:
        out.append(Finding("info", f"{words.n_empty_words:,} words produced no sub-word token and were predicted "
                                   "as the tokenizer's unknown token"))
    for table, counts in groups:
        gap = _widest_recall_gap(table.to_frame(), counts)
        if gap is not None:
            what, (low_group, low), (high_group, high) = gap
            out.append(Finding("info", f"{what} recall by {table.name.removeprefix('groups_')} ranges from "
                                       f"{low:.3f} ({low_group}) to {high:.3f} ({high_group})",
                               f"Strict matching; groups with at least {GROUP_MIN_ENTITIES} gold entities of the "
                               "type compared; the widest gap of any entity type is shown. A point estimate: "
                               "judging the gap is the fairness auditor's work."))
    return out


def _widest_recall_gap(frame: pd.DataFrame, counts: dict[str, dict[str, int]]
                       ) -> tuple[str, tuple[str, float], tuple[str, float]] | None:
    """The entity type (or all entities) whose recall differs most between two groups that each
    hold at least GROUP_MIN_ENTITIES gold entities of it."""
    best = None
    for column in [c for c in frame.columns if c == "recall" or c.startswith("recall ")]:
        kind = column.removeprefix("recall").strip() or "all"
        rows = [(str(g), float(v)) for g, v in zip(frame["group"], frame[column], strict=True)
                if v is not None and v == v and counts[str(g)].get(kind, 0) >= GROUP_MIN_ENTITIES]
        if len(rows) >= 2:
            low, high = min(rows, key=lambda r: r[1]), max(rows, key=lambda r: r[1])
            if best is None or high[1] - low[1] > best[2][1] - best[1][1]:
                best = ("Entity" if kind == "all" else f"{kind}", low, high)
    return best


def _examples(tokens: Sequence[Sequence[str]], gold: Sequence[Sequence[Any]], pred: Sequence[Sequence[Any]]
              ) -> list[dict[str, Any]]:
    """A few sentences with their gold and predicted spans: those with errors first (most
    differing spans), then correct ones; the report marks the spans (escaped)."""
    def key(i: int) -> tuple[int, int]:
        return (-len(set(gold[i]) ^ set(pred[i])), i)

    order = sorted((i for i in range(len(tokens)) if gold[i] or pred[i]), key=key)[:EXAMPLES_SHOWN]
    out = []
    for i in order:
        g = {(s.start, s.end): s.type for s in gold[i]}
        p = {(s.start, s.end): s.type for s in pred[i]}
        out.append({"index": i, "correct": g == p, "words": list(tokens[i]),
                    "gold": [{"start": a, "end": b, "type": t} for (a, b), t in sorted(g.items())],
                    "pred": [{"start": a, "end": b, "type": t} for (a, b), t in sorted(p.items())]})
    return out
