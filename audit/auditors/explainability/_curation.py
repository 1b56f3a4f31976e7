"""Why each explained row is there, and which few of them the report shows first.

A reviewer cannot read fifty heat-mapped rows; the section shows a handful chosen to cover the
distinct reasons rows were explained (a counterfactual flip from the fairness auditor, the most
confident errors, rows a verified adversarial attack of the robustness auditor flipped, rows whose
attribution lands on identity terms, the random sample) and keeps the rest in a collapsed block.
Nothing here changes which sampled rows are explained or any metric: each row only gains a
``reason`` of a kind in :data:`REASONS` (and a ``reason_detail`` with the number behind it), and
the section gains the order in which to show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.explainability._global_view import DEFAULT_IDENTITY_TERMS, find_term

if TYPE_CHECKING:
    from audit.auditors.explainability._attribution import EncodedRow

# The reasons a row is explained, in the order the report covers them. Rows handed over by the
# fairness auditor keep its reason (a counterfactual flip, or any other flag); sampled rows are
# told apart by what the data says about them. Wrong predictions are a stratum of the sample (about
# half of it when errors exist), so the reason says "wrong prediction" and the report shows the
# most confident ones first.
REASON_FAIRNESS_FLIP = "flipped by an identity-term swap (fairness)"
# Rows the robustness auditor attacked successfully (verified, prediction changed): the reason
# names the recipe, "attack succeeded (pwws)"; :func:`reason_kind` maps it back to this entry.
REASON_ATTACK = "attack succeeded"
REASON_FAIRNESS_FLAGGED = "flagged by fairness"
REASON_ERROR = "wrong prediction"
REASON_IDENTITY = "high identity-term attribution"
REASON_SAMPLE = "random sample"
REASONS = (REASON_FAIRNESS_FLIP, REASON_ERROR, REASON_ATTACK, REASON_IDENTITY, REASON_FAIRNESS_FLAGGED,
           REASON_SAMPLE)
# The fairness auditor's reason for its counterfactual flips (audit/auditors/fairness/_counterfactual.py).
FAIRNESS_FLIP_SOURCE = "fairness: counterfactual flip"
# The source of a row handed over by the robustness auditor, followed by the recipe's name.
ATTACK_SOURCE = "robustness: "
# The rows shown outside the collapsed block: enough to see one or two of each reason, few enough
# to read on one screen.
SHOWN_ROWS = 6
# A sampled, correctly predicted row counts as "high identity-term attribution" when identity
# terms draw at least this share of its |attribution| (primary method): a fifth of the weight on
# one or two words of a sentence is far above what a neutral word of it draws.
IDENTITY_SHARE_MIN = 0.2


def identity_shares(rows: Sequence[EncodedRow], scores: Sequence[np.ndarray]) -> np.ndarray:
    """Per row, the share of |attribution| on identity terms (the terms of the global view)."""
    terms = list(dict.fromkeys(t.lower() for t in DEFAULT_IDENTITY_TERMS))
    out = np.zeros(len(rows))
    for i, (row, s) in enumerate(zip(rows, scores, strict=True)):
        total = float(np.abs(s).sum())
        if total <= 0:
            continue
        hit = np.zeros(row.n_words, dtype=bool)
        for term in terms:
            hit[find_term(row.words, term)] = True
        out[i] = float(np.abs(s)[hit].sum()) / total
    return out


def row_reasons(*, sources: Sequence[str], labels: Sequence[int | None], preds: np.ndarray,
                confidences: np.ndarray, id_shares: np.ndarray) -> list[tuple[str, str, float]]:
    """``(reason, detail, score)`` per row: the reason from :data:`REASONS`, one phrase with the
    number behind it, and the score that orders rows of the same reason (higher shown first).

    A row from fairness keeps its reason (its order there, largest change first, gives the
    score); a row from robustness is an attack that succeeded, named by its recipe (its order
    there gives the score); a sampled row is an error when its label is known and differs from
    the prediction (scored by the confidence of the wrong class), else identity-heavy when
    identity terms draw at least ``IDENTITY_SHARE_MIN`` of its attribution, else part of the
    random sample."""
    out = []
    n = len(sources)
    k = 0
    for i in range(n):
        if sources[i].startswith(ATTACK_SOURCE):
            recipe = sources[i][len(ATTACK_SOURCE):]
            out.append((f"{REASON_ATTACK} ({recipe})",
                        f"a few word changes by {recipe} flip its prediction; see Robustness", float(n - i)))
        elif sources[i] != "sample":
            k += 1
            reason = REASON_FAIRNESS_FLIP if sources[i] == FAIRNESS_FLIP_SOURCE else REASON_FAIRNESS_FLAGGED
            out.append((reason, f"#{k} in the fairness auditor's list, largest change first", float(n - i)))
        elif labels[i] is not None and int(labels[i]) != int(preds[i]):  # type: ignore[arg-type]
            out.append((REASON_ERROR, f"wrong with confidence {confidences[i]:.2f}", float(confidences[i])))
        elif id_shares[i] >= IDENTITY_SHARE_MIN:
            out.append((REASON_IDENTITY, f"{id_shares[i]:.0%} of |attribution| on identity terms",
                        float(id_shares[i])))
        else:
            out.append((REASON_SAMPLE, "stratified by predicted class and correctness", float(n - i)))
    return out


def reason_kind(reason: str) -> str:
    """The entry of :data:`REASONS` a row's reason belongs to (an attack's names its recipe)."""
    return REASON_ATTACK if reason.startswith(REASON_ATTACK) else reason


def attack_rows(robustness: Any, *, label_names: Sequence[str], has_pairs: bool) -> list[dict[str, Any]]:
    """The rows whose adversarial attack succeeded, from the robustness auditor's result (its
    ``adversarial_examples``), as the fairness auditor hands rows over: ``text`` (the original
    row, not the perturbed copy), ``label`` (index, when known) and ``source``. Only verified
    attacks that changed the prediction (an input-reduction recipe keeps it: not an attack that
    succeeded in this sense); none for sentence pairs, whose examples are not split back into
    their two texts."""
    examples = robustness.extra.get("adversarial_examples") if robustness is not None else None
    if has_pairs or not isinstance(examples, list):
        return []
    out = []
    for e in examples:
        if not (isinstance(e, dict) and e.get("verified") and isinstance(e.get("original"), str)
                and e.get("before") != e.get("after")):
            continue
        label = e.get("label")
        out.append({"text": e["original"], "source": f"{ATTACK_SOURCE}{e.get('recipe')}",
                    "label": list(label_names).index(label) if label in label_names else None})
    return out


def interleave(*lists: Sequence[Any]) -> list[Any]:
    """One item of each list in turn, so a cap on the total keeps some of every source."""
    out: list[Any] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def curate(reasons: Sequence[str], scores: Sequence[float], *, shown: int = SHOWN_ROWS) -> list[int]:
    """Indices of the rows to show first, at most ``shown``: round-robin over the reasons in
    :data:`REASONS` order, each reason's rows by descending score (ties by position), so every
    distinct reason is covered before any reason is shown twice."""
    queues = [sorted((i for i, r in enumerate(reasons) if reason_kind(r) == reason), key=lambda i: (-scores[i], i))
              for reason in REASONS]
    picked: list[int] = []
    while len(picked) < shown and any(queues):
        for q in queues:
            if q and len(picked) < shown:
                picked.append(q.pop(0))
    return picked


def annotate(explained: list[dict[str, Any]], reasons: Sequence[tuple[str, str, float]], *,
             shown: int = SHOWN_ROWS) -> list[int]:
    """Add ``reason`` and ``reason_detail`` to each heat-map row (in place) and return the
    curated indices (:func:`curate`)."""
    for row, (reason, detail, _) in zip(explained, reasons, strict=True):
        row["reason"] = reason
        row["reason_detail"] = detail
    return curate([r[0] for r in reasons], [r[2] for r in reasons], shown=shown)
