"""Token attributions through Captum, batched, and merged from word pieces back into words.

Every method runs on any Hugging Face sequence classifier: the embedding layer is found with
``model.get_input_embeddings()``, and ``attention_mask`` (and ``token_type_ids`` where the model
takes them) are passed through. Rows are sorted by length and attributed several at a time,
each batch padded only to its own longest row (padding is masked, so a padded row's
attributions equal the row's own up to float rounding); Integrated Gradients also puts many
interpolation steps into one forward pass (Captum's ``internal_batch_size``).

What is explained is a score of the target class chosen by ``output``: ``log_odds`` (default,
the target logit minus the log-sum-exp of the others; it does not saturate the way a softmax
probability does, so the completeness delta of Integrated Gradients stays small), ``log_prob``
or ``prob``.

Methods and papers:

* ``integrated_gradients``: Layer Integrated Gradients on the word embeddings (Sundararajan et
  al. 2017, "Axiomatic Attribution for Deep Networks"); baseline = [PAD] for every token but
  the special ones ([CLS]/[SEP] kept); reports the convergence (completeness) delta.
* ``saliency``: the L2 norm over the hidden size of the gradient at the embeddings (Simonyan
  et al. 2014); unsigned.
* ``input_x_gradient``: embedding x gradient summed over the hidden size (Shrikumar et al. 2016).
* ``occlusion``: each word replaced by [PAD], the drop of the score (Zeiler & Fergus 2014;
  what Captum's FeatureAblation with one feature per word computes, run through the shared
  engine's length-sorted token-budget batches: :func:`._occlusion.occlusion`).
* ``lime``: Captum LIME over words (Ribeiro et al. 2016), LIME's text kernel (cosine distance,
  width 25) and a Lasso surrogate.
* ``kernel_shap``: Captum Kernel SHAP over words (Lundberg & Lee 2017).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "occlusion", "lime", "kernel_shap")
OUTPUTS = ("log_odds", "log_prob", "prob")
# Methods whose features are whole words (a word's pieces share one value) rather than tokens.
WORD_FEATURE_METHODS = frozenset({"occlusion", "lime", "kernel_shap"})


@dataclass
class EncodedRow:
    """One text tokenised once, with the map from tokens to words of the first segment."""

    text: str
    pair: str | None
    input_ids: list[int]
    token_type_ids: list[int] | None
    special: list[bool]
    word_of_token: list[int]  # word index per token, -1 for special tokens and the pair segment
    words: list[str]  # word text as written in ``text``
    spans: list[tuple[int, int]]  # character span of each word in ``text``

    @property
    def n_words(self) -> int:
        return len(self.words)


def encode_rows(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str | None] | None = None, *,
                max_length: int) -> list[EncodedRow]:
    """Tokenise rows once, keeping for each token the word (of the first segment) it belongs to.

    With a fast tokenizer words come from ``word_ids()`` and their text from the offsets; a slow
    tokenizer falls back to one word per token.
    """
    texts = list(texts)
    has_pairs = pairs is not None and any(p is not None for p in pairs)
    kwargs: dict[str, Any] = {"truncation": True, "max_length": max_length, "padding": False,
                              "return_special_tokens_mask": True}
    fast = bool(getattr(tokenizer, "is_fast", False))
    if fast:
        kwargs["return_offsets_mapping"] = True
    if has_pairs:
        enc = tokenizer(texts, [p or "" for p in pairs], **kwargs)  # type: ignore[union-attr]
    else:
        enc = tokenizer(texts, **kwargs)
    rows = []
    for i, text in enumerate(texts):
        ids = list(enc["input_ids"][i])
        special = [bool(s) for s in enc["special_tokens_mask"][i]]
        tt = list(enc["token_type_ids"][i]) if "token_type_ids" in enc else None
        word_of_token = [-1] * len(ids)
        words: list[str] = []
        spans: list[tuple[int, int]] = []
        if fast:
            word_ids = enc.word_ids(i)
            seq_ids = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            index: dict[int, int] = {}
            for t, (w, s) in enumerate(zip(word_ids, seq_ids, strict=True)):
                if w is None or s != 0 or special[t]:
                    continue
                if w not in index:
                    index[w] = len(words)
                    words.append("")
                    spans.append((int(offsets[t][0]), int(offsets[t][1])))
                k = index[w]
                start, end = spans[k]
                spans[k] = (min(start, int(offsets[t][0])), max(end, int(offsets[t][1])))
                word_of_token[t] = k
            words = [text[a:b] for a, b in spans]
        else:
            for t, tok_id in enumerate(ids):
                if special[t] or (tt is not None and tt[t] != 0):
                    continue
                word_of_token[t] = len(words)
                words.append(tokenizer.convert_ids_to_tokens(tok_id))
                spans.append((-1, -1))
        rows.append(EncodedRow(text=text, pair=pairs[i] if has_pairs else None, input_ids=ids,  # type: ignore[index]
                               token_type_ids=tt, special=special, word_of_token=word_of_token,
                               words=words, spans=spans))
    return rows


def merge_words(token_scores: np.ndarray, row: EncodedRow, *, how: str = "sum") -> np.ndarray:
    """Word scores from token scores: the sum over a word's pieces (keeps completeness), or the
    first piece's value for methods whose features already are words."""
    out = np.zeros(row.n_words, dtype=np.float64)
    seen = np.zeros(row.n_words, dtype=bool)
    for t, w in enumerate(row.word_of_token):
        if w < 0 or t >= len(token_scores):
            continue
        if how == "sum":
            out[w] += float(token_scores[t])
        elif not seen[w]:
            out[w] = float(token_scores[t])
        seen[w] = True
    return out


