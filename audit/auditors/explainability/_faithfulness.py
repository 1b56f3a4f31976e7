"""Checks on explanations: do they point at what the model uses, and do they depend on the model?

* Faithfulness, after DeYoung et al. 2020 ("ERASER: A Benchmark to Evaluate Rationalized NLP
  Models", §4): for the top k% of words by attribution, *comprehensiveness* is
  p(y|x) - p(y|x without those words) (higher: the words mattered) and *sufficiency* is
  p(y|x) - p(y|only those words) (lower: the words alone suffice). The area over the
  perturbation curve (AOPC, Samek et al. 2017) sums each over the bins and divides by
  |bins| + 1, as ERASER does. A seeded random choice of the same number of words is the yardstick.
* Sanity, after Adebayo et al. 2018 ("Sanity Checks for Saliency Maps"): the classifier's
  weights are re-initialised cumulatively from the top (head, then layers from the last) on a
  copy of the model, and the Spearman rank correlation between the trained model's and the
  randomised model's attributions is measured per stage. Attributions that barely change do
  not explain this model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.auditors.explainability._attribution import EncodedRow

K_PERCENTS = (1, 5, 10, 20)


def k_words(n_words: int, percent: float) -> int:
    """How many words make ``percent`` % of a row: at least one, at most all."""
    if n_words == 0:
        return 0
    return int(min(n_words, max(1, math.ceil(n_words * percent / 100.0))))


def erase(row: EncodedRow, chosen: Sequence[int]) -> tuple[str, str]:
    """(the text without the chosen words, the chosen words alone), words joined by spaces in
    their original order: text-level deletion, so the perturbed texts go through the shared,
    batched and cached prediction path."""
    chosen_set = set(int(c) for c in chosen)
    without = " ".join(w for i, w in enumerate(row.words) if i not in chosen_set)
    only = " ".join(w for i, w in enumerate(row.words) if i in chosen_set)
    return without, only


@dataclass
class ErasureCurves:
    """Per row (axis 0) and bin (axis 1, ``K_PERCENTS``)."""

    comprehensiveness: np.ndarray
    sufficiency: np.ndarray

    @property
    def aopc_comprehensiveness(self) -> np.ndarray:
        return self.comprehensiveness.sum(axis=1) / (self.comprehensiveness.shape[1] + 1)

    @property
    def aopc_sufficiency(self) -> np.ndarray:
        return self.sufficiency.sum(axis=1) / (self.sufficiency.shape[1] + 1)


def erasure_curves(rows: Sequence[EncodedRow], orders: Sequence[np.ndarray], targets: Sequence[int],
                   full_probs: np.ndarray, predict_probs: Callable[[list[str], list[str] | None], np.ndarray],
                   *, ks: Sequence[float] = K_PERCENTS) -> ErasureCurves:
    """Comprehensiveness and sufficiency of the word ``orders`` (most important first), with
    all perturbed texts scored in one call of ``predict_probs``."""
    texts: list[str] = []
    pairs: list[str] = []
    for row, order in zip(rows, orders, strict=True):
        for k in ks:
            without, only = erase(row, order[: k_words(row.n_words, k)])
            texts += [without, only]
            pairs += [row.pair or "", row.pair or ""]
    has_pairs = any(r.pair is not None for r in rows)
    probs = predict_probs(texts, pairs if has_pairs else None) if texts else np.zeros((0, 1))
    n, nk = len(rows), len(ks)
    comp = np.zeros((n, nk))
    suff = np.zeros((n, nk))
    for i, target in enumerate(targets):
        for j in range(nk):
            at = 2 * (i * nk + j)
            comp[i, j] = full_probs[i] - probs[at, target]
            suff[i, j] = full_probs[i] - probs[at + 1, target]
    return ErasureCurves(comprehensiveness=comp, sufficiency=suff)


def order_by_attribution(word_scores: np.ndarray) -> np.ndarray:
    """Words from most to least important (highest attribution toward the target first; ties
    by position)."""
    return np.argsort(-np.asarray(word_scores, dtype=float), kind="stable")


def random_orders(rows: Sequence[EncodedRow], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(r.n_words) for r in rows]


def mean_curves(curves: Sequence[ErasureCurves]) -> ErasureCurves:
    return ErasureCurves(comprehensiveness=np.mean([c.comprehensiveness for c in curves], axis=0),
                         sufficiency=np.mean([c.sufficiency for c in curves], axis=0))


# --- sanity check: cascading randomisation -------------------------------------------------

def cascade_stages(model: Any) -> list[tuple[str, list[Any]]]:
    """Stages of cascading randomisation, top first: the classification head (with the pooler),
    then each block of the encoder from the last, then the embeddings. Each stage lists the
    modules newly randomised; a stage includes all the stages before it when applied."""
    import torch

    base = getattr(model, "base_model", model)
    head = [mod for name, mod in model.named_children() if mod is not base]
    pooler = getattr(base, "pooler", None)
    if pooler is not None:
        head.append(pooler)
    stages: list[tuple[str, list[Any]]] = [("classifier head", head)] if head else []
    blocks: Any = None
    best = 0
    for mod in base.modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) > 0:
            size = sum(p.numel() for p in mod.parameters())
            if size > best:
                best, blocks = size, mod
    if blocks is not None:
        for i in reversed(range(len(blocks))):
            stages.append((f"layer {i}", [blocks[i]]))
    emb = model.get_input_embeddings()
    if emb is not None:
        stages.append(("embeddings", [emb]))
    return stages


def randomise_(modules: Sequence[Any], *, seed: int) -> None:
    """Re-initialise every parameter of ``modules`` in place with its layer's own initialiser
    (``reset_parameters``), seeded without touching the global random state."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for module in modules:
                for sub in module.modules():
                    reset = getattr(sub, "reset_parameters", None)
                    if callable(reset):
                        reset()


def randomised_copies(model: Any, *, seed: int) -> Any:
    """Yield (stage name, cumulatively randomised deep copy of ``model``) top-down; one copy is
    made and randomised further at each stage, so memory stays at one extra model."""
    clone = copy.deepcopy(model)
    stages = cascade_stages(clone)
    for s, (name, modules) in enumerate(stages):
        randomise_(modules, seed=seed + s)
        yield name, clone


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two attribution vectors (NaN when one is constant)."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
