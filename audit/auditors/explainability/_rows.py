"""Which rows the explainability auditor explains, and what it computed for them.

:func:`sampled_rows` reads only the shared predictions; :func:`flagged_rows` reads ``ctx.upstream``
(fairness's flagged rows, robustness's successful attacks), so the auditor calls it last: side by
side (:mod:`audit.core.side_by_side`), its sample is explained while those auditors still run.
:class:`Explained` holds the attributions, IG convergence and faithfulness curves of a set of rows;
``then`` joins two sets, the first's rows first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.explainability._checks import concat_curves
from audit.auditors.explainability._curation import attack_rows, interleave

if TYPE_CHECKING:
    from audit.core.context import AuditContext


@dataclass
class Picked:
    """Rows chosen to explain: text, pair, gold label, prediction, its confidence, why chosen."""

    texts: list[str]
    pairs: list[str | None] | None
    labels: list[int | None]
    preds: list[int]
    confidences: list[float]
    sources: list[str]

    def then(self, other: Picked) -> Picked:
        pairs = None
        if self.pairs is not None or other.pairs is not None:
            pairs = (self.pairs or [None] * len(self.texts)) + (other.pairs or [None] * len(other.texts))
        return Picked(texts=self.texts + other.texts, pairs=pairs, labels=self.labels + other.labels,
                      preds=self.preds + other.preds, confidences=self.confidences + other.confidences,
                      sources=self.sources + other.sources)


@dataclass
class Explained:
    """Rows explained: their attributions per method, IG's convergence and faithfulness curves."""

    picked: Picked
    rows: list[Any]
    targets: np.ndarray
    word_scores: dict[str, list[np.ndarray]]
    ig_info: dict[str, Any]
    curves: dict[str, Any] | None
    timings: dict[str, float]

    def then(self, other: Explained) -> Explained:
        """These rows, then ``other``'s."""
        if not other.rows:
            return self
        if not self.rows:
            return other
        curves = (concat_curves(self.curves, other.curves)
                  if self.curves is not None and other.curves is not None else None)
        return Explained(picked=self.picked.then(other.picked), rows=self.rows + other.rows,
                         targets=np.concatenate([self.targets, other.targets]),
                         word_scores={m: self.word_scores[m] + other.word_scores[m] for m in self.word_scores},
                         ig_info={k: np.concatenate([v, other.ig_info[k]]) for k, v in self.ig_info.items()},
                         curves=curves, timings={k: self.timings.get(k, 0.0) + other.timings.get(k, 0.0)
                                                  for k in {**self.timings, **other.timings}})


def sampled_rows(ctx: AuditContext, *, examples: int) -> Picked:
    """A seeded sample stratified over predicted class x correct/wrong (round-robin across
    strata, so rare strata such as wrong predictions are represented), in row order, with each
    row's probability of its predicted class (its confidence, which orders the errors shown)."""
    data = ctx.data
    n = len(data)
    preds_all = ctx.predictions.preds if n else np.zeros(0, dtype=int)
    if preds_all.ndim > 1:  # multi-label: stratify on the highest-scoring class
        preds_all = ctx.predictions.probs.argmax(axis=1)
    labels_all = data.labels if data.labels is not None and np.ndim(data.labels) == 1 else None
    correct = (preds_all == labels_all) if labels_all is not None else np.ones(n, dtype=bool)
    strata: dict[tuple[int, bool], list[int]] = defaultdict(list)
    for i in range(n):
        strata[(int(preds_all[i]), bool(correct[i]))].append(i)
    rng = ctx.rng("explainability.sample")
    queues = [list(rng.permutation(strata[key])) for key in sorted(strata)]
    chosen: list[int] = []
    want = min(examples, n)
    while len(chosen) < want:
        for q in queues:
            if q and len(chosen) < want:
                chosen.append(int(q.pop(0)))
    chosen.sort()
    return Picked(texts=[data.texts[i] for i in chosen],
                  pairs=[data.pairs[i] for i in chosen] if data.pairs is not None else None,
                  labels=([int(labels_all[i]) for i in chosen] if labels_all is not None
                           else [None] * len(chosen)),
                   preds=[int(preds_all[i]) for i in chosen],
                   confidences=[float(ctx.predictions.probs[i, preds_all[i]]) for i in chosen],
                   sources=["sample"] * len(chosen))

def flagged_rows(ctx: AuditContext, *, seen: set[str], examples: int) -> Picked:
    """The rows the fairness auditor flagged and those a robustness attack flipped (declared in
    ``consumes``: read from ``ctx.upstream`` here, last), taken in turn up to
    ``examples``, leaving out texts in ``seen``."""
    data = ctx.data
    seen = set(seen)
    extra = []
    fairness = ctx.upstream.get("fairness")
    # Fairness's flagged rows and robustness's successful attacks, in turn (declared in consumes).
    flagged = interleave((fairness.extra.get("interesting_rows") if fairness is not None else None) or [],
                         attack_rows(ctx.upstream.get("robustness"), label_names=list(data.label_names),
                                     has_pairs=data.pairs is not None))
    for item in flagged:
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text or text in seen:
            continue
        seen.add(text)
        extra.append(item)
        if len(extra) >= examples:
            break
    if not extra:
        return Picked(texts=[], pairs=[] if data.pairs is not None else None, labels=[], preds=[],
                      confidences=[], sources=[])
    e_texts = [item["text"] for item in extra]
    e_pairs = [item.get("pair") for item in extra]
    use_pairs = data.pairs is not None or any(p is not None for p in e_pairs)
    probs = ctx.predict(e_texts, [p or "" for p in e_pairs] if use_pairs else None,
                        desc="predict interesting rows").probs
    return Picked(texts=e_texts, pairs=e_pairs if use_pairs else None,
                  labels=[item.get("label") if is_int(item.get("label")) else None for item in extra],
                  preds=[int(p) for p in probs.argmax(axis=1)], confidences=[float(p) for p in probs.max(axis=1)],
                  sources=[str(item.get("source") or item.get("reason") or "interesting") for item in extra])


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