def score_function(model: Any, *, output: str, multi_label: bool, takes_token_types: bool,
                   embeds: bool = False) -> Callable[..., Any]:
    """Captum's ``forward_func``: ids (or embeddings), attention mask, token types -> (B, C)."""

    def forward(x: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
        kwargs = {"inputs_embeds" if embeds else "input_ids": x, "attention_mask": attention_mask}
        if takes_token_types and token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return explained_score(model(**kwargs).logits.float(), output=output, multi_label=multi_label)

    return forward


def explained_score(z: Any, *, output: str, multi_label: bool) -> Any:
    """The explained score of every class from logits ``z`` (B, C), as a torch tensor."""
    import torch

    if multi_label:
        return {"log_odds": z, "log_prob": torch.nn.functional.logsigmoid(z), "prob": torch.sigmoid(z)}[output]
    if output == "prob":
        return torch.softmax(z, dim=-1)
    if output == "log_prob":
        return torch.log_softmax(z, dim=-1)
    # log odds of class c against all others: z_c - logsumexp_{j != c} z_j
    c = z.shape[-1]
    others = z.unsqueeze(1).expand(-1, c, -1).masked_fill(
        torch.eye(c, dtype=torch.bool, device=z.device).unsqueeze(0), float("-inf"))
    return z - torch.logsumexp(others, dim=-1)


def takes_token_type_ids(model: Any) -> bool:
    try:
        return "token_type_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic wrappers
        return False


@contextlib.contextmanager
def attribution_mode(model: Any) -> Iterator[None]:
    """Eval mode, and no gradients kept for the weights (Captum only needs input gradients);
    the model's training flag and each parameter's ``requires_grad`` are restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@dataclass
class AttributionRun:
    """Token scores per row (unpadded) and, for Integrated Gradients, the convergence delta."""

    tokens: list[np.ndarray]
    deltas: np.ndarray | None = None


# Padded tokens a batch may hold beyond its real ones (0.25: at most 25% more): a row that would
# push a batch past this starts the next one. Rows are sorted longest first, so a batch is as wide
# as its first row; without the cap ten sanity rows of 8 to 40 tokens made one batch, half padding.
PAD_SLACK = 0.25


def plan_batches(lengths: Sequence[int], *, max_rows: int, slack: float = PAD_SLACK) -> list[list[int]]:
    """Row indices per batch: sorted by length (longest first), at most ``max_rows`` each, and
    at most ``slack`` times more padded than real tokens (a lone row always fits)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    real = 0
    for i in order:
        n = max(int(lengths[i]), 1)
        if batches and len(batches[-1]) < max_rows:
            width = max(int(lengths[batches[-1][0]]), 1)
            if width * (len(batches[-1]) + 1) <= (1.0 + slack) * (real + n):
                batches[-1].append(i)
                real += n
                continue
        batches.append([i])
        real = n
    return batches


def _collate(rows: Sequence[EncodedRow], pad_id: int, device: str) -> tuple[Any, Any, Any, Any]:
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    tt = torch.zeros((len(rows), width), dtype=torch.long)
    keep = torch.ones((len(rows), width), dtype=torch.bool)  # tokens the baseline keeps
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        mask[i, :n] = 1
        if r.token_type_ids is not None:
            tt[i, :n] = torch.tensor(r.token_type_ids)
        keep[i, :n] = torch.tensor(r.special, dtype=torch.bool)
        if r.pair is not None:  # the pair segment is context, not explained: kept in the baseline
            keep[i, :n] |= torch.tensor([w < 0 for w in r.word_of_token])
    return ids.to(device), mask.to(device), tt.to(device), keep.to(device)


def _word_feature_mask(rows: Sequence[EncodedRow], width: int, device: str) -> Any:
    """One feature id per word; special tokens, the pair segment and padding share the last id."""
    import torch

    n_feat = max(r.n_words for r in rows)
    fm = torch.full((len(rows), width), n_feat, dtype=torch.long)
    for i, r in enumerate(rows):
        for t, w in enumerate(r.word_of_token):
            if w >= 0:
                fm[i, t] = w
    return fm.to(device)


def _lime_text_similarity(original: Any, perturbed: Any, interpretable: Any, **_: Any) -> float:
    """LIME's text kernel: exp(-d^2 / 25^2) with d = 100 x cosine distance between the
    all-words-present vector and the sample (Ribeiro et al. 2016, the lime package's default)."""
    import torch

    z = interpretable.float().flatten()
    n = z.numel()
    kept = float(z.sum())
    cos = kept / (np.sqrt(n) * np.sqrt(kept)) if kept > 0 else 0.0
    d = (1.0 - cos) * 100.0
    return float(torch.exp(torch.tensor(-(d**2) / 25.0**2)))


def attribute(model: Any, rows: Sequence[EncodedRow], targets: Sequence[int], *, method: str, pad_id: int,
              device: str = "cpu", output: str = "log_odds", multi_label: bool = False, n_steps: int = 50,
              n_samples: int = 200, max_rows: int = 16, max_tokens: int = 8192, seed: int = 0,
              progress: Callable[..., Any] | None = None, convergence_delta: bool = True) -> AttributionRun:
    """Attributions of ``method`` for each row toward its target class.

    Gradient methods run ``max_rows`` rows per Captum call; ``max_tokens`` bounds the padded
    tokens of one forward pass (interpolation steps x rows x width for Integrated Gradients).
    ``convergence_delta=False`` skips the two extra forward passes of IG's completeness delta
    (the sanity check compares ranks only); ``deltas`` is then all NaN.
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; expected one of {', '.join(METHODS)}")
    import torch

    if method == "occlusion":
        from audit.auditors.explainability._occlusion import occlusion

        with attribution_mode(model):
            return AttributionRun(tokens=occlusion(model, rows, targets, pad_id=pad_id, device=device, output=output,
                                                   multi_label=multi_label, max_tokens=max_tokens))
    token_types = takes_token_type_ids(model)
    per_row = method in ("lime", "kernel_shap")
    batches = plan_batches([len(r.input_ids) for r in rows], max_rows=1 if per_row else max_rows)
    tokens: list[np.ndarray] = [np.zeros(0)] * len(rows)
    deltas = np.full(len(rows), np.nan) if method == "integrated_gradients" else None
    iterator: Any = batches
    if progress is not None:
        iterator = progress(batches, total=len(batches), desc=f"attribute ({method})")
    with attribution_mode(model):
        for batch in iterator:
            sub = [rows[i] for i in batch]
            ids, mask, tt, keep = _collate(sub, pad_id, device)
            target = torch.tensor([int(targets[i]) for i in batch], device=device)
            width = ids.shape[1]
            args = (mask, tt)
            if method == "integrated_gradients":
                from captum.attr import LayerIntegratedGradients

                fwd = score_function(model, output=output, multi_label=multi_label, takes_token_types=token_types)
                lig = LayerIntegratedGradients(fwd, model.get_input_embeddings())
                baseline = torch.where(keep, ids, torch.full_like(ids, pad_id))
                internal = max(len(batch), max_tokens // max(width, 1))
                out = lig.attribute(ids, baselines=baseline, additional_forward_args=args, target=target,
                                    n_steps=n_steps, internal_batch_size=internal,
                                    return_convergence_delta=convergence_delta)
                attr, delta = out if convergence_delta else (out, None)
                scores = attr.sum(dim=-1)
                if delta is not None:
                    deltas[batch] = delta.detach().cpu().numpy()  # type: ignore[index]
            elif method in ("saliency", "input_x_gradient"):
                from captum.attr import InputXGradient, Saliency

                fwd = score_function(model, output=output, multi_label=multi_label, takes_token_types=token_types,
                                     embeds=True)
                emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
                if method == "saliency":
                    grad = Saliency(fwd).attribute(emb, target=target, additional_forward_args=args, abs=True)
                    scores = grad.norm(dim=-1)
                else:
                    scores = InputXGradient(fwd).attribute(emb, target=target, additional_forward_args=args).sum(dim=-1)
            else:
                from captum.attr import FeatureAblation, KernelShap, Lime

                fwd = score_function(model, output=output, multi_label=multi_label, takes_token_types=token_types)
                fm = _word_feature_mask(sub, width, device)
                n_feat = int(fm.max()) + 1
                per_eval = max(1, max_tokens // max(width * len(batch), 1))
                with torch.no_grad():
                    if method == "occlusion":
                        scores = FeatureAblation(fwd).attribute(
                            ids, baselines=pad_id, target=target, additional_forward_args=args, feature_mask=fm,
                            perturbations_per_eval=min(per_eval, n_feat))
                    else:
                        if method == "lime":
                            from captum._utils.models.linear_model import SkLearnLasso

                            explainer: Any = Lime(fwd, interpretable_model=SkLearnLasso(alpha=0.01),
                                                  similarity_func=_lime_text_similarity)
                        else:
                            explainer = KernelShap(fwd)
                        with torch.random.fork_rng(devices=[]):  # seeded sampling; global state kept
                            torch.manual_seed(seed + batch[0])
                            scores = explainer.attribute(
                                ids, baselines=pad_id, target=target, additional_forward_args=args,
                                feature_mask=fm, n_samples=n_samples,
                                perturbations_per_eval=min(per_eval, n_samples), show_progress=False)
            scores = scores.detach().float().cpu().numpy()
            for j, i in enumerate(batch):
                tokens[i] = scores[j, : len(rows[i].input_ids)].astype(np.float64)
    return AttributionRun(tokens=tokens, deltas=deltas)


def until_converged(run: Callable[[list[int], int], tuple[Sequence[Any], Sequence[float]]], n: int, *, n_steps: int,
                    tolerance: float, max_steps: int, growth: int) -> tuple[list[Any], dict[str, np.ndarray]]:
    """Integrated Gradients for ``n`` rows with rows over the completeness tolerance recomputed:
    ``run(rows, steps)`` returns those rows' attributions and convergence deltas; rows whose
    |delta| exceeds ``tolerance`` get ``growth`` times more steps until they pass or ``max_steps``
    is reached. Returns the attributions and ``{"deltas", "first_deltas", "steps"}`` per row (the
    text and the token paths share it)."""
    first_run, first = run(list(range(n)), n_steps)
    out = list(first_run)
    deltas = np.abs(np.asarray(first, dtype=float))
    first_deltas = deltas.copy()
    steps = np.full(n, n_steps, dtype=int)
    while True:
        todo = [i for i in range(n) if deltas[i] > tolerance]
        if not todo or n_steps >= max_steps:
            break
        n_steps = min(n_steps * growth, max_steps)
        again, again_deltas = run(todo, n_steps)
        for j, i in enumerate(todo):
            out[i] = again[j]
            deltas[i] = abs(float(again_deltas[j]))
            steps[i] = n_steps
    return out, {"deltas": deltas, "first_deltas": first_deltas, "steps": steps}
