"""The privacy parts only a token classifier has, as one :class:`~audit.core.results.SectionPart`:
the entity canary test (:mod:`audit.auditors.privacy._token_canary`) and the model as a PII
detector (:mod:`audit.auditors.privacy._token_pii`), with the lines they add to "what was and was
not tested"; and the table the PII scan reads from token data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from audit.core.results import SectionPart

if TYPE_CHECKING:
    from audit.core.context import AuditContext

TOKENS_COLUMN = "tokens"  # a token set's sentences, words joined by spaces, as the PII scan reads them


def token_parts(ctx: AuditContext, *, options: Mapping[str, Any]) -> SectionPart:
    """The canary test and the PII-detector recall; ``extra["tested"]`` / ``["not_tested"]`` hold
    their scope lines (lists, so they join the section's own when the parts are merged)."""
    from audit.auditors.privacy._token_canary import entity_canary
    from audit.auditors.privacy._token_pii import pii_detector

    parts = SectionPart.merge(entity_canary(ctx, options=options), pii_detector(ctx, options=options))
    tested, not_tested = _scope(parts.extra)
    return parts + SectionPart(extra={"tested": tested, "not_tested": not_tested})


def scan_frame(es: Any) -> Any:
    """The table the PII scan reads: an EvalSet's frame, or for token data (no frame) the
    sentences, words joined by spaces, beside the per-sentence columns."""
    if hasattr(es, "frame"):
        return es.frame
    frame = es.columns.copy()
    frame.insert(0, TOKENS_COLUMN, [" ".join(s) for s in es.tokens])
    return frame


def _scope(extra: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """What the canary test and the PII-detector part tested, and what they did not (with why)."""
    tested, not_tested = [], []
    canary, detector = extra.get("canary", {}), extra.get("pii_detector", {})
    if canary.get("ran"):
        tested.append(canary["statement"])
    else:
        not_tested.append(f"Entity canary test: {canary.get('reason', 'not run')}.")
    if detector.get("ran"):
        kinds = ", ".join(sorted(set(detector["types"].values())))
        groups = f", and of names per group ({detector['groups_from']})" if detector.get("groups_from") else ""
        tested.append(f"The model as a PII detector: recall of {kinds} mentions{groups}.")
    else:
        not_tested.append(f"The model as a PII detector: {detector.get('reason', 'not run')}.")
    return tested, not_tested
