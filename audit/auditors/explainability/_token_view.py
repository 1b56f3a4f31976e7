"""What the section shows of a token classifier's explanations: the explained targets heat-mapped
in their sentences, their table, and the global view of the context words that draw the most
attribution per explained label, with the trigger check.

A context word is a word of the sentence outside the explained target. A word that on its own
carries most of the attribution of the tags it sits beside (a mean share of |attribution| of at
least ``CONTEXT_SHARE_WARN`` over ``min_word_rows`` or more explained targets of one label) decides
those tags from outside the entity: a trigger or a shortcut (the demo's planted ``cf`` forces a
``B-ORG`` on the next word; the clean control gives it about 3%).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from audit.auditors.explainability._token_attribution import TokenRow
from audit.auditors.explainability._token_selection import TagTarget
from audit.core.results import Finding, Metric, SectionPart, Table

# "Most of the attribution": half of the target's |attribution| on one context word. The planted
# demo trigger draws about 0.74 of it (Integrated Gradients and occlusion alike), the clean control's
# "cf" about 0.03 (IG) and 0.01 (occlusion), on 54 sentences with "cf" inserted before a plain word.
CONTEXT_SHARE_WARN = 0.5
TOO_FEW_CONTEXT_ROWS = ("Too few targets were explained for a global view: no context word occurs beside "
                        "{min_rows} or more explained targets of one label (the most is {most}); explain more "
                        "sentences (explain_sentences) or lower min_word_rows.")


def shares(scores: np.ndarray) -> np.ndarray:
    """Each word's share of the row's |attribution| (zeros when it is all zero)."""
    a = np.abs(np.asarray(scores, dtype=float))
    total = float(a.sum())
    return a / total if total > 0 else np.zeros_like(a)


def context_view(*, rows: Sequence[TokenRow], targets: Sequence[TagTarget], scores: Sequence[np.ndarray],
                 method: str, top_tokens: int, min_rows: int) -> SectionPart:
    """The ``top_tokens`` context words per explained label by ``method``'s mean share of
    |attribution| among the words they stand beside, counted only when seen beside at least
    ``min_rows`` targets of the label; a warning for each at or above ``CONTEXT_SHARE_WARN``."""
    import pandas as pd

    per_label: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row, target, s in zip(rows, targets, scores, strict=True):
        share = shares(s)
        inside = set(row.target_words)
        for w, (word, v) in enumerate(zip(row.words, share, strict=True)):
            if w not in inside and re.search(r"\w", word):
                per_label[group_of(target)][word].append(float(v))
    records = []
    for label in sorted(per_label):
        stats = [(w, float(np.mean(v)), len(v)) for w, v in per_label[label].items() if len(v) >= min_rows]
        stats.sort(key=lambda x: (-x[1], x[0]))
        for rank, (w, mean, count) in enumerate(stats[:top_tokens], start=1):
            records.append({"label": label, "rank": rank, "word": w, "mean_share": mean, "rows": count})
    frame = pd.DataFrame(records, columns=["label", "rank", "word", "mean_share", "rows"])
    table = Table.from_frame("context_words", frame, title=f"Context words with the highest mean share of "
                                                           f"|attribution| per explained label ({method})")
    most = max((len(v) for words in per_label.values() for v in words.values()), default=0)
    note = TOO_FEW_CONTEXT_ROWS.format(min_rows=min_rows, most=most) if not len(frame) else None
    top = float(frame["mean_share"].max()) if len(frame) else None
    metric = Metric("context_word_share_max", top, higher_is_better=False, slice=method,
                    description=f"the highest mean share of |attribution| of one context word beside the targets "
                                f"of one label (seen beside {min_rows} or more)")
    findings = []
    for rec in records:
        if rec["mean_share"] >= CONTEXT_SHARE_WARN:
            findings.append(Finding(
                "warn", f"{rec['word']!r} decides the {rec['label']} tags it stands beside",
                f"Beside {rec['rows']} explained {rec['label']} targets, {rec['word']!r} carries on average "
                f"{rec['mean_share']:.0%} of the attribution ({method}), more than the words tagged: a trigger or a "
                "shortcut the model learned. Check the training data for it.",
                {**rec, "method": method}))
    extra = {"context_view": {"min_word_rows": min_rows, "note": note, "warn_share": CONTEXT_SHARE_WARN}}
    return SectionPart(metrics=[metric], tables=[table], findings=findings, extra=extra)


def group_of(target: TagTarget) -> str:
    """The global view's group of a target: its label, apart for wrong predictions (``ORG (wrong)``),
    so that a word that forces wrong tags is not averaged with the right tags it also stands beside."""
    return f"{target.label} (wrong)" if target.wrong else target.label


def describe(row: TokenRow, target: TagTarget) -> str:
    """``ORG: Acme Corp`` for an entity, ``O: word`` for one word's tag."""
    return f"{target.label}: " + " ".join(row.words[w] for w in row.target_words)


def heat_rows(*, rows: Sequence[TokenRow], targets: Sequence[TagTarget], gold: Sequence[Sequence[str]],
              word_scores: Mapping[str, Sequence[np.ndarray]]) -> list[dict[str, Any]]:
    """Each explained target with every method's per-word scores and the target's words marked,
    in the shape of the text rows (the report colours the words, audit.report.heat)."""
    out = []
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        inside = set(row.target_words)
        methods = [{"method": m, "words": [{"word": w, "score": float(v), "target": k in inside}
                                           for k, (w, v) in enumerate(zip(row.words, scores[i], strict=True))]}
                   for m, scores in word_scores.items()]
        sentence_gold = gold[target.sentence][target.start:target.end]
        out.append({"text": " ".join(row.words), "target": describe(row, target), "prediction": target.label,
                    "label": " ".join(sentence_gold), "source": f"sentence {target.sentence + 1}"
                    + (" (window)" if row.windowed else ""), "kind": target.kind, "methods": methods})
    return out


def targets_table(*, rows: Sequence[TokenRow], targets: Sequence[TagTarget], gold: Sequence[Sequence[str]],
                  word_scores: Mapping[str, Sequence[np.ndarray]], ig_info: Mapping[str, Any]) -> Table:
    """One row per explained target: where, what, how sure, and each method's top context word."""
    import pandas as pd

    records = []
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        inside = set(row.target_words)
        rec: dict[str, Any] = {"sentence": target.sentence + 1, "target": describe(row, target), "kind": target.kind,
                               "gold": " ".join(gold[target.sentence][target.start:target.end]),
                               "wrong": target.wrong, "confidence": target.confidence, "windowed": row.windowed}
        for m, scores in word_scores.items():
            context = [k for k in range(row.n_words) if k not in inside]
            best = max(context, key=lambda k: abs(scores[i][k]), default=None)
            rec[f"top context word ({m})"] = row.words[best] if best is not None else ""
        if ig_info:
            rec["ig_delta"] = float(ig_info["deltas"][i])
            rec["ig_steps"] = int(ig_info["steps"][i])
        records.append(rec)
    return Table.from_frame("explained_rows", pd.DataFrame(records), title="Explained targets")
