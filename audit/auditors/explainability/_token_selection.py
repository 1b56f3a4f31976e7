"""Which predictions of a token classifier are explained: a curated handful, not every word.

``explain_sentences`` sentences are drawn with ``ctx.rng`` among those where the model predicts an
entity or makes a mistake, alternating between sentences with a wrong word and sentences tagged
right (so errors, often rare, are half of the sample when there are enough of them). In each
sentence the targets are every predicted entity (strict spans of the predicted tags, the entities
the performance section scores) and every wrongly tagged word outside them (a missed entity's
``O``, a stray ``I-`` tag), at most ``MAX_TARGETS_PER_SENTENCE`` per sentence, errors first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audit.tasks.tagging import entity_spans, split_tag

# A sentence of a few entities gives a few targets; a long one would crowd out the others.
MAX_TARGETS_PER_SENTENCE = 4
ENTITY, WORD = "entity", "word"


@dataclass(frozen=True, kw_only=True)
class TagTarget:
    """One prediction to explain: words ``start:end`` of sentence ``sentence`` with the predicted
    tag ids ``tags``; ``kind`` is ``entity`` (a predicted entity of type ``label``) or ``word`` (one
    word's tag ``label``); ``wrong``: a word of it has another gold tag; ``confidence``: the mean
    probability of the predicted tags."""

    sentence: int
    start: int
    end: int
    tags: tuple[int, ...]
    kind: str
    label: str
    wrong: bool
    confidence: float


def sentence_targets(*, sentence: int, gold: Sequence[str], pred: Sequence[str], pred_ids: Sequence[int],
                     probs: np.ndarray, scheme: str) -> list[TagTarget]:
    """The targets of one sentence (see the module docstring), wrong ones first."""
    out = []
    covered = np.zeros(len(pred), dtype=bool)
    for span in entity_spans(list(pred), scheme=scheme):
        covered[span.start:span.end] = True
        wrong = any(gold[i] != pred[i] for i in range(span.start, span.end))
        out.append(_target(sentence, span.start, span.end, pred_ids, probs, kind=ENTITY, label=span.type,
                           wrong=wrong))
    for i in range(len(pred)):
        if not covered[i] and gold[i] != pred[i]:
            out.append(_target(sentence, i, i + 1, pred_ids, probs, kind=WORD, label=pred[i], wrong=True))
    out.sort(key=lambda t: (not t.wrong, t.start))
    return out[:MAX_TARGETS_PER_SENTENCE]


def _target(sentence: int, start: int, end: int, pred_ids: Sequence[int], probs: np.ndarray, *, kind: str,
            label: str, wrong: bool) -> TagTarget:
    tags = tuple(int(pred_ids[i]) for i in range(start, end))
    confidence = float(np.mean([probs[i, t] for i, t in zip(range(start, end), tags, strict=True)]))
    return TagTarget(sentence=sentence, start=start, end=end, tags=tags, kind=kind, label=label, wrong=wrong,
                     confidence=confidence)


def select_targets(*, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                   pred_ids: Sequence[Sequence[int]], probs: Sequence[np.ndarray], scheme: str, n_sentences: int,
                   rng: np.random.Generator) -> list[TagTarget]:
    """The targets of up to ``n_sentences`` sentences drawn as the module docstring says, in
    sentence order."""
    wrong, right = [], []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if any(a != b for a, b in zip(g, p, strict=True)):
            wrong.append(i)
        elif any(split_tag(t)[1] for t in p):
            right.append(i)
    queues = [list(rng.permutation(wrong)), list(rng.permutation(right))]
    chosen: list[int] = []
    while len(chosen) < n_sentences and any(queues):
        for q in queues:
            if q and len(chosen) < n_sentences:
                chosen.append(int(q.pop(0)))
    out = []
    for i in sorted(chosen):
        out += sentence_targets(sentence=i, gold=gold[i], pred=pred[i], pred_ids=pred_ids[i], probs=probs[i],
                                scheme=scheme)
    return out
