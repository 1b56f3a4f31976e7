"""The one batched prediction pass.

Rows are tokenised once (fast tokenizer, batched), sorted by length, and cut into batches within a
token budget (rows x padded length), so short texts travel in large batches and long ones in
small; each batch is padded only to its own longest row, and a batch is cut where its padding
would cost more than one more batch (:func:`plan_batches`). Forward passes run under
``torch.inference_mode`` (and autocast when a reduced dtype is asked for). Out-of-memory halves
the batch and retries instead of crashing.

Sequence classifiers get one logit row per text (:func:`predict_logits`); token classifiers get
logits per token (:func:`predict_token_logits`) for rows that :mod:`audit.tasks.alignment` has
encoded (word windows), through the same loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The batch loop's shape (see _forward_batches): (model, encoded rows, *, pad_id, max_tokens,
# max_batch, device, dtype, progress, desc, stats) -> (row indices, logits) per batch.
ForwardBatches = Callable[..., Iterator[tuple[np.ndarray, np.ndarray]]]


@dataclass
class Encoded:
    """Token ids per row, unpadded, plus which rows lost tokens to truncation."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    truncated: np.ndarray  # bool per row

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


@dataclass
class PassStats:
    """Counters of the engine, reported in the audit's timings."""

    rows: int = 0
    batches: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    oom_backoffs: int = 0

    def merge(self, other: PassStats) -> None:
        """Add another pass's counters to these."""
        for name in ("rows", "batches", "padded_tokens", "real_tokens", "oom_backoffs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def encode(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, *, max_length: int) -> Encoded:
    """Tokenise all rows in one batched call; count rows that were truncated."""
    kwargs: dict[str, Any] = {"truncation": True, "max_length": max_length, "padding": False}
    enc = tokenizer(list(texts), list(pairs), **kwargs) if pairs is not None else tokenizer(list(texts), **kwargs)
    ids = enc["input_ids"]
    truncated = np.zeros(len(ids), dtype=bool)
    # Only rows that reached max_length can have been cut: re-encode those without truncation.
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    if full:
        sub_t = [texts[i] for i in full]
        sub_p = [pairs[i] for i in full] if pairs is not None else None
        raw = tokenizer(sub_t, sub_p, truncation=False) if sub_p is not None else tokenizer(sub_t, truncation=False)
        for j, i in enumerate(full):
            truncated[i] = len(raw["input_ids"][j]) > max_length
    return Encoded(input_ids=ids, token_type_ids=enc.get("token_type_ids"), truncated=truncated)


# What one more batch costs, in padded tokens, when the planner weighs padding against splitting
# a batch (plan_batches). On one CPU thread a MiniLM forward costs about 5 ms a batch and 0.22 ms a
# token, so a batch is worth about 20-24 tokens there (bench/README.md, fifth round); 32 errs
# towards fewer batches, which suits larger models (dearer tokens, same per-batch cost). A GPU's
# per-batch cost dwarfs its per-token cost: there batches are filled to the budget.
BATCH_COST_TOKENS = {"cpu": 32}
ACCELERATOR_BATCH_COST_TOKENS = 1 << 30


def batch_cost_for(device: str) -> int:
    """Per-batch cost in padded tokens for ``device`` (:data:`BATCH_COST_TOKENS`)."""
    return BATCH_COST_TOKENS.get(str(device).split(":")[0], ACCELERATOR_BATCH_COST_TOKENS)


def plan_batches(lengths: np.ndarray, *, max_tokens: int, max_batch: int,
                 batch_cost: int = BATCH_COST_TOKENS["cpu"]) -> list[np.ndarray]:
    """Row indices per batch, longest rows first: each batch within ``max_tokens`` padded tokens
    (rows x its longest row) and ``max_batch`` rows (a single over-long row forms its own batch),
    cut so that padded tokens plus ``batch_cost`` per batch are fewest (an exact dynamic programme
    over the sorted rows). Filling every batch to the budget padded a call of short and long texts
    (faithfulness's erased rows, privacy's members) by 37-57%; this plan pads by a few percent.
    When a batch costs at least a whole budget of tokens no cut can pay for itself, and batches are
    filled to the budget (the fewest batches), without the programme's cost."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    width = np.maximum(lengths[order], 1)
    fits = np.maximum(1, np.minimum(max(int(max_batch), 1), max(int(max_tokens), 0) // width))
    cuts = _fill(fits) if batch_cost >= max_tokens else _cut(width, fits, batch_cost=batch_cost)
    return [order[lo:hi] for lo, hi in cuts]


def _fill(fits: np.ndarray) -> list[tuple[int, int]]:
    """Each batch as full as its longest (first) row allows."""
    cuts, start, n = [], 0, len(fits)
    while start < n:
        end = min(n, start + int(fits[start]))
        cuts.append((start, end))
        start = end
    return cuts


def _cut(width: np.ndarray, fits: np.ndarray, *, batch_cost: int) -> list[tuple[int, int]]:
    """Best contiguous cut of rows sorted longest first: ``cost[i]``, the least cost of rows
    ``[0, i)``, is the minimum over batch starts ``j`` of ``cost[j] + (i - j) * width[j] + batch_cost``
    where the batch ``[j, i)`` fits (``fits[j]`` rows at most: ``width[j]`` is its longest row). A
    batch holds at most ``fits.max()`` rows, which bounds the starts looked at: O(rows x that)."""
    n = len(width)
    if n == 0:
        return []
    window = int(fits.max())
    cost = np.zeros(n + 1, dtype=np.float64)
    start = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        lo = max(0, i - window)
        size = i - np.arange(lo, i)
        options = cost[lo:i] + size * width[lo:i] + batch_cost
        options[size > fits[lo:i]] = np.inf
        k = int(np.argmin(options))
        cost[i] = options[k]
        start[i] = lo + k
    cuts: list[tuple[int, int]] = []
    i = n
    while i > 0:
        cuts.append((int(start[i]), i))
        i = int(start[i])
    return cuts[::-1]


def _collate(enc: Encoded, rows: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    width = max(len(enc.input_ids[i]) for i in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    tt = np.zeros((len(rows), width), dtype=np.int64) if enc.token_type_ids is not None else None
    for r, i in enumerate(rows):
        seq = enc.input_ids[i]
        ids[r, : len(seq)] = seq
        mask[r, : len(seq)] = 1
        if tt is not None:
            tt[r, : len(seq)] = enc.token_type_ids[i]  # type: ignore[index]
    batch = {"input_ids": ids, "attention_mask": mask}
    if tt is not None:
        batch["token_type_ids"] = tt
    return batch


def _is_oom(exc: BaseException) -> bool:
    return "out of memory" in str(exc).lower() or type(exc).__name__ == "OutOfMemoryError"


def predict_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    max_length: int,
    max_tokens: int = 8192,
    max_batch: int = 64,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = False,
    desc: str = "predict",
    stats: PassStats | None = None,
    num_threads: int | None = None,
    forward: ForwardBatches | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (float32, input order) and the truncated-row mask for ``texts`` (and ``pairs``).

    ``num_threads`` caps torch's intra-op threads for the pass (restored after); None keeps them.
    ``forward`` replaces the batch loop (the Ray engine's, :mod:`audit.engine.ray_engine`).
    """
    with _torch_threads(num_threads):
        return _predict_logits(model, tokenizer, texts, pairs, max_length=max_length, max_tokens=max_tokens,
                               max_batch=max_batch, device=device, dtype=dtype, progress=progress, desc=desc,
                               stats=stats, forward=forward or _forward_batches)


@contextlib.contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads for a block (None: leave them), restoring them after."""
    import torch

    previous = torch.get_num_threads()
    if num_threads is not None and num_threads != previous:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _predict_logits(model: Any, tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, *,
                    max_length: int, max_tokens: int, max_batch: int, device: str, dtype: str, progress: bool,
                    desc: str, stats: PassStats | None, forward: ForwardBatches) -> tuple[np.ndarray, np.ndarray]:
    n = len(texts)
    num_labels = model.config.num_labels
    if n == 0:
        return np.zeros((0, num_labels), dtype=np.float32), np.zeros(0, dtype=bool)
    enc = encode(tokenizer, texts, pairs, max_length=max_length)
    out = np.empty((n, num_labels), dtype=np.float32)
    for rows, logits in forward(model, enc, pad_id=_pad_id(tokenizer), max_tokens=max_tokens,
                                            max_batch=max_batch, device=device, dtype=dtype, progress=progress,
                                            desc=desc, stats=stats):
        out[rows] = logits
    return out, enc.truncated


def predict_token_logits(
    model: Any,
    tokenizer: Any,
    enc: Encoded,
    *,
    max_tokens: int = 8192,
    max_batch: int = 64,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = False,
    desc: str = "predict",
    stats: PassStats | None = None,
    num_threads: int | None = None,
    forward: ForwardBatches | None = None,
) -> list[np.ndarray]:
    """Per-token logits (float32, one ``len(row) x num_labels`` array per row, input order) for rows
    the caller has already encoded: the same batched pass as :func:`predict_logits`, for token
    classifiers, whose rows (word windows) are built by :mod:`audit.tasks.alignment`."""
    out: list[np.ndarray] = [np.empty((0, model.config.num_labels), dtype=np.float32)] * len(enc.input_ids)
    with _torch_threads(num_threads):
        for rows, logits in (forward or _forward_batches)(model, enc, pad_id=_pad_id(tokenizer), max_tokens=max_tokens,
                                                max_batch=max_batch, device=device, dtype=dtype, progress=progress,
                                                desc=desc, stats=stats):
            for r, i in enumerate(rows):
                out[i] = logits[r, : len(enc.input_ids[i])].copy()
    return out


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _forward_batches(model: Any, enc: Encoded, *, pad_id: int, max_tokens: int, max_batch: int, device: str,
                     dtype: str, progress: bool, desc: str,
                     stats: PassStats | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The loop both passes share: plan batches by token budget (longest rows first), pad each to its
    own longest row, forward under ``inference_mode`` (autocast for a reduced dtype), halve a batch
    on out-of-memory and retry. Yields each batch's row indices and its logits as float32 numpy (per
    row, or per token for a token classifier), and counts into ``stats``."""
    import torch

    stats = stats if stats is not None else PassStats()
    n = len(enc.input_ids)
    accepts_tt = "token_type_ids" in _forward_params(model)
    autocast_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    device_type = torch.device(device).type

    pending = plan_batches(enc.lengths, max_tokens=max_tokens, max_batch=max_batch,
                           batch_cost=batch_cost_for(device))
    bar = None
    if progress and n > 256:
        from audit.core.bars import bar as make_bar

        bar = make_bar(total=n, desc=desc)
    try:
        while pending:
            rows = pending.pop(0)
            batch = _collate(enc, rows, pad_id)
            if not accepts_tt:
                batch.pop("token_type_ids", None)
            tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
            try:
                with torch.inference_mode():
                    if autocast_dtype is not None:
                        with torch.autocast(device_type=device_type, dtype=autocast_dtype):
                            logits = model(**tensors).logits
                    else:
                        logits = model(**tensors).logits
                    logits = logits.float().cpu().numpy()
            except (RuntimeError, MemoryError) as exc:
                if not _is_oom(exc) or len(rows) == 1:
                    raise
                stats.oom_backoffs += 1
                if device_type == "cuda":
                    torch.cuda.empty_cache()
                half = len(rows) // 2
                pending[:0] = [rows[:half], rows[half:]]
                continue
            stats.batches += 1
            stats.padded_tokens += int(batch["input_ids"].size)
            stats.real_tokens += int(batch["attention_mask"].sum())
            yield rows, logits
            if bar is not None:
                bar.update(len(rows))
    finally:
        if bar is not None:
            bar.close()
    stats.rows += n


def _forward_params(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)
