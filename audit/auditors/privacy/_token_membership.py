"""Membership inference for token classifiers: one score per sentence from its words' losses.

A tagger is trained on sentences, so a sentence is the unit of membership. Each word's prediction
is scored by the text path's attacks (:func:`audit.auditors.privacy._membership.attack_scores`,
Yeom et al. 2018; Salem et al. 2019; Song & Mittal 2021) on the probability of its gold tag, and
the sentence takes their mean; ``loss_min`` adds the sentence's worst word (the minimum of the
per-word log-probabilities of the gold tag), which catches a sentence whose one rare entity was
memorised while its other words are easy for any model. The reference-calibrated attack (LiRA,
Carlini et al. 2022) works on the sentence's mean logit-scaled confidence of the gold tags, with
reference taggers from :mod:`audit.auditors.privacy._token_reference`.

The blind baselines of :mod:`audit.auditors.privacy._blind_baselines` see the sentence's words
joined by spaces and, as its "label", the number of gold entities it holds (capped at
``ENTITY_COUNT_CAP``): what an attacker sees without the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from audit.auditors.privacy._auditor import _Scores
    from audit.core.context import AuditContext

TOKEN_ATTACKS = ("loss", "loss_min", "confidence", "entropy", "modified_entropy")
ENTITY_COUNT_CAP = 3  # a sentence's "label" for the blind baselines: 0, 1, 2 or 3+ gold entities
_EPS = 1e-12
# Appended to the too-few-pairs reason when sentences in both files were left out (they are neither
# members nor non-members): with train data equal to, or inside, the eval data nothing else says why.
OVERLAP_REASON = (" ({train} of the {n_train} training sentences also appear in {source} ({eval} rows there) "
                  "and were left out of both sides)")


def gold_ids(*, tags: Sequence[Sequence[str]], tag_names: Sequence[str]) -> list[np.ndarray]:
    """Each sentence's gold tags as ids in the model's label list (``tag_names``); the token data
    reader has already refused tags the model does not know."""
    index = {name: i for i, name in enumerate(tag_names)}
    return [np.array([index[t] for t in sentence], dtype=int) for sentence in tags]


def sentence_attack_scores(*, probs: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-sentence scores (higher = more likely a member) of every token attack: the mean over
    the sentence's words of the text attacks' per-word scores, and ``loss_min``, the lowest
    per-word log-probability of the gold tag. Sentences must have at least one word."""
    from audit.auditors.privacy._membership import attack_scores

    lengths = np.array([len(p) for p in probs], dtype=int)
    flat = np.log(np.clip(np.concatenate(list(probs)), _EPS, None))  # log-probabilities act as logits
    words = attack_scores(flat, np.concatenate(list(gold)))
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    out = {name: np.add.reduceat(s, starts) / lengths for name, s in words.items()}
    out["loss_min"] = np.minimum.reduceat(words["loss"], starts)
    return {name: out[name] for name in TOKEN_ATTACKS}


def sentence_phi(*, probs: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over a sentence's words of the logit-scaled confidence of the gold tag
    ``log p_y - log(1 - p_y)`` (Carlini et al. 2022), the statistic LiRA calibrates."""
    from audit.auditors.privacy._membership import logit_confidence

    lengths = np.array([len(p) for p in probs], dtype=int)
    flat = np.log(np.clip(np.concatenate(list(probs)), _EPS, None))
    phi = logit_confidence(flat, np.concatenate(list(gold)))
    return np.add.reduceat(phi, np.r_[0, np.cumsum(lengths)[:-1]]) / lengths


def entity_counts(tags: Sequence[Sequence[str]], *, scheme: str) -> np.ndarray:
    """Gold entities per sentence, capped at ``ENTITY_COUNT_CAP``: the blind baselines' label."""
    from audit.tasks.tagging import entity_spans

    return np.array([min(len(entity_spans(t, scheme=scheme)), ENTITY_COUNT_CAP) for t in tags], dtype=int)


def token_membership_scores(ctx: AuditContext, *, options: Mapping[str, Any]) -> _Scores:
    """The attack sample of a token classifier: seeded, balanced members (``ctx.train``) and
    non-members (``ctx.holdout``, else ``ctx.data``), sentences found in both files left out of
    both sides, each attack's per-sentence score, the blind baselines and the reference attack."""
    from audit.auditors.privacy._auditor import MIN_PAIRS, SKIP_NO_MODEL, SKIP_NO_TRAIN, SKIP_TOO_FEW, _Scores
    from audit.auditors.privacy._blind_baselines import blind_features, blind_scores
    from audit.auditors.privacy._token_reference import token_reference_attack

    if ctx.target is None:
        return _Scores(skip=SKIP_NO_MODEL)
    if ctx.train is None or len(ctx.train) == 0:
        return _Scores(skip=SKIP_NO_TRAIN)
    from_holdout = ctx.holdout is not None and len(ctx.holdout) > 0
    train, data = ctx.train, (ctx.holdout if from_holdout else ctx.data)
    train_keys = [tuple(s) for s in train.tokens]
    eval_keys = [tuple(s) for s in data.tokens]
    shared = set(train_keys) & set(eval_keys)
    mem_pool = np.array([i for i, k in enumerate(train_keys) if k and k not in shared], dtype=int)
    non_pool = np.array([i for i, k in enumerate(eval_keys) if k and k not in shared], dtype=int)
    overlap = {"train_rows": sum(k in shared for k in train_keys), "eval_rows": sum(k in shared for k in eval_keys)}
    n = min(int(options["mia_examples"]), len(mem_pool), len(non_pool))
    if n < MIN_PAIRS:
        why = SKIP_TOO_FEW.format(n=n, need=MIN_PAIRS)
        if shared:  # train = eval, or train inside eval: say why the pairs vanished
            why += OVERLAP_REASON.format(train=overlap["train_rows"], n_train=len(train_keys),
                                         eval=overlap["eval_rows"], source=Path(str(data.source)).name)
        return _Scores(skip=why)
    rng = ctx.rng("privacy.membership")
    mem = np.sort(rng.choice(mem_pool, size=n, replace=False))
    non = np.sort(rng.choice(non_pool, size=n, replace=False))
    sentences = [train.tokens[i] for i in mem] + [data.tokens[i] for i in non]
    tags = [train.tags[i] for i in mem] + [data.tags[i] for i in non]
    probs = (list(ctx.predict_words(sentences[:n], desc="privacy: score member sentences").probs)
             + list(ctx.predict_words(sentences[n:], desc="privacy: score non-member sentences").probs))
    gold = gold_ids(tags=tags, tag_names=ctx.target.label_names)
    scores = sentence_attack_scores(probs=probs, gold=gold)
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    labels = entity_counts(tags, scheme=data.scheme)
    features = blind_features(texts=[" ".join(s) for s in sentences], pairs=None, labels=labels,
                              tokenizer=ctx.target.tokenizer)
    blind = blind_scores(features, y, seed=ctx.seed_for("privacy.blind"))
    ref = token_reference_attack(ctx, options=options, sentences=sentences, gold=gold,
                                 phi=sentence_phi(probs=probs, gold=gold))
    if ref.score is not None:
        scores = {**scores, "reference": ref.score}
    return _Scores(y=y, scores=scores, blind=blind, features=features, n=n, members=mem, nonmembers=non,
                   overlap=overlap, labelled=True, reference=dict(ref.info),
                   members_available=len(mem_pool), nonmembers_available=len(non_pool),
                   nonmembers_from="holdout" if from_holdout else "eval",
                   nonmember_source=Path(str(data.source)).name)
