"""Attributions for a token classifier (NER): why a word got its tag, or why an entity was found.

A target is one predicted tag of one word, or one predicted entity; its score is the sum, over
the target's words, of the ``output`` (log-odds by default) of the word's predicted tag at its
first sub-word (the position the Hugging Face training scripts label, and the one
:mod:`audit.tasks.alignment` reads with its default ``first`` aggregation). Two methods:

* ``integrated_gradients``: Layer Integrated Gradients on the word embeddings (Sundararajan et al.
  2017), baseline [PAD] on every sub-word but the special ones, as for text; with the convergence
  (completeness) delta.
* ``occlusion``: every word's sub-words replaced by the mask token (Zeiler & Fergus 2014, Captum's
  FeatureAblation with one feature per word): the drop of the score. Masking rather than deleting
  keeps every other sub-word at its position, so the target's own position does not move.

Sub-word scores are summed into word scores (Integrated Gradients keeps completeness that way);
occlusion's features already are words. A sentence longer than the model's maximum length is
explained in one window of whole words around the target (as much context on each side as fits);
a target whose own sub-words do not fit in a window is not explained and is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.auditors.explainability._attribution import attribution_mode, plan_batches, takes_token_type_ids

TOKEN_METHODS = ("integrated_gradients", "occlusion")
# Why a target is not explained (counted in the section's note).
TOO_LONG = "entity longer than the model's window"
NO_SUBWORD = "a target word has no sub-word (and the tokenizer no unknown token)"


@dataclass(frozen=True, kw_only=True)
class TokenRow:
    """One target in the model input that explains it: the window's ``words`` (the whole sentence
    unless ``windowed``; ``offset`` is the sentence index of its first word), their sub-word ids,
    ``word_of_token`` (window word per sub-word, -1 for special tokens), ``first_token`` (each
    word's first sub-word position), and the target: ``target_words`` (window indices) with the
    tag id explained at each (``target_tags``)."""

    words: tuple[str, ...]
    offset: int
    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None
    special: tuple[bool, ...]
    word_of_token: tuple[int, ...]
    first_token: tuple[int, ...]
    target_words: tuple[int, ...]
    target_tags: tuple[int, ...]
    windowed: bool = False

    @property
    def n_words(self) -> int:
        return len(self.words)

    @property
    def subword_counts(self) -> np.ndarray:
        """Sub-words per word of the window."""
        wot = np.asarray(self.word_of_token, dtype=np.int64)
        return np.bincount(wot[wot >= 0], minlength=self.n_words)


@dataclass(frozen=True, kw_only=True)
class TokenAttributions:
    """Word scores per row (over the row's window words) and, for Integrated Gradients, the
    convergence delta per row."""

    words: tuple[np.ndarray, ...]
    deltas: np.ndarray | None = None


def encode_target(tokenizer: Any, words: Sequence[str], *, start: int, end: int, tags: Sequence[int],
                  max_length: int) -> TokenRow | str:
    """The :class:`TokenRow` explaining words ``start:end`` of a sentence with tag ids ``tags``,
    or the reason (``TOO_LONG``, ``NO_SUBWORD``) it cannot be explained. Words that give no
    sub-word are read as the unknown token, as :mod:`audit.tasks.alignment` does."""
    words = list(words)
    enc = _encode(tokenizer, words)
    counts = _counts(enc, len(words))
    if (counts == 0).any() and tokenizer.unk_token is not None:
        words = [tokenizer.unk_token if c == 0 else w for w, c in zip(words, counts, strict=True)]
        enc = _encode(tokenizer, words)
        counts = _counts(enc, len(words))
    if (counts[start:end] == 0).any():
        return NO_SUBWORD
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    a, b = 0, len(words)
    if counts.sum() > budget:
        if counts[start:end].sum() > budget:
            return TOO_LONG
        a, b, used = start, end, int(counts[start:end].sum())
        grew = True
        while grew:  # one word on each side in turn, while it fits
            grew = False
            if a > 0 and used + counts[a - 1] <= budget:
                a, used, grew = a - 1, used + int(counts[a - 1]), True
            if b < len(words) and used + counts[b] <= budget:
                b, used, grew = b + 1, used + int(counts[b]), True
        enc = _encode(tokenizer, words[a:b])
    wot = tuple(-1 if w is None else int(w) for w in enc.word_ids())
    first = [-1] * (b - a)
    for t, w in enumerate(wot):
        if w >= 0 and first[w] < 0:
            first[w] = t
    tt = enc.get("token_type_ids")
    return TokenRow(words=tuple(words[a:b]), offset=a, input_ids=tuple(enc["input_ids"]),
                    token_type_ids=tuple(tt) if tt is not None else None,
                    special=tuple(bool(s) for s in enc["special_tokens_mask"]), word_of_token=wot,
                    first_token=tuple(first), target_words=tuple(range(start - a, end - a)),
                    target_tags=tuple(int(t) for t in tags), windowed=(a, b) != (0, len(words)))


def _encode(tokenizer: Any, words: list[str]) -> Any:
    """One sentence of pre-split words, never truncated (windows are cut from whole words)."""
    return tokenizer(words, is_split_into_words=True, truncation=False, return_special_tokens_mask=True,
                     verbose=False)


def _counts(enc: Any, n_words: int) -> np.ndarray:
    ids = [w for w in enc.word_ids() if w is not None]
    return np.bincount(np.asarray(ids, dtype=np.int64), minlength=n_words)


def tag_score(model: Any, *, output: str, takes_token_types: bool) -> Callable[..., Any]:
    """Captum's ``forward_func``: ids, attention mask, token types, the tag id at each position
    and each position's weight (1 at a target word's first sub-word) -> one score per row: the
    weighted sum of ``output`` (log_odds, log_prob or prob) of those tags."""
    import torch

    def forward(ids: Any, attention_mask: Any, token_type_ids: Any, tag_at: Any, weight: Any) -> Any:
        kwargs = {"input_ids": ids, "attention_mask": attention_mask}
        if takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        z = model(**kwargs).logits.float()
        index = tag_at.unsqueeze(-1)
        if output == "log_odds":  # z_t - logsumexp_{j != t} z_j, the logit of p(t)
            others = z.scatter(-1, index, float("-inf"))
            score = z.gather(-1, index).squeeze(-1) - torch.logsumexp(others, dim=-1)
        elif output == "log_prob":
            score = torch.log_softmax(z, dim=-1).gather(-1, index).squeeze(-1)
        else:
            score = torch.softmax(z, dim=-1).gather(-1, index).squeeze(-1)
        return (score * weight).sum(dim=-1)

    return forward


def collate(rows: Sequence[TokenRow], *, pad_id: int, device: str = "cpu") -> tuple[Any, ...]:
    """Padded ids, attention mask, token types, tag ids and target weights per position, and the
    positions the Integrated Gradients baseline keeps (special tokens)."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    shape = (len(rows), width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    mask = torch.zeros(shape, dtype=torch.long)
    tt = torch.zeros(shape, dtype=torch.long)
    tag_at = torch.zeros(shape, dtype=torch.long)
    weight = torch.zeros(shape, dtype=torch.float32)
    keep = torch.ones(shape, dtype=torch.bool)
    for i, r in enumerate(rows):
        n = len(r.input_ids)
        ids[i, :n] = torch.tensor(r.input_ids)
        mask[i, :n] = 1
        if r.token_type_ids is not None:
            tt[i, :n] = torch.tensor(r.token_type_ids)
        keep[i, :n] = torch.tensor(r.special, dtype=torch.bool)
        for w, tag in zip(r.target_words, r.target_tags, strict=True):
            tag_at[i, r.first_token[w]] = tag
            weight[i, r.first_token[w]] = 1.0
    return tuple(x.to(device) for x in (ids, mask, tt, tag_at, weight, keep))


def word_feature_mask(rows: Sequence[TokenRow], width: int, device: str = "cpu") -> Any:
    """One feature id per window word; special tokens and padding share the last id."""
    import torch

    n_feat = max(r.n_words for r in rows)
    fm = torch.full((len(rows), width), n_feat, dtype=torch.long)
    for i, r in enumerate(rows):
        for t, w in enumerate(r.word_of_token):
            if w >= 0:
                fm[i, t] = w
    return fm.to(device)


def merge_to_words(token_scores: np.ndarray, row: TokenRow, *, how: str) -> np.ndarray:
    """Word scores: the sum over a word's sub-words, or (``how="first"``) its first sub-word's."""
    out = np.zeros(row.n_words, dtype=np.float64)
    for t, w in enumerate(row.word_of_token):
        if w >= 0 and (how == "sum" or t == row.first_token[w]):
            out[w] += float(token_scores[t])
    return out


def attribute_targets(model: Any, rows: Sequence[TokenRow], *, method: str, pad_id: int, mask_id: int,
                      output: str = "log_odds", n_steps: int = 50, max_rows: int = 16, max_tokens: int = 8192,
                      device: str = "cpu", progress: Callable[..., Any] | None = None) -> TokenAttributions:
    """Word attributions of ``method`` (``TOKEN_METHODS``) for every row's target, ``max_rows``
    rows per Captum call; ``max_tokens`` bounds the padded sub-words of one forward pass
    (interpolation steps x rows x width for Integrated Gradients, masked variants x rows x width
    for occlusion)."""
    if method not in TOKEN_METHODS:
        raise ValueError(f"unknown token attribution method {method!r}; expected one of {', '.join(TOKEN_METHODS)}")
    import torch

    fwd = tag_score(model, output=output, takes_token_types=takes_token_type_ids(model))
    batches = plan_batches([len(r.input_ids) for r in rows], max_rows=max_rows)
    words: list[np.ndarray] = [np.zeros(0)] * len(rows)
    deltas = np.full(len(rows), np.nan) if method == "integrated_gradients" else None
    iterator: Any = progress(batches, total=len(batches), desc=f"attribute tags ({method})") if progress else batches
    with attribution_mode(model):
        for batch in iterator:
            sub = [rows[i] for i in batch]
            ids, mask, tt, tag_at, weight, keep = collate(sub, pad_id=pad_id, device=device)
            width = ids.shape[1]
            args = (mask, tt, tag_at, weight)
            if method == "integrated_gradients":
                from captum.attr import LayerIntegratedGradients

                lig = LayerIntegratedGradients(fwd, model.get_input_embeddings())
                baseline = torch.where(keep, ids, torch.full_like(ids, pad_id))
                internal = max(len(batch), max_tokens // max(width, 1))
                attr, delta = lig.attribute(ids, baselines=baseline, additional_forward_args=args, n_steps=n_steps,
                                            internal_batch_size=internal, return_convergence_delta=True)
                scores = attr.sum(dim=-1)
                deltas[batch] = delta.detach().cpu().numpy()  # type: ignore[index]
                how = "sum"
            else:
                from captum.attr import FeatureAblation

                fm = word_feature_mask(sub, width, device)
                per_eval = max(1, max_tokens // max(width * len(batch), 1))
                with torch.no_grad():
                    scores = FeatureAblation(fwd).attribute(ids, baselines=mask_id, additional_forward_args=args,
                                                            feature_mask=fm,
                                                            perturbations_per_eval=min(per_eval, int(fm.max()) + 1))
                how = "first"
            scores = scores.detach().float().cpu().numpy()
            for j, i in enumerate(batch):
                words[i] = merge_to_words(scores[j, : len(rows[i].input_ids)].astype(np.float64), rows[i], how=how)
    return TokenAttributions(words=tuple(words), deltas=deltas)


def mask_token(tokenizer: Any) -> str:
    """The token that stands for a hidden sub-word: [MASK], else the unknown token, else padding."""
    for name in ("mask_token", "unk_token", "pad_token"):
        value = getattr(tokenizer, name, None)
        if value:
            return str(value)
    raise ValueError("the tokenizer has no mask, unknown or padding token to mask words with")


def mask_id(tokenizer: Any) -> int:
    """The id of :func:`mask_token`."""
    return int(tokenizer.convert_tokens_to_ids(mask_token(tokenizer)))


def masked_words(row: TokenRow, chosen: Sequence[int], *, token: str) -> list[str]:
    """The row's words with each chosen word written as one ``token`` per sub-word it had: a
    special token is never split or merged, so the sentence keeps every sub-word's position and
    goes through the shared word-prediction pass as it is."""
    counts = row.subword_counts
    chosen_set = {int(c) for c in chosen}
    return [token * max(int(counts[i]), 1) if i in chosen_set else w for i, w in enumerate(row.words)]
