"""What every part of the fairness auditor reads, built once per run and never changed.

The parts (:mod:`._groups`, :mod:`._bias_auc`, :mod:`._counterfactual`, :mod:`._mitigation`)
each take these :class:`FairnessInputs` (and the slices, where they judge groups) and return a
:class:`~audit.core.results.SectionPart`; the auditor merges them. Nothing here is filled in by
a part for another to read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from audit.core.stats import CONFIDENCE
from audit.errors import OPTION_INVALID, AuditInputError

if TYPE_CHECKING:
    from audit.auditors.fairness._identity import Lexicon
    from audit.core.context import AuditContext

POSITIVE_LABEL_UNKNOWN = "expected one of the model's labels {known} (name or index), got {value!r}"
INTERSECTION = "×"
TOO_SMALL = "too small to judge"
# A bias AUC ranks positives against negatives: with one class on a side it does not exist,
# however many rows there are (Borkan et al. 2019 leave such subgroups out too).
ONE_CLASS = "one class only: AUC undefined"
REST_ONE_CLASS = "fewer than two classes outside it: BPSN/BNSP AUC undefined"
JUDGED = "judged"
# Every seed of the auditor is ctx.seed_for(SALT_PREFIX + what it draws for), so the salts, and
# with them the numbers, stay those of earlier releases.
SALT_PREFIX = "fairness:"

SliceKind = Literal["column", "intersection", "identity"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Slice:
    """One grouping to judge: its name, the group of each row (None: not in the grouping) and
    where it comes from (a sensitive column, their intersection, or identity terms)."""

    name: str
    groups: np.ndarray
    kind: SliceKind


@dataclass(frozen=True, kw_only=True, eq=False)
class FairnessInputs:
    """The checked options, the shared predictions as integer arrays, the identity-term
    mentions, and the positive classes judged (one, or each class one-vs-rest)."""

    options: Mapping[str, Any]
    ctx: AuditContext
    lexicon: Lexicon
    labels: np.ndarray
    label_names: tuple[str, ...]
    probs: np.ndarray
    preds: np.ndarray
    texts: tuple[str, ...]
    classes: tuple[int, ...]
    mentions: Mapping[tuple[str, str], np.ndarray]  # (category, term) -> rows that mention it
    observed: frozenset[tuple[str, str]]  # the (category, term) pairs some row mentions

    @classmethod
    def of(cls, *, ctx: AuditContext, options: Mapping[str, Any], lexicon: Lexicon) -> FairnessInputs:
        label_names = list(ctx.data.label_names)
        texts = list(ctx.data.texts)
        mentions = lexicon.mentions(texts)
        return cls(options=MappingProxyType(dict(options)), ctx=ctx, lexicon=lexicon,
                   labels=np.asarray(ctx.data.labels, dtype=int), label_names=tuple(label_names),
                   probs=ctx.predictions.probs, preds=np.asarray(ctx.predictions.preds, dtype=int), texts=tuple(texts),
                   classes=positive_classes(options["positive_label"], label_names),
                   mentions=MappingProxyType(mentions), observed=frozenset(k for k, v in mentions.items() if v.any()))

    def suffix(self, c: int) -> str:
        """What names a slice or metric of class ``c``: nothing with one class judged, else " [label]"."""
        return "" if len(self.classes) == 1 else f" [{self.label_names[c]}]"

    def rng(self, salt: str) -> np.random.Generator:
        """The generator of one draw of the auditor (ctx's one seeding convention)."""
        return self.ctx.rng(SALT_PREFIX + salt)

    def seed(self, salt: str) -> int:
        """The seed of one draw of the auditor (ctx's one seeding convention)."""
        return self.ctx.seed_for(SALT_PREFIX + salt)

    def ci(self, statistic: Callable[..., float], arrays: list[np.ndarray], *, salt: str,
           strata: np.ndarray | None = None, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """A seeded percentile bootstrap interval of ``statistic`` over ``arrays`` (n_bootstrap resamples)."""
        from audit.core.stats import bootstrap_ci

        with np.errstate(divide="ignore", invalid="ignore"):
            return bootstrap_ci(statistic, arrays, n_resamples=self.options["n_bootstrap"], seed=self.seed(salt),
                                strata=strata, confidence=confidence)


def positive_classes(value: Any, label_names: list[str]) -> tuple[int, ...]:
    """The classes judged: the ``positive_label`` option's (name or index), else class 1 of a
    binary model, else every class one-vs-rest."""
    k = len(label_names)
    if value is None:
        return (1,) if k == 2 else tuple(range(k))
    if isinstance(value, int) and 0 <= value < k:
        return (value,)
    if isinstance(value, str) and value in label_names:
        return (label_names.index(value),)
    raise AuditInputError(OPTION_INVALID.format(
        option="positive_label", problem=POSITIVE_LABEL_UNKNOWN.format(known=label_names, value=value)))


def unclear(severity: str) -> str:
    """The sentence a finding of severity "info" ends with: its interval reaches the threshold."""
    return " The interval reaches the threshold, so this is not statistically clear." if severity == "info" else ""
