"""AuditContext: what every auditor reads. Predictions on the eval set are computed once, here,
and cached; auditors that need new forward passes go through ``ctx.predict`` (the shared target,
batched and cached) instead of building their own pipeline."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from audit.config import AuditConfig
    from audit.engine.data import EvalSet
    from audit.engine.target import Target

T = TypeVar("T")
# Int seeds drawn by AuditContext.seed_for lie below this: a seed every library accepts.
SEED_BOUND = 2**31 - 1


@dataclass(frozen=True)
class Predictions:
    """Model outputs for a list of texts: logits, probabilities and predicted labels.

    ``probs`` is a softmax over classes, or element-wise sigmoid when ``multi_label``; ``preds``
    is the argmax (single-label, shape (n,)) or the 0/1 indicator matrix at 0.5 (multi-label).
    """

    logits: np.ndarray
    multi_label: bool = False

    @cached_property
    def probs(self) -> np.ndarray:
        z = self.logits.astype(np.float64)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @cached_property
    def preds(self) -> np.ndarray:
        if self.multi_label:
            return (self.probs >= 0.5).astype(int)
        return self.logits.argmax(axis=1)

    def __len__(self) -> int:
        return len(self.logits)


@dataclass
class AuditContext:
    """Shared state of one audit run."""

    config: AuditConfig
    target: Target | None
    data: EvalSet
    train: EvalSet | None = None
    holdout: EvalSet | None = None  # rows of the training distribution the model never saw (privacy)
    # The results of the auditors the running one declares it ``consumes`` (and that ran before
    # it in this audit, or were resumed): the only channel between auditors.
    upstream: Mapping[str, Any] = field(default_factory=dict)
    progress_enabled: bool = True
    # Eval rows (or sentences) cut at the model's max length, counted by the shared pass alone.
    eval_truncated_rows: int = 0

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def task(self) -> str:
        """``audit.tasks.SEQUENCE`` or ``TOKEN``: read from the model (a stand-in target without
        a ``task`` is a sequence classifier)."""
        from audit.tasks import SEQUENCE

        return getattr(self.target, "task", SEQUENCE) if self.target is not None else SEQUENCE

    @property
    def sensitive(self) -> list[str]:
        return list(self.config.sensitive)

    def has(self, requirement: str) -> bool:
        if requirement == "labels":  # token data always carries its gold tags
            return getattr(self.data, "labels", None) is not None or hasattr(self.data, "tags")
        if requirement == "sensitive":
            return bool(self.config.sensitive)
        if requirement == "train":
            return self.train is not None and len(self.train) > 0
        if requirement == "holdout":
            return self.holdout is not None and len(self.holdout) > 0
        if requirement == "model":
            return self.target is not None
        return False

    @cached_property
    def predictions(self) -> Predictions:
        """Predictions on the eval set: one batched pass, computed on first use, then cached."""
        return self._eval_pass(lambda: self.predict(self.data.texts, self.data.pairs, desc="predict eval set"))

    @cached_property
    def word_predictions(self) -> Any:
        """A token classifier's per-word tag probabilities on the eval sentences
        (:class:`audit.tasks.alignment.WordPredictions`): one batched pass, then cached."""
        return self._eval_pass(lambda: self.predict_words(self.data.tokens, desc="predict eval sentences"))

    def _eval_pass(self, run: Any) -> Any:
        """``run()``, the shared pass over the eval set, counting the rows it truncated."""
        before = getattr(self.target, "truncated_rows", 0)
        out = run()
        self.eval_truncated_rows = getattr(self.target, "truncated_rows", 0) - before
        return out

    def predict_words(self, sentences: Sequence[Sequence[str]], *, desc: str = "predict words") -> Any:
        """Tag probabilities per word of any sentences through the shared target (batched, cached),
        with the run's sub-word aggregation and window stride."""
        if self.target is None:
            raise RuntimeError("no model is loaded")
        return self.target.predict_words(sentences, aggregation=self.config.aggregation, stride=self.config.stride,
                                         progress=self.progress_enabled, desc=desc)

    def predict(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, *, desc: str = "predict"
    ) -> Predictions:
        """Score any texts through the shared target (batched, length-sorted, cached)."""
        if self.target is None:
            raise RuntimeError("no model is loaded")
        logits = self.target.predict_logits(texts, pairs, progress=self.progress_enabled, desc=desc)
        return Predictions(logits=logits, multi_label=self.target.multi_label)

    def rng(self, salt: str = "") -> np.random.Generator:
        """A generator seeded from the run's seed and a salt, so each use is independent and
        reproducible whatever ran before it. The one seeding convention of every auditor."""
        return np.random.default_rng([self.seed, zlib.crc32(salt.encode())])

    def seed_for(self, salt: str) -> int:
        """``rng(salt)`` as an int seed, for what takes a number instead of a Generator (torch,
        scikit-learn, :func:`audit.core.stats.bootstrap_ci`'s fast path). Distinct salts give
        unrelated seeds, never ``seed + 1``-style neighbours."""
        return int(self.rng(salt).integers(SEED_BOUND))

    def seed_everything(self) -> None:
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return
        torch.manual_seed(self.seed)

    def progress(self, items: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
        """A progress bar on stderr (tqdm; drawn by the parent when this auditor runs in a forked
        process, :mod:`audit.core.bars`), silent when progress is disabled."""
        if not self.progress_enabled:
            yield from items
            return
        from audit.core.bars import bar

        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        shown = bar(total=total, desc=desc)
        try:
            for item in items:
                yield item
                shown.update(1)
        finally:
            shown.close()
