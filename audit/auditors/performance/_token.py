"""Performance of a token classifier (NER) from word-level tags: pure functions, no model.

The headline is the strict entity-level report (seqeval), with bootstrap intervals over
sentences; beside it the conlleval-compatible lenient report, the MUC/SemEval-2013 error
breakdown (nervaluate), scikit-learn's token-level tag report, an entity-type confusion matrix,
the calibration of the word predictions and the ill-formed transitions in the predictions. The
reports live in :mod:`._token_report`, the error analyses in :mod:`._token_errors`.

Intervals resample sentences, not words or entities: the words of a sentence (and its entities)
are not independent draws, the sentences of an eval set are closer to it. The percentile
bootstrap (Efron and Tibshirani 1993) over the resamples of :mod:`audit.core.stats`, computed
from per-sentence counts so no resample re-runs seqeval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from audit.core.stats import CONFIDENCE
from audit.errors import AuditInputError
from audit.tasks.tagging import ALLOWED, OUTSIDE, SCHEMES, split_tag

if TYPE_CHECKING:
    import pandas as pd

    from audit.core.results import Metric

SCHEME_UNKNOWN = "scheme {scheme!r} is not one of {schemes}"
NO_SENTENCES = "no sentences to evaluate"
NO_WORDS = "no words to evaluate: the {n} sentences are all empty"
SENTENCE_COUNTS = "{gold} gold sentences but {pred} predicted ones"
SENTENCE_LENGTHS = "sentence {i}: {gold} gold tags but {pred} predicted ones"
TAG_UNKNOWN = "sentence {i}: {role} tag {tag!r} is not among the tag names {tags}"
TAG_OFF_SCHEME = "tag name {tag!r} does not fit the {scheme} scheme: expected 'O' or {form}"
NO_ENTITY_TAG = "the tag names {tags} hold no entity tag, only 'O'"
PROBS_COUNT = "{probs} probability arrays for {sentences} sentences"
PROBS_SHAPE = "sentence {i}: probabilities of shape {shape}; expected ({words}, {tags}): words x tag names"
BOOTSTRAP_NEGATIVE = "n_bootstrap must be 0 (no intervals) or more, got {n}"
CONFIDENCE_RANGE = "confidence must lie strictly between 0 and 1, got {confidence}"

ECE_BINS = 15  # Guo et al. 2017 use 15 equal-width bins; so does the sequence performance auditor
INTERVAL_METRICS = ("entity_precision_micro", "entity_recall_micro", "entity_f1_micro", "entity_f1_macro")
_BLOCK_VALUES = 1 << 20  # sentence indices per block of resamples (8 MiB of int64)


@dataclass(frozen=True, kw_only=True)
class TokenPerformance:
    """Every performance figure of a token classifier on one eval set (plain values and frames).

    - ``entity_report``: per entity type precision, recall, f1-score, support, then micro, macro
      and weighted averages; strict matching under ``scheme`` (seqeval ``mode="strict"``);
    - ``entity_report_lenient``: the same in seqeval's default, conlleval-compatible mode,
      for comparison with published numbers only;
    - ``error_breakdown``: MUC/SemEval-2013 categories per schema, overall and per type;
    - ``token_report`` / ``token_report_text``: scikit-learn's tag report, ``O`` outside the
      averages and flagged in the ``diagnostic`` column;
    - ``intervals``: bootstrap intervals over sentences (index: :data:`INTERVAL_METRICS`;
      columns value, ci_low, ci_high, resamples = the resamples where the metric is defined);
    - ``confusion``: gold entity type x predicted type on overlapping spans, with ``missed`` and
      ``spurious``;
    - ``ece``: expected calibration error of the word predictions, None without probabilities;
    - ``token_accuracy``: share of words (``O`` included) tagged right;
    - ``pred_violations``: transitions in the predictions that the scheme forbids.
    """

    scheme: str
    n_sentences: int
    n_words: int
    entity_report: pd.DataFrame
    entity_report_lenient: pd.DataFrame
    error_breakdown: pd.DataFrame
    token_report: pd.DataFrame
    token_report_text: str
    intervals: pd.DataFrame
    n_bootstrap: int
    confidence: float
    confusion: pd.DataFrame
    ece: float | None
    token_accuracy: float
    pred_violations: int

    def metrics(self) -> dict[str, Metric]:
        """The headline numbers by name, as the auditor's ``Metric`` values (intervals where the
        bootstrap ran; ``ece`` only when there were probabilities)."""
        from audit.core.results import Metric

        micro, macro = self.entity_report.loc["micro avg"], self.entity_report.loc["macro avg"]
        strict = f"strict entity matching under {self.scheme}"
        out = [
            Metric("entity_f1_micro", float(micro["f1-score"]), higher_is_better=True,
                   description=f"entity-level F1 over all entities, {strict} (seqeval)"),
            Metric("entity_precision_micro", float(micro["precision"]), higher_is_better=True,
                   description=f"share of predicted entities that are right, {strict}"),
            Metric("entity_recall_micro", float(micro["recall"]), higher_is_better=True,
                   description=f"share of gold entities found, {strict}"),
            Metric("entity_f1_macro", float(macro["f1-score"]), higher_is_better=True,
                   description=f"unweighted mean of the per-type entity F1, {strict}"),
            Metric("entity_f1_weighted", float(self.entity_report.loc["weighted avg", "f1-score"]),
                   higher_is_better=True, description=f"per-type entity F1 weighted by support, {strict}"),
            Metric("entity_f1_micro_lenient", float(self.entity_report_lenient.loc["micro avg", "f1-score"]),
                   higher_is_better=True,
                   description="entity-level micro F1, lenient (conlleval-compatible, seqeval default mode)"),
            Metric("token_accuracy", self.token_accuracy, higher_is_better=True,
                   description="share of words tagged right, O included"),
        ]
        if self.ece is not None:
            out.append(Metric("ece", self.ece, higher_is_better=False,
                              description=f"expected calibration error of the word predictions, top tag, "
                                          f"{ECE_BINS} bins"))
        out.append(Metric("pred_violations", float(self.pred_violations), higher_is_better=False,
                          description=f"tag transitions in the predictions that {self.scheme} forbids"))
        metrics = {m.name: m for m in out}
        if self.n_bootstrap:
            import dataclasses

            for name in INTERVAL_METRICS:
                low, high = self.intervals.loc[name, ["ci_low", "ci_high"]]
                metrics[name] = dataclasses.replace(metrics[name], ci_low=float(low), ci_high=float(high))
        return metrics


def token_performance(*, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                      probs: Sequence[np.ndarray] | None, tag_names: Sequence[str], scheme: str,
                      n_bootstrap: int, rng: np.random.Generator, confidence: float = CONFIDENCE
                      ) -> TokenPerformance:
    """The performance of word-level tag predictions ``pred`` against ``gold`` (one list of
    tags per sentence), ``probs[i]`` the (words x tag names) probabilities of sentence ``i``.
    ``rng`` draws the bootstrap's seed once, so one generator state gives one set of intervals."""
    from audit.auditors.performance import _token_errors as errors
    from audit.auditors.performance import _token_report as report

    gold, pred = _check(gold=gold, pred=pred, probs=probs, tag_names=tag_names, scheme=scheme,
                        n_bootstrap=n_bootstrap, confidence=confidence)
    strict, lenient = report.entity_reports(gold, pred, scheme)
    token_table, token_text = report.token_report(gold, pred, tag_names)
    gold_spans, pred_spans = report.strict_spans(gold, scheme), report.strict_spans(pred, scheme)
    counts = sentence_counts(gold_spans, pred_spans)
    seed = int(rng.integers(0, np.iinfo(np.int64).max))
    flat_gold = np.array([t for s in gold for t in s], dtype=object)
    flat_pred = np.array([t for s in pred for t in s], dtype=object)
    return TokenPerformance(
        scheme=scheme, n_sentences=len(gold), n_words=len(flat_gold),
        entity_report=strict, entity_report_lenient=lenient,
        error_breakdown=errors.error_breakdown(gold_spans, pred_spans),
        token_report=token_table, token_report_text=token_text,
        intervals=_intervals(counts, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence),
        n_bootstrap=n_bootstrap, confidence=confidence,
        confusion=errors.entity_confusion(gold_spans, pred_spans),
        ece=None if probs is None else _word_ece(probs, flat_gold, tag_names),
        token_accuracy=float(np.mean(flat_gold == flat_pred)),
        pred_violations=errors.count_violations(pred, scheme),
    )


