"""Invariance of a token classifier (NER) under label-preserving perturbations, with span
realignment: the robustness auditor's token part for :mod:`._token_perturb`'s families.

A case (one sentence under one perturbation) passes when the entities predicted on the perturbed
sentence are exactly those predicted on the original, mapped through the alignment: none lost,
retyped, re-bounded or added (CheckList's INV test, Ribeiro et al. 2020, on entity sets). The pass
rate per perturbation has a Wilson interval (Wilson 1927). Beside it, the strict entity F1
(seqeval) of the perturbed predictions against the realigned gold tags, next to the clean F1 on
the same sentences, with percentile bootstrap intervals over sentences (the performance auditor's
per-sentence counts, :mod:`audit.auditors.performance._token`) and a paired interval of the drop.

The finding is on the F1 drop, not on the pass rate: a small tagger is unsure of some entities
(the demo's made-up words of a coin-flip type) and any edit tips those, so a pass rate alone
flags a case-robust model as readily as a case-fragile one; the drop of F1 against the gold
tags is what separates them (the control's lower-case F1 moves by a few points, the fragile
model's by most of it). No sentence is dropped: one a perturbation does not apply to is counted
as such, one whose spans cannot be mapped is counted with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.robustness._token_perturb import (
    CASING,
    PERTURBATIONS,
    Alignment,
    SwapPool,
    forward_span,
    spans_to_tags,
)
from audit.core.results import Finding, Metric, SectionPart, Table
from audit.tasks.tagging import Span, entity_spans

if TYPE_CHECKING:
    from audit.core.context import AuditContext

N_BOOTSTRAP = 1000  # resamples of the F1 intervals (sentences), as the performance auditor's default
F1_DROP = ("{kind}: strict entity F1 {clean:.2f} clean, {perturbed:.2f} perturbed, a drop of {drop:.2f} (95% CI "
           "{lo:.2f} to {hi:.2f}; threshold {threshold:.2f}); {rate:.0%} of sentences keep their predicted entities "
           "(95% CI {p_lo:.0%}-{p_hi:.0%}).")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One sentence under one perturbation: the words before and after, the alignment, the spans
    predicted on each (original coordinates, perturbed coordinates), the realigned gold tags, and
    whether it passed; ``unrealigned`` holds the reason when the spans could not be mapped."""

    kind: str
    row: int
    words: tuple[str, ...]
    new_words: tuple[str, ...]
    alignment: Alignment
    pred: tuple[Span, ...]
    new_pred: tuple[Span, ...]
    gold_tags: tuple[str, ...]
    passed: bool
    unrealigned: str = ""


@dataclass(frozen=True, kw_only=True)
class FamilyOutcome:
    """The cases of one perturbation family and the sentences it did not apply to."""

    kind: str
    cases: tuple[Case, ...]
    not_applicable: int


def judge(*, kind: str, row: int, words: Sequence[str], new_words: Sequence[str], alignment: Alignment,
          pred: Sequence[Span], new_pred: Sequence[Span], gold: Sequence[Span], scheme: str) -> Case:
    """One case: the original predicted and gold spans mapped forward through ``alignment`` and
    compared with ``new_pred``. A span that cannot be mapped makes the case unrealigned (not
    passed, not failed: counted apart with the reason)."""
    mapped, reasons = [], []
    for s in [*pred, *gold]:
        out = forward_span(s, alignment)
        (reasons if isinstance(out, str) else mapped).append(out)
    common = {"kind": kind, "row": row, "words": tuple(words), "new_words": tuple(new_words),
              "alignment": tuple(alignment), "pred": tuple(pred), "new_pred": tuple(new_pred)}
    if reasons:
        return Case(**common, gold_tags=(), passed=False, unrealigned=reasons[0])
    fwd_pred, fwd_gold = mapped[:len(pred)], mapped[len(pred):]
    return Case(**common, gold_tags=tuple(spans_to_tags(fwd_gold, length=len(new_words), scheme=scheme)),
                passed=set(fwd_pred) == set(new_pred))


