"""Reference models for the reference-calibrated membership attack (LiRA, Carlini et al. 2022,
"Membership Inference Attacks From First Principles").

Offline: model folders the user trained WITHOUT the members (``reference_models``), loaded
through :class:`~audit.engine.target.Target` and checked to have the audited model's labels.
Online: ``train_reference`` copies of the audited architecture, re-initialised and trained here
on seeded halves of the attack sample, so each row is "in" some references and "out" of others.
The score itself is :func:`audit.auditors.privacy._membership.reference_score`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.errors import AuditInputError

if TYPE_CHECKING:
    from audit.core.context import AuditContext

REFERENCE_LABELS_DIFFER = "reference model {path}: labels {got} differ from the audited model's {expected}"
REFERENCE_TOO_LARGE = ("train_reference: the model has {params:,} parameters (limit {limit:,}); re-initialising and "
                       "training it is not cheap. For a fine-tuned model, fine-tune copies of its base model on "
                       "random halves of your data yourself and pass them as reference_models")
MAX_REFERENCE_PARAMS = 20_000_000
# How train_reference trains its online LiRA reference models (Carlini et al. 2022): the recipe the
# demo's own model is trained with (audit.selftest.demo.train_classifier: AdamW, lr 1e-3, no weight
# decay, batches of 32), so a reference differs from the audited model only in the rows it saw.
# Each model's seed is ctx.seed_for("privacy.train_reference.<i>").
REFERENCE_LEARNING_RATE = 1e-3
REFERENCE_WEIGHT_DECAY = 0.0
REFERENCE_BATCH_SIZE = 32


@dataclass(frozen=True, kw_only=True, eq=False)
class ReferenceAttack:
    """What the reference-calibrated attack did (``info``, for results.json: ran, mode, models,
    method, or the reason it did not run) and its score per row of the sample, when it ran."""

    info: Mapping[str, Any] = field(default_factory=dict)
    score: np.ndarray | None = None


def reference_attack(ctx: AuditContext, *, options: Mapping[str, Any], texts: list[str], pairs: list[str] | None,
                     logits: np.ndarray, labels: np.ndarray | None) -> ReferenceAttack:
    """The reference-calibrated score of the attack sample (``logits`` from the audited model),
    when reference models are given or asked to be trained; else the reason it did not run."""
    from audit.auditors.privacy._membership import MIN_PER_EXAMPLE_REFS, logit_confidence, reference_score

    given = list(options["reference_models"])
    k_train = int(options["train_reference"])
    if not given and not k_train:
        return ReferenceAttack(info={"ran": False, "reason": "no reference models were given (reference_models) or "
                                                             "asked for (train_reference)"})
    if labels is None:
        return ReferenceAttack(info={"ran": False, "reason": "the reference-calibrated attack needs labels on members "
                                                             "and non-members"})
    phi = logit_confidence(logits, labels)
    if given:
        from audit.engine.target import Target

        ref_phi = []
        for path in ctx.progress(given, total=len(given), desc="privacy: reference models"):
            ref = Target.load(path, device=ctx.target.device, max_length=ctx.target.max_length)
            if ref.label_names != ctx.target.label_names:
                raise AuditInputError(REFERENCE_LABELS_DIFFER.format(path=path, got=ref.label_names,
                                                                     expected=ctx.target.label_names))
            ref_logits = ref.predict_logits(texts, pairs, progress=ctx.progress_enabled, desc="privacy: reference")
            ref_phi.append(logit_confidence(ref_logits, labels))
        how = ("per-example Gaussian" if len(given) >= MIN_PER_EXAMPLE_REFS
               else "pooled variance (phi minus mean reference phi)")
        return ReferenceAttack(score=reference_score(phi, np.vstack(ref_phi)), info={
            "ran": True, "mode": "offline", "models": len(given), "method": f"offline LiRA, {how}"})
    params = sum(p.numel() for p in ctx.target.model.parameters())
    if params > MAX_REFERENCE_PARAMS:
        return ReferenceAttack(info={"ran": False,
                                     "reason": REFERENCE_TOO_LARGE.format(params=params, limit=MAX_REFERENCE_PARAMS)})
    rng = ctx.rng("privacy.train_reference")
    masks = []
    for _ in range(k_train):  # drawn first, in order: the same halves whichever engine trains them
        mask = np.zeros(len(texts), dtype=bool)
        mask[rng.choice(len(texts), size=len(texts) // 2, replace=False)] = True
        masks.append(mask)
    jobs = [{"texts": [t for t, m in zip(texts, mask, strict=True) if m],
             "pairs": None if pairs is None else [p for p, m in zip(pairs, mask, strict=True) if m],
             "labels": labels[mask], "seed": ctx.seed_for(f"privacy.train_reference.{i}")}
            for i, mask in enumerate(masks)]
    target = ctx.target
    common = {"model_class": type(target.model), "model_config": target.model.config, "tokenizer": target.tokenizer,
              "device": target.device, "max_length": target.max_length, "max_tokens": target.max_tokens,
              "max_batch": target.max_batch, "epochs": int(options["reference_epochs"]), "score_texts": texts,
              "score_pairs": pairs}
    ref_phi = [logit_confidence(ref_logits, labels) for ref_logits in _map_training(ctx, jobs, common)]
    return ReferenceAttack(score=reference_score(phi, np.vstack(ref_phi), np.vstack(masks)), info={
        "ran": True, "mode": "online", "models": k_train,
        "method": "online LiRA: Gaussian likelihood ratio of in/out reference models, pooled variances; "
                  "reference models re-initialised from the audited model's config and trained here on "
                  "seeded halves of the attack sample"})


def _map_training(ctx: AuditContext, jobs: list[dict[str, Any]], common: dict[str, Any]) -> list[np.ndarray]:
    """Each reference model trained and scored (:func:`_fit_and_score`): one Ray task per model,
    in parallel, when the audit runs on the Ray engine (the hook of issue 17), else one after the
    other here. Same seeds, same halves, same torch thread count: the same logits either way."""
    engine = getattr(ctx.target, "engine", None)
    if engine is not None:
        import torch

        return engine.map_tasks(_fit_and_score, jobs, common=common, threads=torch.get_num_threads())
    return [_fit_and_score(**common, **job)
            for job in ctx.progress(jobs, total=len(jobs), desc="privacy: train reference models")]


def _fit_and_score(*, model_class: Any, model_config: Any, tokenizer: Any, device: str, max_length: int,
                   max_tokens: int, max_batch: int, epochs: int, score_texts: list[str], score_pairs: list[str] | None,
                   texts: list[str], pairs: list[str] | None, labels: np.ndarray, seed: int) -> np.ndarray:
    """One online reference model: trained on ``texts`` (:func:`_train_reference_model`), then its
    logits on the whole attack sample. Needs no AuditContext, so it can run in a Ray worker."""
    from audit.engine.inference import predict_logits

    model = _train_reference_model(model_class=model_class, model_config=model_config, tokenizer=tokenizer,
                                   device=device, max_length=max_length, texts=texts, pairs=pairs, labels=labels,
                                   seed=seed, epochs=epochs)
    logits, _ = predict_logits(model, tokenizer, score_texts, score_pairs, max_length=max_length,
                               max_tokens=max_tokens, max_batch=max_batch, device=device, dtype="float32",
                               progress=False, desc="reference")
    return np.asarray(logits, dtype=np.float64)


def _train_reference_model(*, model_class: Any, model_config: Any, tokenizer: Any, device: str, max_length: int,
                           texts: list[str], pairs: list[str] | None, labels: np.ndarray, seed: int,
                           epochs: int) -> Any:
    """A fresh copy of the audited architecture, re-initialised from its config and trained from
    scratch on ``texts`` (the REFERENCE_* recipe above). Meaningful only for models that were
    themselves trained from scratch; for a fine-tuned model the reference should be a fine-tuned
    copy of its base model, which this does not do."""
    import torch

    torch.manual_seed(seed)
    model = model_class(model_config)
    model.to(device)
    enc = tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    enc = {k: v.to(device) for k, v in enc.items()}
    y = torch.tensor(np.asarray(labels), dtype=torch.long, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=REFERENCE_LEARNING_RATE, weight_decay=REFERENCE_WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=gen)
        for start in range(0, len(texts), REFERENCE_BATCH_SIZE):
            idx = order[start:start + REFERENCE_BATCH_SIZE].to(device)
            out = model(**{k: v[idx] for k, v in enc.items()}, labels=y[idx])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval()
    return model