def sentence_counts(gold_spans: Sequence[Sequence[tuple[str, int, int]]],
                    pred_spans: Sequence[Sequence[tuple[str, int, int]]]) -> np.ndarray:
    """Per sentence and entity type (sorted), the strict true positives, predicted entities and
    gold entities: an array of shape (sentences, 3, types). What seqeval's strict report sums."""
    types = sorted({t for spans in (gold_spans, pred_spans) for sentence in spans for t, _, _ in sentence})
    at = {t: i for i, t in enumerate(types)}
    counts = np.zeros((len(gold_spans), 3, len(types)), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold_spans, pred_spans, strict=True)):
        for t, _, _ in set(g) & set(p):
            counts[i, 0, at[t]] += 1
        for row, spans in ((1, p), (2, g)):
            for t, _, _ in spans:
                counts[i, row, at[t]] += 1
    return counts


def scores_from_weights(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Micro precision, recall, F1 and macro F1 (columns, :data:`INTERVAL_METRICS` order) for each
    row of ``weights`` (how many times each sentence is drawn), by seqeval's formulas with
    ``zero_division=0``: macro F1 averages the types present (gold or predicted) in that
    resample, NaN when none is."""
    n, _, k = counts.shape
    weights = np.asarray(weights, dtype=np.float64)
    sums = (weights @ counts.reshape(n, 3 * k).astype(np.float64)).reshape(len(weights), 3, k)
    tp, predicted, true = sums[:, 0], sums[:, 1], sums[:, 2]
    micro_p, micro_r, micro_f = _prf(tp.sum(1), predicted.sum(1), true.sum(1))
    _, _, f = _prf(tp, predicted, true)
    present = (predicted + true) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        macro_f = np.where(present, f, 0.0).sum(1) / present.sum(1)
    return np.column_stack([micro_p, micro_r, micro_f, macro_f])


def _prf(tp: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 as seqeval's ``_precision_recall_fscore_support`` computes them, in
    the same order of operations: 0 where undefined (``zero_division=0``)."""
    p = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    r = np.divide(tp, true, out=np.zeros_like(tp), where=true > 0)
    denom = p + r
    f = np.divide(2.0 * p * r, denom, out=np.zeros_like(tp), where=denom > 0)
    return p, r, f


def resample_scores(counts: np.ndarray, *, n_bootstrap: int, seed: int) -> np.ndarray:
    """:func:`scores_from_weights` for each of ``n_bootstrap`` seeded resamples of the sentences,
    the resamples of :func:`audit.core.stats.bootstrap_resamples` (an index matrix per block)."""
    from audit.core.stats import bootstrap_resamples

    n = counts.shape[0]
    out = []
    for block in bootstrap_resamples(n, n_resamples=n_bootstrap, seed=seed, block_values=_BLOCK_VALUES):
        rows = len(block)
        flat = (np.arange(rows, dtype=np.int64)[:, None] * n + block).ravel()
        out.append(scores_from_weights(counts, np.bincount(flat, minlength=rows * n).reshape(rows, n)))
    return np.vstack(out) if out else np.empty((0, len(INTERVAL_METRICS)))


def _intervals(counts: np.ndarray, *, n_bootstrap: int, seed: int, confidence: float) -> pd.DataFrame:
    """Point values (every sentence once) and percentile intervals of :data:`INTERVAL_METRICS`."""
    import pandas as pd

    from audit.core.stats import percentile_interval

    point = scores_from_weights(counts, np.ones((1, counts.shape[0])))[0]
    values = resample_scores(counts, n_bootstrap=n_bootstrap, seed=seed)
    rows = []
    for j in range(len(INTERVAL_METRICS)):
        low, high = percentile_interval(values[:, j], confidence=confidence) if n_bootstrap else (np.nan, np.nan)
        rows.append([float(point[j]), low, high, int(np.isfinite(values[:, j]).sum())])
    return pd.DataFrame(rows, columns=["value", "ci_low", "ci_high", "resamples"],
                        index=pd.Index(INTERVAL_METRICS, name="metric"))


def _word_ece(probs: Sequence[np.ndarray], flat_gold: np.ndarray, tag_names: Sequence[str]) -> float:
    """Top-tag ECE over all words: confidence is the largest probability, correct when its tag
    is the gold tag (the argmax, which is the prediction when the model's tag is its argmax)."""
    from audit.auditors.performance._auditor import expected_calibration_error

    stacked = np.concatenate([np.asarray(p, dtype=np.float64) for p in probs])
    top = np.asarray(tag_names, dtype=object)[stacked.argmax(axis=1)]
    return expected_calibration_error(stacked.max(axis=1), top == flat_gold, n_bins=ECE_BINS)[0]


def _check(*, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], probs: Sequence[np.ndarray] | None,
           tag_names: Sequence[str], scheme: str, n_bootstrap: int, confidence: float
           ) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predictions as lists of lists, after checking every input against the others."""
    if scheme not in SCHEMES:
        raise AuditInputError(SCHEME_UNKNOWN.format(scheme=scheme, schemes=", ".join(SCHEMES)))
    prefixes = "" if scheme == "IO" else ALLOWED[scheme]  # IO tags may be plain types: any tag fits
    form = ("a type name" if scheme == "IO" else
            f"a prefix among {', '.join(prefixes)}, '-' and a type (B-PER)")
    for tag in tag_names:
        prefix, entity_type = split_tag(tag)
        if tag != OUTSIDE and prefixes and not (prefix in prefixes and entity_type):
            raise AuditInputError(TAG_OFF_SCHEME.format(tag=tag, scheme=scheme, form=form))
    if all(t == OUTSIDE for t in tag_names):
        raise AuditInputError(NO_ENTITY_TAG.format(tags=list(tag_names)))
    if n_bootstrap < 0:
        raise AuditInputError(BOOTSTRAP_NEGATIVE.format(n=n_bootstrap))
    if not 0 < confidence < 1:
        raise AuditInputError(CONFIDENCE_RANGE.format(confidence=confidence))
    if not len(gold):
        raise AuditInputError(NO_SENTENCES)
    if len(gold) != len(pred):
        raise AuditInputError(SENTENCE_COUNTS.format(gold=len(gold), pred=len(pred)))
    if probs is not None and len(probs) != len(gold):
        raise AuditInputError(PROBS_COUNT.format(probs=len(probs), sentences=len(gold)))
    known = set(tag_names)
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise AuditInputError(SENTENCE_LENGTHS.format(i=i, gold=len(g), pred=len(p)))
        for role, seq in (("gold", g), ("predicted", p)):
            unknown = next((t for t in seq if t not in known), None)
            if unknown is not None:
                raise AuditInputError(TAG_UNKNOWN.format(i=i, role=role, tag=unknown, tags=list(tag_names)))
        if probs is not None and np.shape(probs[i]) != (len(g), len(tag_names)):
            raise AuditInputError(PROBS_SHAPE.format(i=i, shape=np.shape(probs[i]), words=len(g),
                                                     tags=len(tag_names)))
    if not any(len(g) for g in gold):
        raise AuditInputError(NO_WORDS.format(n=len(gold)))
    return [list(s) for s in gold], [list(s) for s in pred]