def run_family(ctx: AuditContext, *, kind: str, rows: np.ndarray, pred_tags: Sequence[Sequence[str]],
               pool: SwapPool) -> FamilyOutcome:
    """Perturb the sentences ``rows`` of ``ctx.data`` with one family (seeded by its name), predict
    every perturbed sentence in one batched ``ctx.predict_words`` call and judge each case."""
    data, tag_names = ctx.data, list(ctx.target.label_names)
    rng = ctx.rng(f"robustness.token.{kind}")
    fn = PERTURBATIONS[kind]
    made: list[tuple[int, list[str], Alignment, list[Span], list[Span]]] = []
    skipped = 0
    for row, tags in zip(rows, pred_tags, strict=True):
        gold = entity_spans(data.tags[row], scheme=data.scheme)
        out = fn(data.tokens[row], spans=gold, rng=rng, pool=pool)
        if out is None:
            skipped += 1
            continue
        made.append((int(row), out[0], out[1], entity_spans(list(tags), scheme=data.scheme), gold))
    words = ctx.predict_words([m[1] for m in made], desc=f"robustness {kind}") if made else None
    cases = []
    for j, (row, new, alignment, pred, gold) in enumerate(made):
        new_tags = [tag_names[int(i)] for i in words.preds[j]]
        cases.append(judge(kind=kind, row=row, words=data.tokens[row], new_words=new, alignment=alignment,
                           pred=pred, new_pred=entity_spans(new_tags, scheme=data.scheme), gold=gold,
                           scheme=data.scheme))
    return FamilyOutcome(kind=kind, cases=tuple(cases), not_applicable=skipped)


@dataclass(frozen=True, kw_only=True)
class F1Pair:
    """Strict micro entity F1 clean and perturbed on the same sentences, and the drop (clean minus
    perturbed), each as (value, ci_low, ci_high): percentile intervals over the same resamples of
    the sentences, so the drop's interval is paired."""

    clean: tuple[float, float, float]
    perturbed: tuple[float, float, float]
    drop: tuple[float, float, float]


def f1_pair(*, clean_gold: Sequence[Sequence[str]], clean_pred: Sequence[Sequence[str]],
            gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str, seed: int) -> F1Pair:
    """Entity F1 before and after a perturbation (seqeval's strict formulas, from the performance
    auditor's per-sentence counts) with bootstrap intervals; sentence ``i`` of both sides is the
    same sentence, resampled together."""
    from audit.auditors.performance._token import resample_scores, scores_from_weights, sentence_counts
    from audit.core.stats import percentile_interval

    def spans(tags: Sequence[Sequence[str]]) -> list[list[tuple[str, int, int]]]:
        return [[(s.type, s.start, s.end) for s in entity_spans(list(t), scheme=scheme)] for t in tags]

    nan = (float("nan"),) * 3
    if not len(gold):
        return F1Pair(clean=nan, perturbed=nan, drop=nan)
    values, points = [], []
    for g, p in ((clean_gold, clean_pred), (gold, pred)):
        counts = sentence_counts(spans(g), spans(p))
        if counts.shape[2] == 0:  # no entity on either side: F1 undefined
            return F1Pair(clean=nan, perturbed=nan, drop=nan)
        points.append(float(scores_from_weights(counts, np.ones((1, len(g))))[0, 2]))
        values.append(resample_scores(counts, n_bootstrap=N_BOOTSTRAP, seed=seed)[:, 2])
    clean, perturbed = ((points[i], *percentile_interval(values[i])) for i in range(2))
    return F1Pair(clean=clean, perturbed=perturbed,
                  drop=(points[0] - points[1], *percentile_interval(values[0] - values[1])))


def f1_finding(*, kind: str, f1: F1Pair, passed: int, cases: int, threshold: float, what: str) -> Finding | None:
    """A finding when the entity F1 drops by more than ``threshold`` (fail when even the lower
    bound of the drop's interval does), with the pass rate and its Wilson interval as evidence."""
    from audit.auditors.robustness._invariance import wilson_interval

    drop, lo, hi = f1.drop
    if not cases or not drop > threshold:
        return None
    rate = passed / cases
    p_lo, p_hi = wilson_interval(passed, cases)
    return Finding(
        "fail" if lo > threshold else "warn", f"{kind}: entity F1 drops by {drop:.2f} under {what}",
        detail=(F1_DROP.format(kind=kind, clean=f1.clean[0], perturbed=f1.perturbed[0], drop=drop, lo=lo, hi=hi,
                               threshold=threshold, rate=rate, p_lo=p_lo, p_hi=p_hi)
                + (" Casing: the model relies on capital letters to find entities." if kind in CASING else "")),
        evidence={"perturbation": kind, "passed": passed, "cases": cases, "pass_rate": rate, "ci_low": p_lo,
                  "ci_high": p_hi, "clean_f1": f1.clean[0], "perturbed_f1": f1.perturbed[0], "f1_drop": drop,
                  "f1_drop_ci_low": lo, "f1_drop_ci_high": hi})


