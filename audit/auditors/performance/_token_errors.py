"""What kind of errors a token classifier makes: the MUC/SemEval-2013 error categories, an
entity-type confusion matrix, and ill-formed tag transitions in its predictions.

The categories (correct, incorrect, partial, missed, spurious) come from MUC-5 scoring
(Chinchor and Sundheim 1993) as SemEval-2013 Task 9.1 (Segura-Bedmar et al. 2013) defined its
four schemas: strict (boundaries and type), exact (boundaries only), partial (overlap, half
credit) and ent_type (overlap with the right type). ``nervaluate`` computes them; we give it
seqeval's strict spans (its ``dict`` loader) rather than the raw tags, because its own tag reader
knows B-/I- only and repairs ill-formed chunks, so every table of the section counts the same
entities as the strict entity report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from audit.tasks.tagging import violations

if TYPE_CHECKING:
    import pandas as pd

Spans = Sequence[Sequence[tuple[str, int, int]]]  # per sentence: (type, start, end exclusive)
SCHEMAS = ("strict", "exact", "partial", "ent_type")
CATEGORIES = ("correct", "incorrect", "partial", "missed", "spurious", "possible", "actual")
BREAKDOWN_COLUMNS = ("schema", "entity", *CATEGORIES, "precision", "recall", "f1")
OVERALL = "overall"
MISSED = "missed"
SPURIOUS = "spurious"


def error_breakdown(gold_spans: Spans, pred_spans: Spans) -> pd.DataFrame:
    """nervaluate's categories and scores, long format: per schema, an ``overall`` row, then one
    row per entity type (sorted). Precision and recall count a partial match as half under the
    partial and ent_type schemas, as nervaluate (and SemEval-2013) do."""
    import pandas as pd
    from nervaluate import Evaluator

    def as_dicts(spans: Spans) -> list[list[dict]]:
        # nervaluate's spans are inclusive of their last word
        return [[{"label": t, "start": s, "end": e - 1} for t, s, e in sentence] for sentence in spans]

    types = sorted({t for spans in (gold_spans, pred_spans) for sentence in spans for t, _, _ in sentence})
    results = Evaluator(as_dicts(gold_spans), as_dicts(pred_spans), tags=types, loader="dict").evaluate()
    rows = []
    for schema in SCHEMAS:
        for name in (OVERALL, *types):
            r = results["overall"][schema] if name == OVERALL else results["entities"][name][schema]
            rows.append([schema, name, *(int(getattr(r, c)) for c in CATEGORIES),
                         float(r.precision), float(r.recall), float(r.f1)])
    return pd.DataFrame(rows, columns=list(BREAKDOWN_COLUMNS))


def entity_confusion(gold_spans: Spans, pred_spans: Spans) -> pd.DataFrame:
    """Gold type (rows) by predicted type (columns) over overlapping spans, in counts.

    Within each sentence, gold and predicted spans are paired one to one, largest overlap (in
    words) first; among equal overlaps, a pair of the same type first, then by position. A gold
    span left unpaired is counted in the ``missed`` column, a predicted one in the ``spurious``
    row. So each gold entity is counted once in its row (row sums are the gold supports) and each
    predicted entity once in its column; the diagonal counts right types, whatever the
    boundaries (the strict true positives are a part of it)."""
    import numpy as np
    import pandas as pd

    types = sorted({t for spans in (gold_spans, pred_spans) for sentence in spans for t, _, _ in sentence})
    at = {t: i for i, t in enumerate(types)}
    k = len(types)
    counts = np.zeros((k + 1, k + 1), dtype=np.int64)  # last row: spurious; last column: missed
    for gold, pred in zip(gold_spans, pred_spans, strict=True):
        pairs = []
        for gi, (gt, gs, ge) in enumerate(gold):
            for pi, (pt, ps, pe) in enumerate(pred):
                overlap = min(ge, pe) - max(gs, ps)
                if overlap > 0:
                    pairs.append((-overlap, gt != pt, gs, ps, gi, pi))
        gold_done, pred_done = set(), set()
        for *_, gi, pi in sorted(pairs):
            if gi not in gold_done and pi not in pred_done:
                gold_done.add(gi)
                pred_done.add(pi)
                counts[at[gold[gi][0]], at[pred[pi][0]]] += 1
        for gi, (gt, _, _) in enumerate(gold):
            if gi not in gold_done:
                counts[at[gt], k] += 1
        for pi, (pt, _, _) in enumerate(pred):
            if pi not in pred_done:
                counts[k, at[pt]] += 1
    return pd.DataFrame(counts, index=pd.Index([*types, SPURIOUS], name="gold"),
                        columns=pd.Index([*types, MISSED], name="predicted"))


def count_violations(sequences: Sequence[Sequence[str]], scheme: str) -> int:
    """Tag transitions that the scheme forbids, counted over all sentences; each sentence is read
    with an ``O`` before its first and after its last word, so ``I-PER`` opening a sentence under
    IOB2 is one. The rules (Ramshaw and Marcus 1995 for IOB1/IOB2 and their IOE mirrors; Ratinov
    and Roth 2009 for BILOU = IOBES):

    - IOB2: ``I-X`` only after ``B-X`` or ``I-X``;
    - IOB1: ``B-X`` only after ``I-X`` or ``B-X`` (B separates two adjacent chunks of one type);
    - IOE2: ``I-X`` only before ``I-X`` or ``E-X``;
    - IOE1: ``E-X`` only before ``I-X`` or ``E-X``;
    - IOBES / BILOU: ``B-X``, ``I-X`` only before ``I-X``, ``E-X`` (``L``), and ``I-X``, ``E-X``
      only after ``B-X``, ``I-X`` (a transition breaking both rules counts once);
    - IO: no transition is forbidden.
    """
    return sum(len(violations(seq, scheme=scheme)) for seq in sequences)
