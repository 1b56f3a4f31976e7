"""Reference taggers for the reference-calibrated membership attack on token classifiers (LiRA,
Carlini et al. 2022, "Membership Inference Attacks From First Principles").

The token counterpart of :mod:`audit.auditors.privacy._reference` (whose public functions stay as
they are): given ``reference_models`` (taggers the user trained WITHOUT the members) give the
offline attack (:func:`audit.auditors.privacy._membership.reference_score`); else
``token_reference`` copies of the audited tagger's architecture are re-initialised from its config
and trained here on seeded halves of the attack sample, each scored on every sentence, and a
sentence is calibrated by the references that did not train on it (:func:`out_difference_score`).
Both work on the sentence statistic of :func:`audit.auditors.privacy._token_membership.sentence_phi`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.errors import AuditInputError

if TYPE_CHECKING:
    from audit.auditors.privacy._reference import ReferenceAttack
    from audit.core.context import AuditContext

NO_REFERENCES = ("no reference taggers were given (reference_models) or asked for (token_reference, set to 0)")
# How token_reference trains its online reference taggers: the NER demo's own recipe
# (audit.selftest.ner_demo._train_tagger: AdamW, lr 2e-3, no weight decay, batches of 32, labels on
# each word's first sub-word), so a reference differs from the audited tagger only in the rows it saw.
# Each model's seed is ctx.seed_for("privacy.token_reference.<i>").
TOKEN_REFERENCE_LEARNING_RATE = 2e-3
TOKEN_REFERENCE_WEIGHT_DECAY = 0.0
TOKEN_REFERENCE_BATCH_SIZE = 32
IGNORE_INDEX = -100  # torch's cross-entropy ignores these positions: special tokens, later sub-words


def token_reference_attack(ctx: AuditContext, *, options: Mapping[str, Any], sentences: Sequence[Sequence[str]],
                           gold: Sequence[np.ndarray], phi: np.ndarray) -> ReferenceAttack:
    """The reference-calibrated score of the sentences (``phi`` from the audited tagger, ``gold``
    their tag ids), when reference taggers are given or asked for; else the reason it did not run."""
    from audit.auditors.privacy._membership import MIN_PER_EXAMPLE_REFS, reference_score
    from audit.auditors.privacy._reference import (
        MAX_REFERENCE_PARAMS,
        REFERENCE_LABELS_DIFFER,
        REFERENCE_TOO_LARGE,
        ReferenceAttack,
    )
    from audit.auditors.privacy._token_membership import sentence_phi

    given = list(options["reference_models"])
    k_train = int(options["token_reference"])
    if not given and not k_train:
        return ReferenceAttack(info={"ran": False, "reason": NO_REFERENCES})
    if given:
        from audit.engine.target import Target

        ref_phi = []
        for path in ctx.progress(given, total=len(given), desc="privacy: reference taggers"):
            ref = Target.load(path, device=ctx.target.device, max_length=ctx.target.max_length)
            if ref.label_names != ctx.target.label_names:
                raise AuditInputError(REFERENCE_LABELS_DIFFER.format(path=path, got=ref.label_names,
                                                                     expected=ctx.target.label_names))
            words = ref.predict_words(sentences, aggregation=ctx.config.aggregation, stride=ctx.config.stride)
            ref_phi.append(sentence_phi(probs=words.probs, gold=gold))
        how = ("per-example Gaussian" if len(given) >= MIN_PER_EXAMPLE_REFS
               else "pooled variance (phi minus mean reference phi)")
        return ReferenceAttack(score=reference_score(phi, np.vstack(ref_phi)), info={
            "ran": True, "mode": "offline", "models": len(given), "method": f"offline LiRA on sentences, {how}"})
    params = int(sum(p.numel() for p in ctx.target.model.parameters()))
    if params > MAX_REFERENCE_PARAMS:
        return ReferenceAttack(info={"ran": False,
                                     "reason": REFERENCE_TOO_LARGE.format(params=params, limit=MAX_REFERENCE_PARAMS)})
    ref_phi, masks = [], []
    rng = ctx.rng("privacy.token_reference")
    names = list(ctx.target.label_names)
    for i in ctx.progress(range(k_train), total=k_train, desc="privacy: train reference taggers"):
        mask = np.zeros(len(sentences), dtype=bool)
        mask[rng.choice(len(sentences), size=len(sentences) // 2, replace=False)] = True
        half = np.flatnonzero(mask)
        model = train_reference_tagger(ctx, sentences=[list(sentences[j]) for j in half],
                                       tags=[[names[t] for t in gold[j]] for j in half],
                                       seed=ctx.seed_for(f"privacy.token_reference.{i}"),
                                       epochs=int(options["reference_epochs"]))
        ref_phi.append(sentence_phi(probs=_word_probs(ctx, model, sentences), gold=gold))
        masks.append(mask)
    score = out_difference_score(phi=phi, ref_phi=np.vstack(ref_phi), in_mask=np.vstack(masks))
    return ReferenceAttack(score=score, info={
        "ran": True, "mode": "online", "models": k_train,
        "method": "difference calibration on sentences (Watson et al. 2022; offline LiRA with a pooled variance): "
                  "phi minus the mean phi of the reference taggers that did not train on the sentence; reference "
                  "taggers re-initialised from the audited tagger's config and trained here on seeded halves of "
                  "the attack sample"})


def out_difference_score(*, phi: np.ndarray, ref_phi: np.ndarray, in_mask: np.ndarray) -> np.ndarray:
    """``phi`` minus the mean ``phi`` of the references that did NOT train on the row (Watson et
    al. 2022, "On the Importance of Difficulty Calibration in Membership Inference Attacks"); a row
    every reference trained on takes its "in" mean minus the average in/out gap. With a few small
    references the two-sided Gaussian ratio of online LiRA inverts: a member far above both means
    is less likely under the narrower "in" Gaussian. The one-sided difference keeps the loss
    attack's order and only removes each row's difficulty, which is the cautious choice here."""
    ref = np.asarray(ref_phi, dtype=np.float64)
    mask = np.asarray(in_mask, dtype=bool)

    def mean_where(m: np.ndarray) -> np.ndarray:
        count = m.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, np.where(m, ref, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)

    mu_in, mu_out = mean_where(mask), mean_where(~mask)
    gap = mu_in - mu_out
    shift = float(np.nanmean(gap)) if np.isfinite(gap).any() else 0.0
    mu_out = np.where(np.isfinite(mu_out), mu_out, mu_in - shift)
    return np.asarray(phi, dtype=np.float64) - mu_out


def _word_probs(ctx: AuditContext, model: Any, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """A reference tagger's word probabilities, aligned as the audited tagger's are."""
    from audit.tasks.alignment import predict_words

    t = ctx.target
    out = predict_words(model=model, tokenizer=t.tokenizer, sentences=[list(s) for s in sentences],
                        max_length=t.max_length, stride=ctx.config.stride, aggregation=ctx.config.aggregation,
                        max_tokens=t.max_tokens, max_batch=t.max_batch, device=t.device, dtype="float32",
                        num_threads=t.num_threads, progress=False, desc="reference")
    return list(out.probs)


def train_reference_tagger(ctx: AuditContext, *, sentences: list[list[str]], tags: list[list[str]], seed: int,
                           epochs: int) -> Any:
    """A fresh copy of the audited tagger's architecture, re-initialised from its config and trained
    from scratch on ``sentences`` (the TOKEN_REFERENCE_* recipe above; the label on each word's
    first sub-word, as the token-classification pipeline reads it back). Meaningful for taggers
    themselves trained from scratch; a fine-tuned tagger's reference should be a fine-tuned copy
    of its base model, which the user passes as reference_models."""
    import torch

    tokenizer, device = ctx.target.tokenizer, ctx.target.device
    label2id = {name: i for i, name in enumerate(ctx.target.label_names)}
    torch.manual_seed(seed)
    model = type(ctx.target.model)(ctx.target.model.config)
    model.to(device)
    enc = tokenizer(sentences, is_split_into_words=True, padding=True, truncation=True,
                    max_length=ctx.target.max_length, return_tensors="pt")
    labels = torch.full(enc["input_ids"].shape, IGNORE_INDEX, dtype=torch.long)
    for row, sentence_tags in enumerate(tags):
        previous = None
        for pos, word in enumerate(enc.word_ids(row)):
            if word is not None and word != previous:
                labels[row, pos] = label2id[sentence_tags[word]]
            previous = word
    batch = {k: v.to(device) for k, v in enc.items()}
    labels = labels.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=TOKEN_REFERENCE_LEARNING_RATE,
                            weight_decay=TOKEN_REFERENCE_WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    # The target's thread count (one for a small model on CPU, where more threads only add
    # overhead), as its forward passes use; restored afterwards.
    threads = torch.get_num_threads()
    model.train()
    try:
        if ctx.target.num_threads:
            torch.set_num_threads(ctx.target.num_threads)
        for _ in range(epochs):
            order = torch.randperm(len(sentences), generator=gen)
            for start in range(0, len(sentences), TOKEN_REFERENCE_BATCH_SIZE):
                idx = order[start:start + TOKEN_REFERENCE_BATCH_SIZE].to(device)
                out = model(**{k: v[idx] for k, v in batch.items()}, labels=labels[idx])
                opt.zero_grad()
                out.loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return model