def token_invariance(ctx: AuditContext, *, rows: np.ndarray, kinds: Sequence[str], pool: SwapPool,
                     max_f1_drop: float, examples_shown: int) -> SectionPart:
    """Every family in ``kinds`` on the sentences ``rows``: the pass-rate table and metrics, F1
    under perturbation against clean, a finding where F1 drops by more than ``max_f1_drop``, and
    examples of failures."""
    import pandas as pd

    from audit.auditors.robustness._invariance import wilson_interval

    data, tag_names = ctx.data, list(ctx.target.label_names)
    base = ctx.word_predictions
    pred_tags = [[tag_names[int(i)] for i in base.preds[r]] for r in rows]
    at = {int(r): j for j, r in enumerate(rows)}
    metrics, findings, summary, examples = [], [], [], []
    outcomes = {}
    for kind in kinds:
        out = run_family(ctx, kind=kind, rows=rows, pred_tags=pred_tags, pool=pool)
        outcomes[kind] = out
        judged = [c for c in out.cases if not c.unrealigned]
        n, k = len(judged), sum(c.passed for c in judged)
        why = Counter(c.unrealigned for c in out.cases if c.unrealigned)
        lo, hi = wilson_interval(k, n) if n else (float("nan"), float("nan"))
        rate = k / n if n else float("nan")
        f1 = f1_pair(clean_gold=[data.tags[c.row] for c in judged], clean_pred=[pred_tags[at[c.row]] for c in judged],
                     gold=[c.gold_tags for c in judged], pred=[_tags(c.new_pred, c, data.scheme) for c in judged],
                     scheme=data.scheme, seed=ctx.seed_for(f"robustness.token.f1.{kind}"))
        if n:
            metrics += [
                Metric("token_invariance_pass_rate", rate, lo, hi, higher_is_better=True, slice=kind,
                       description="share of sentences whose predicted entities (type and realigned span) stay the "
                                   "same under the perturbation (CheckList INV); Wilson 95% interval"),
                Metric("token_perturbed_entity_f1", *f1.perturbed, higher_is_better=True, slice=kind,
                       description="strict entity micro F1 (seqeval) of the perturbed predictions against the "
                                   "realigned gold tags; bootstrap over sentences"),
                Metric("token_clean_entity_f1", *f1.clean, higher_is_better=True, slice=kind,
                       description="strict entity micro F1 on the same sentences unperturbed"),
                Metric("token_entity_f1_drop", *f1.drop, higher_is_better=False, slice=kind,
                       description="clean entity F1 minus F1 under the perturbation; paired bootstrap over sentences"),
            ]
        metrics.append(Metric("token_unrealigned", float(sum(why.values())), higher_is_better=False, slice=kind,
                              description="perturbed sentences whose entity spans could not be mapped back "
                                          "(counted, never dropped)"))
        summary.append([kind, len(rows), out.not_applicable, sum(why.values()), n, k, rate, lo, hi,
                        f1.clean[0], f1.perturbed[0], f1.drop[0],
                        "; ".join(f"{r}: {c}" for r, c in sorted(why.items()))])
        found = f1_finding(kind=kind, f1=f1, passed=k, cases=n, threshold=max_f1_drop, what="the perturbation")
        findings += [found] if found else []
        examples += [_example(c) for c in out.cases if not c.passed and not c.unrealigned][:examples_shown]
    table = Table.from_frame("token_invariance", pd.DataFrame(summary, columns=[
        "perturbation", "sentences", "not_applicable", "unrealigned", "cases", "passed", "pass_rate", "ci_low",
        "ci_high", "clean_f1", "perturbed_f1", "f1_drop", "unrealigned_why"]),
        title="Invariance of the predicted entities under label-preserving perturbations (spans realigned)",
        shown=("perturbation", "cases", "pass_rate", "ci_low", "ci_high", "clean_f1", "perturbed_f1", "f1_drop",
               "not_applicable", "unrealigned"))
    return SectionPart(metrics=metrics, tables=[table], findings=findings,
                       extra={"token_examples": examples, "token_task": True})


def _tags(spans: Sequence[Span], case: Case, scheme: str) -> list[str]:
    return spans_to_tags(spans, length=len(case.new_words), scheme=scheme)


def _example(case: Case) -> dict[str, Any]:
    """A failed case for the report: both sentences with their predicted spans (the template
    escapes the words and marks the spans)."""
    def spans(items: Sequence[Span]) -> list[Mapping[str, Any]]:
        return [{"start": s.start, "end": s.end, "type": s.type} for s in sorted(items, key=lambda s: s.start)]

    return {"perturbation": case.kind, "row": case.row, "words": list(case.words), "pred": spans(case.pred),
            "new_words": list(case.new_words), "new_pred": spans(case.new_pred)}
