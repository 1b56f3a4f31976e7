"""Strict entity metrics by sensitive column of a token classifier (one value per sentence).

The sentence-level counterpart of the text auditor's per-group rates: the eval sentences are
grouped by each ``--sensitive`` column (and, with several, by their intersection), and fairlearn's
``MetricFrame`` computes per group the strict entity precision, recall and micro F1 (seqeval's
strict mode) through callables over sentence indices, from the performance auditor's per-sentence
counts (:func:`audit.auditors.performance._token.sentence_counts`); the intervals are its
percentile bootstrap over the group's sentences. Groups with fewer than ``min_group_size``
sentences are listed as too small to judge; the judged groups are compared with the best one
(:mod:`._token_gaps`), each group's resamples drawn independently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.fairness._inputs import INTERSECTION, JUDGED, SALT_PREFIX, TOO_SMALL
from audit.core.results import Figure, Metric, SectionPart, Table
from audit.tasks.tagging import entity_spans

if TYPE_CHECKING:
    from audit.core.context import AuditContext

NOTHING_JUDGED = ("Entity metrics by sensitive column: no group of {slices} has at least min_group_size = {min_n} "
                  "sentences; nothing was compared.")
COLUMNS_SHOWN = ("slice", "group", "status", "sentences", "gold_entities", "precision", "recall", "f1")
_SCORES = ("precision", "recall", "f1")  # columns 0-2 of the performance auditor's resample scores


def sensitive_groups(ctx: AuditContext, options: Mapping[str, Any]) -> SectionPart:
    """Per group of each sensitive column: strict entity metrics, intervals, comparisons."""
    import pandas as pd

    from audit.auditors.performance._token import sentence_counts

    data, scheme = ctx.data, ctx.data.scheme
    tag_names = [str(t) for t in ctx.target.label_names]
    pred = [[tag_names[int(j)] for j in p] for p in ctx.word_predictions.preds]

    def spans(seqs: Any) -> list[list[tuple[str, int, int]]]:
        return [[(s.type, s.start, s.end) for s in entity_spans(t, scheme=scheme)] for t in seqs]

    gold_spans = spans(data.tags)
    counts = sentence_counts(gold_spans, spans(pred))
    gold_entities = np.array([len(s) for s in gold_spans])
    columns = [c for c in ctx.sensitive if c in data.columns.columns]
    values = {c: data.columns[c].astype(str).to_numpy(dtype=object) for c in columns}
    if len(columns) > 1:
        values[INTERSECTION.join(columns)] = np.array([INTERSECTION.join(v) for v in zip(*values.values(),
                                                                                          strict=True)], dtype=object)
    parts, rows = [], []
    for name, groups in values.items():
        part, slice_rows = _slice(ctx, options, slice_name=name, groups=groups, counts=counts,
                                  gold_entities=gold_entities)
        parts.append(part)
        rows += slice_rows
    if not rows:
        return SectionPart()
    extra = {}
    if not any(r["status"] == JUDGED for r in rows):
        extra["notes"] = [NOTHING_JUDGED.format(slices=", ".join(values), min_n=options["min_group_size"])]
    table = Table.from_frame("token_groups", pd.DataFrame(rows),
                             title="Strict entity metrics by sensitive column (fairlearn MetricFrame over sentences; "
                                   "95% bootstrap CIs over sentences)", shown=COLUMNS_SHOWN, chips=("status",))
    return SectionPart.merge(*parts, SectionPart(tables=[table], extra=extra))


def _slice(ctx: AuditContext, options: Mapping[str, Any], *, slice_name: str, groups: np.ndarray,
           counts: np.ndarray, gold_entities: np.ndarray) -> tuple[SectionPart, list[dict[str, Any]]]:
    import pandas as pd
    from fairlearn.metrics import MetricFrame, count

    from audit.auditors.fairness._token_gaps import gap_part, gaps_to_best
    from audit.auditors.performance._token import resample_scores, scores_from_weights
    from audit.core.stats import percentile_interval

    def score(j: int) -> Any:
        def metric(y_true: np.ndarray, y_pred: np.ndarray) -> float:
            rows = np.asarray(y_true, dtype=int)
            return float(scores_from_weights(counts[rows], np.ones((1, len(rows))))[0, j])
        return metric

    index = np.arange(len(groups))
    frame = MetricFrame(metrics={"sentences": count, **{s: score(j) for j, s in enumerate(_SCORES)}},
                        y_true=index, y_pred=index, sensitive_features=pd.Series(groups, name=slice_name))
    min_n = options["min_group_size"]
    rows, metrics, values, resamples = [], [], {}, {}
    for group, by in frame.by_group.iterrows():
        member = groups == group
        seed = ctx.seed_for(f"{SALT_PREFIX}token_groups:{slice_name}:{group}")
        f1 = resample_scores(counts[member], n_bootstrap=options["n_bootstrap"], seed=seed)[:, 2]
        ci = percentile_interval(f1)
        status = JUDGED if int(by["sentences"]) >= min_n else TOO_SMALL
        rows.append({"slice": slice_name, "group": str(group), "status": status, "sentences": int(by["sentences"]),
                     "gold_entities": int(gold_entities[member].sum()), "precision": float(by["precision"]),
                     "recall": float(by["recall"]), "f1": float(by["f1"]), "f1_ci_low": ci[0], "f1_ci_high": ci[1]})
        metrics.append(Metric("group_entity_f1", float(by["f1"]), *ci, True, f"{slice_name}={group}",
                              "strict entity micro F1 on the group's sentences"))
        if status == JUDGED:
            values[str(group)], resamples[str(group)] = float(by["f1"]), f1
    judged = [r for r in rows if r["status"] == JUDGED]
    figures = []
    if judged:
        figures.append(Figure.bar(
            f"token_groups:{slice_name}", labels=[f"{r['group']} (n={r['sentences']})" for r in judged],
            values=[r["f1"] for r in judged], ci_low=[r["f1_ci_low"] for r in judged],
            ci_high=[r["f1_ci_high"] for r in judged], title=f"Entity F1 by {slice_name}", xlabel="strict entity F1",
            caption=f"95% bootstrap CIs over sentences. Groups with fewer than {min_n} sentences are not drawn."))
    gaps = gaps_to_best(values=values, resamples=resamples, judged=sorted(values), gap_max=options["token_gap_max"],
                        ratio_min=options["token_ratio_min"])
    compared = gap_part(gaps, slice_name=slice_name, metric="group_entity_f1", what="strict entity F1",
                        check="group_entity_f1", source="Strict entity F1 per group of sentences (seqeval strict); "
                        "bootstrap over each group's sentences.", gap_max=options["token_gap_max"],
                        ratio_min=options["token_ratio_min"])
    return SectionPart(metrics=metrics, figures=figures) + compared, rows
