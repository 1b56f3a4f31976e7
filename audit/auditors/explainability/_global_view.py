"""The global view of the explanations, a part of the explainability section: the words with
the highest mean share of |attribution| per predicted class, and the share landing on identity
terms (a cross-link to the fairness section)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from audit.core.results import Finding, Metric, SectionPart, Table

if TYPE_CHECKING:
    from audit.auditors.explainability._attribution import EncodedRow

# The identity terms whose share of the attribution is reported.
DEFAULT_IDENTITY_TERMS = ("young", "elderly", "teenage", "middle-aged", "old", "man", "woman", "men",
                          "women", "male", "female", "boy", "girl", "he", "she", "black", "white",
                          "asian", "hispanic", "gay", "lesbian", "christian", "muslim", "jewish")
# The default of the auditor's ``min_word_rows`` option: a word (or identity term) is ranked only
# when it occurs in at least this many explained rows of its class. A mean share over one or two
# rows is one or two explanations, not a pattern ("no" at 0.51 over 2 rows topped a class on
# SST-2); 5 rows is the smallest count at which a mean of shares in [0, 1] is more than anecdote
# while a default sample of 50 rows still yields a list.
DEFAULT_MIN_WORD_ROWS = 5

TOO_FEW_WORD_ROWS = ("Too few rows were explained for a global view: no word occurs in {min_rows} or more of the "
                     "{n_rows} explained rows of its predicted class (the most is {most}); explain more rows "
                     "(explain_examples) or lower min_word_rows.")
CLASSES_WITHOUT_WORDS = ("No word reaches {min_rows} explained rows for {classes}; those classes are not ranked.")
TOO_FEW_TERM_ROWS = ("No identity term occurs in {min_rows} or more explained rows ({n_terms} seen, the most in "
                     "{most}), so no term's share is ranked; the overall share above still counts every row.")


def global_view(*, rows: Sequence[EncodedRow], targets: np.ndarray, scores: list[np.ndarray], method: str,
                label_names: list[str], top_tokens: int, min_rows: int = DEFAULT_MIN_WORD_ROWS) -> SectionPart:
    """The ``top_tokens`` words per predicted class by ``method``'s mean share of |attribution|,
    and the mean share per row on identity terms, with a table and an info finding for each.

    Only words and terms seen in at least ``min_rows`` explained rows (of the class, for words)
    are ranked, each with its row count. When none reaches it, ``extra["global_view"]`` holds one
    sentence saying so (``words_note`` / ``terms_note``) for the report instead of a table; the
    ``identity_attribution_share`` metric is a mean over every explained row and is unaffected."""
    import pandas as pd

    per_class: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    shares: list[np.ndarray] = []
    for row, s, t in zip(rows, scores, targets, strict=True):
        total = float(np.abs(s).sum())
        share = np.abs(s) / total if total > 0 else np.zeros_like(s)
        shares.append(share)
        for w, v in zip(row.words, share, strict=True):
            if re.search(r"\w", w):
                per_class[int(t)][w.lower()].append(float(v))
    records = []
    unranked = []
    for c in sorted(per_class):
        stats = [(w, float(np.mean(v)), len(v)) for w, v in per_class[c].items()]
        frequent = [x for x in stats if x[2] >= min_rows]
        if not frequent:
            unranked.append(label_names[c])
        frequent.sort(key=lambda x: (-x[1], x[0]))
        for rank, (w, mean, count) in enumerate(frequent[:top_tokens], start=1):
            records.append({"class": label_names[c], "rank": rank, "word": w, "mean_share": mean, "rows": count})
    frame = pd.DataFrame(records, columns=["class", "rank", "word", "mean_share", "rows"])
    tables = [Table.from_frame("top_tokens", frame, title=f"Words with the highest mean share of |attribution| "
                                                          f"per predicted class ({method})")]
    words_note = None
    if not len(frame):
        most = max((len(v) for words in per_class.values() for v in words.values()), default=0)
        words_note = TOO_FEW_WORD_ROWS.format(min_rows=min_rows, n_rows=len(rows), most=most)
    elif unranked:
        words_note = CLASSES_WITHOUT_WORDS.format(min_rows=min_rows, classes=", ".join(unranked))
    findings = []
    if len(frame):
        tops = "; ".join(f"{c}: " + ", ".join(frame.loc[frame["class"] == c, "word"].head(3))
                         for c in dict.fromkeys(frame["class"]))
        findings.append(Finding("info", "Most attributed words per predicted class",
                                f"{method}, mean share of |attribution| in the rows where the word occurs: {tops}.",
                                {"method": method}))

    terms = list(dict.fromkeys(t.lower() for t in DEFAULT_IDENTITY_TERMS))
    term_share: dict[str, list[float]] = defaultdict(list)
    row_share = np.zeros(len(rows))
    for i, (row, share) in enumerate(zip(rows, shares, strict=True)):
        hit = np.zeros(row.n_words, dtype=bool)
        for term in terms:
            pos = find_term(row.words, term)
            if pos:
                term_share[term].append(float(share[pos].sum()))
                hit[pos] = True
        row_share[i] = float(share[hit].sum())
    overall = float(row_share.mean()) if len(rows) else None
    metric = Metric("identity_attribution_share", overall, higher_is_better=False, slice=method,
                    description="mean share of |attribution| per row on identity terms")
    id_records = [{"term": t, "rows": len(v), "mean_share": float(np.mean(v))}
                  for t, v in sorted(term_share.items(), key=lambda kv: (-float(np.mean(kv[1])), kv[0]))
                  if len(v) >= min_rows]
    terms_note = None
    if term_share and not id_records:
        terms_note = TOO_FEW_TERM_ROWS.format(min_rows=min_rows, n_terms=len(term_share),
                                              most=max(len(v) for v in term_share.values()))
    tables.append(Table.from_frame("identity_terms", pd.DataFrame(id_records, columns=["term", "rows", "mean_share"]),
                                   title="Share of |attribution| on identity terms (see the fairness section)"))
    if id_records:
        top = id_records[0]
        findings.append(Finding(
            "info", f"{overall:.0%} of the attribution lands on identity terms",
            f"Largest: {top['term']!r} with a mean share of {top['mean_share']:.0%} in the {top['rows']} rows that "
            "mention it. Compare with the fairness section.",
            {"identity_attribution_share": overall, "terms": id_records[:5]}))
    extra = {"global_view": {"min_word_rows": min_rows, "words_note": words_note, "terms_note": terms_note}}
    return SectionPart(metrics=[metric], tables=tables, findings=findings, extra=extra)


def find_term(words: Sequence[str], term: str) -> list[int]:
    """Indices of the words making up every occurrence of ``term`` (multi-word and hyphenated
    terms match their word parts in sequence; punctuation between them is skipped)."""
    parts = re.findall(r"\w+", term.lower())
    if not parts:
        return []
    alnum = [(i, w.lower()) for i, w in enumerate(words) if re.search(r"\w", w)]
    found: list[int] = []
    for s in range(len(alnum) - len(parts) + 1):
        if all(alnum[s + j][1] == parts[j] for j in range(len(parts))):
            found += [alnum[s + j][0] for j in range(len(parts))]
    return found
