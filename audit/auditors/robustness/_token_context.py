"""Context-level attack on a token classifier (NER), after RockNER (Lin et al. 2021, "RockNER: A
Simple Method to Create Adversarial Examples for Evaluating the Robustness of Named Entity
Recognition Models"): words outside every gold entity are replaced by WordNet synonyms
(TextAttack's ``WordSwapWordNet``, stop words kept by its ``StopwordModification`` list), up to a
word budget per sentence, and the entity F1 on the realigned gold tags is compared with the clean
F1 on the same sentences.

Every reported failure is re-verified: the perturbed sentence is predicted again by the model
alone (a fresh forward pass through :func:`audit.tasks.alignment.predict_words`, not the shared
cache) and each sentence whose fresh tags differ from the ones the audit used is counted as a
disagreement (a stale or corrupted cache, a non-deterministic model): any makes the numbers
untrustworthy and fails the section, as unverified adversarial successes do for text classifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.robustness._token_invariance import Case, f1_finding, f1_pair, judge
from audit.core.results import Finding, Metric, SectionPart, Table
from audit.tasks.tagging import OUTSIDE, entity_spans

if TYPE_CHECKING:
    from audit.core.context import AuditContext

KIND = "context_wordnet"
DISAGREEMENTS = ("{n} of {k} failures of the context attack predict differently when re-run by the model alone "
                 "(outside the cache): the attack's numbers cannot be trusted")
NO_WORDNET = "Context attack skipped: {why}"


@dataclass(frozen=True, kw_only=True)
class ContextOutcome:
    """The attack's part of the section and the disagreements found by re-verification (they
    fail the section)."""

    part: SectionPart
    disagreements: int = 0


def substitute(words: Sequence[str], tags: Sequence[str], *, budget: int, rng: np.random.Generator,
               synonyms: Callable[[str], list[str]], stopwords: frozenset[str]
               ) -> tuple[list[str], tuple[int, ...]] | None:
    """Up to ``budget`` words outside the gold entities (alphabetic, not stop words, with a
    synonym) replaced by a synonym each, drawn from the sorted synonyms; a capitalised word keeps
    its capital. None when no word qualifies. One word for one word, so the alignment is the
    identity."""
    options = {}
    for i, (w, t) in enumerate(zip(words, tags, strict=True)):
        if t == OUTSIDE and w.isalpha() and w.lower() not in stopwords:
            found = sorted({s for s in synonyms(w.lower()) if s.isalpha() and s.lower() != w.lower()})
            if found:
                options[i] = found
    if not options:
        return None
    picked = sorted(rng.choice(sorted(options), size=min(budget, len(options)), replace=False).tolist())
    new = list(words)
    for i in picked:
        s = options[i][int(rng.integers(len(options[i])))]
        new[i] = s[:1].upper() + s[1:] if words[i][:1].isupper() else s
    return new, tuple(range(len(words)))


def reverify(target: Any, sentences: Sequence[Sequence[str]], used: Sequence[np.ndarray], *, aggregation: str,
             stride: int | None) -> np.ndarray:
    """Per sentence, whether the model alone (a fresh pass, no cache) predicts other tags than
    ``used``, the tag ids the audit worked with."""
    from audit.tasks.alignment import predict_words

    if not len(sentences):
        return np.zeros(0, dtype=bool)
    fresh = predict_words(model=target.model, tokenizer=target.tokenizer, sentences=[list(s) for s in sentences],
                          max_length=target.max_length, stride=stride, aggregation=aggregation,
                          max_tokens=target.max_tokens, max_batch=target.max_batch, device=target.device,
                          dtype=target.dtype, num_threads=target.num_threads)
    return np.array([not np.array_equal(f, np.asarray(u)) for f, u in zip(fresh.preds, used, strict=True)], dtype=bool)


def context_attack(ctx: AuditContext, *, rows: np.ndarray, budget: int, synonyms: Callable[[str], list[str]],
                   stopwords: frozenset[str], max_f1_drop: float) -> ContextOutcome:
    """The attack on the sentences ``rows``: one batched prediction of every attacked sentence,
    each judged as an invariance case, F1 under attack against clean, failures re-verified."""
    import pandas as pd

    from audit.auditors.robustness._invariance import wilson_interval

    data, tag_names = ctx.data, list(ctx.target.label_names)
    base = ctx.word_predictions
    rng = ctx.rng("robustness.token.context")
    made = []
    for row in rows:
        out = substitute(data.tokens[row], data.tags[row], budget=budget, rng=rng, synonyms=synonyms,
                         stopwords=stopwords)
        if out is not None:
            made.append((int(row), *out))
    if not made:
        return ContextOutcome(part=SectionPart(findings=[Finding(
            "info", "Context attack: no sentence has a word outside its entities with a WordNet synonym")]))
    words = ctx.predict_words([m[1] for m in made], desc="robustness context attack")
    cases: list[Case] = []
    for j, (row, new, alignment) in enumerate(made):
        pred = entity_spans([tag_names[int(i)] for i in base.preds[row]], scheme=data.scheme)
        new_tags = [tag_names[int(i)] for i in words.preds[j]]
        cases.append(judge(kind=KIND, row=row, words=data.tokens[row], new_words=new, alignment=alignment, pred=pred,
                           new_pred=entity_spans(new_tags, scheme=data.scheme),
                           gold=entity_spans(data.tags[row], scheme=data.scheme), scheme=data.scheme))
    failed = [j for j, c in enumerate(cases) if not c.passed and not c.unrealigned]
    disagree = reverify(ctx.target, [made[j][1] for j in failed], [words.preds[j] for j in failed],
                        aggregation=ctx.config.aggregation, stride=ctx.config.stride)
    n_dis = int(disagree.sum())
    judged = [j for j, c in enumerate(cases) if not c.unrealigned]
    n, k = len(judged), sum(cases[j].passed for j in judged)
    if not n:  # identity alignment: cannot happen, but never divide by it
        return ContextOutcome(part=SectionPart(findings=[Finding("info", "Context attack: no case could be judged")]))
    lo, hi = wilson_interval(k, n)
    f1 = f1_pair(clean_gold=[data.tags[cases[j].row] for j in judged],
                 clean_pred=[[tag_names[int(i)] for i in base.preds[cases[j].row]] for j in judged],
                 gold=[cases[j].gold_tags for j in judged],
                 pred=[[tag_names[int(i)] for i in words.preds[j]] for j in judged],
                 scheme=data.scheme, seed=ctx.seed_for("robustness.token.context.f1"))
    metrics = [
        Metric("context_attack_pass_rate", k / n, lo, hi, higher_is_better=True, slice=KIND,
               description="share of attacked sentences whose predicted entities stay the same; Wilson 95% interval"),
        Metric("context_attack_entity_f1", *f1.perturbed, higher_is_better=True, slice=KIND,
               description="strict entity micro F1 after WordNet context substitutions (RockNER-style), realigned "
                           "gold; bootstrap over sentences"),
        Metric("context_attack_f1_drop", *f1.drop, higher_is_better=False, slice=KIND,
               description="clean entity F1 on the same sentences minus F1 under the context attack; paired bootstrap"),
        Metric("context_attack_disagreements", float(n_dis), higher_is_better=False, slice=KIND,
               description="failures whose fresh forward pass (outside the cache) predicts other tags"),
    ]
    findings = []
    if n_dis:
        findings.append(Finding("fail", "Context attack: failures that do not reproduce",
                                detail=DISAGREEMENTS.format(n=n_dis, k=len(failed)),
                                evidence={"disagreements": n_dis, "failures": len(failed)}))
    found = f1_finding(kind=KIND, f1=f1, passed=k, cases=n, threshold=max_f1_drop,
                       what=f"WordNet substitutions of up to {budget} context word(s)")
    findings += [found] if found else []
    table = Table.from_frame("token_context_attack", pd.DataFrame(
        [[KIND, len(rows), len(rows) - len(made), len(cases) - n, n, k, k / n, lo, hi, f1.clean[0],
          f1.perturbed[0], f1.drop[0], len(failed), n_dis]],
        columns=["attack", "sentences", "not_applicable", "unrealigned", "cases", "passed", "pass_rate", "ci_low",
                 "ci_high", "clean_f1", "attacked_f1", "f1_drop", "failures_reverified", "disagreements"]),
        title=f"Context attack (RockNER-style WordNet substitutions, up to {budget} word(s) per sentence)")
    return ContextOutcome(part=SectionPart(metrics=metrics, tables=[table], findings=findings), disagreements=n_dis)


def wordnet_synonyms() -> tuple[Callable[[str], list[str]] | None, frozenset[str], str]:
    """TextAttack's WordNet synonyms and stop words, after the offline NLTK set-up of
    :func:`audit.auditors.robustness._attacks.import_textattack`; ``(None, stopwords, why)`` when
    WordNet cannot be found."""
    import warnings

    from audit.auditors.robustness._attacks import OMW_WARNING, import_textattack, no_nltk_downloads
    from audit.auditors.robustness._wordnet import quick_wordnet

    ta, resources = import_textattack(need_wordnet=True)
    stop = frozenset(ta.constraints.pre_transformation.StopwordModification().stopwords)
    if not resources.has_wordnet:
        return None, stop, next((p for p in resources.problems if "WordNet" in p), "WordNet is not available")
    with no_nltk_downloads(), quick_wordnet(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=OMW_WARNING)
        swap = ta.transformations.WordSwapWordNet()

    def synonyms(word: str) -> list[str]:
        with no_nltk_downloads(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=OMW_WARNING)
            return list(swap._get_replacement_words(word))

    return synonyms, stop, ""
