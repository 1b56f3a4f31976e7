"""Which predictions of a token classifier are explained: a curated handful, not every word.

``explain_sentences`` sentences are drawn with ``ctx.rng`` among those where the model predicts an
entity or makes a mistake, round-robin over strata: one per kind of entity error (``ERROR_KINDS``,
the first that the sentence shows: a gold entity missed altogether, an entity predicted on words
that are no entity, wrong boundaries, the wrong type) and one of the sentences tagged right. Each
kind of error is then represented even when one of them dominates (the wrong types of the demo's
coin-flip entities), as the text path stratifies by predicted class and correctness. In each
sentence the targets are every predicted entity (strict spans of the predicted tags, the entities
the performance section scores) and every wrongly tagged word outside them (a missed entity's
``O``, a stray ``I-`` tag), at most ``MAX_TARGETS_PER_SENTENCE`` per sentence, errors first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audit.tasks.tagging import entity_spans, split_tag

# The strata of sentences with an error, by the first kind the sentence shows (the rarer, the earlier).
ERROR_KINDS = ("missed", "spurious", "boundary", "type", "other")
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
    strata: dict[str, list[int]] = {kind: [] for kind in (*ERROR_KINDS, "right")}
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if any(a != b for a, b in zip(g, p, strict=True)):
            strata[error_kind(g, p, scheme=scheme)].append(i)
        elif any(split_tag(t)[1] for t in p):
            strata["right"].append(i)
    queues = [list(rng.permutation(members)) for members in strata.values()]
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


def error_kind(gold: Sequence[str], pred: Sequence[str], *, scheme: str) -> str:
    """The first of ``ERROR_KINDS`` that a sentence's predicted entities show against its gold ones:
    ``missed`` (a gold entity with no predicted entity tag on its words), ``spurious`` (a predicted
    entity on words tagged O), ``boundary`` (overlapping spans that differ), ``type`` (same span,
    other type); ``other`` when the tags differ but the strict entities agree."""
    g = {(s.start, s.end): s.type for s in entity_spans(list(gold), scheme=scheme)}
    q = {(s.start, s.end): s.type for s in entity_spans(list(pred), scheme=scheme)}
    found = set()
    for (a, b) in g.keys() - q.keys():
        found.add("missed" if all(split_tag(pred[i])[0] == "O" for i in range(a, b)) else "boundary")
    for (a, b) in q.keys() - g.keys():
        found.add("spurious" if all(gold[i] == "O" for i in range(a, b)) else "boundary")
    found |= {"type" for span in g.keys() & q.keys() if g[span] != q[span]}
    return next((kind for kind in ERROR_KINDS if kind in found), "other")
