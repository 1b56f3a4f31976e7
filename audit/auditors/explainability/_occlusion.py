"""Occlusion (Zeiler & Fergus 2014) through the shared engine's batch loop rather than Captum's
FeatureAblation over a padded batch: only a row's own words are varied, and the copies are sorted by
length into token-budget batches. Equal to FeatureAblation to float rounding
(tests/auditors/test_explainability.py, tests/auditors/test_explainability_edges.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from audit.auditors.explainability._attribution import EncodedRow, explained_score


def occlusion(model: Any, rows: Sequence[EncodedRow], targets: Sequence[int], *, pad_id: int, device: str = "cpu",
              output: str = "log_odds", multi_label: bool = False, max_tokens: int = 8192,
              max_batch: int = 256) -> list[np.ndarray]:
    """Occlusion (Zeiler & Fergus 2014) through the shared engine's batch loop: for each row, one
    copy per word with that word's pieces replaced by ``pad_id`` (attention kept, as Captum's
    FeatureAblation with ``baselines=pad_id`` does), plus one with the row's other tokens (special
    tokens, the pair segment) replaced, the group Captum ablates as its last feature. A token's
    score is the drop of the target's explained score. Unlike FeatureAblation over a padded batch,
    only a row's own words are varied (no copies for words a shorter row does not have) and the
    copies are sorted by length into token-budget batches, each padded to its own longest row
    (:func:`audit.engine.inference._forward_batches`). Equal to FeatureAblation to float rounding."""
    import torch

    from audit.engine.inference import Encoded, _forward_batches

    variants: list[list[int]] = []
    types: list[list[int]] | None = [] if any(r.token_type_ids is not None for r in rows) else None
    owner: list[tuple[int, int]] = []  # (row, feature): feature -1 is the original, n_words the others
    for i, r in enumerate(rows):
        ids = np.asarray(r.input_ids)
        feature = np.asarray(r.word_of_token)
        for f in range(-1, r.n_words + 1):
            if f == -1:
                v = ids
            else:
                v = ids.copy()
                v[feature == f if f < r.n_words else feature < 0] = pad_id
            variants.append(v.tolist())
            if types is not None:
                types.append(list(r.token_type_ids or [0] * len(ids)))
            owner.append((i, f))
    enc = Encoded(input_ids=variants, token_type_ids=types, truncated=np.zeros(len(variants), dtype=bool))
    scores = np.zeros(len(variants), dtype=np.float64)
    for batch, logits in _forward_batches(model, enc, pad_id=pad_id, max_tokens=max_tokens, max_batch=max_batch,
                                          device=device, dtype="float32", progress=False, desc="occlusion",
                                          stats=None):
        z = explained_score(torch.from_numpy(logits), output=output, multi_label=multi_label).double().numpy()
        for j, v in enumerate(batch):
            scores[v] = z[j, int(targets[owner[v][0]])]
    out: list[np.ndarray] = []
    k = 0
    for r in rows:
        base = scores[k]
        feature = np.asarray(r.word_of_token)
        drop = np.empty(len(r.input_ids), dtype=np.float64)
        for f in range(r.n_words):
            drop[feature == f] = base - scores[k + 1 + f]
        drop[feature < 0] = base - scores[k + 1 + r.n_words]
        out.append(drop)
        k += r.n_words + 2
    return out
