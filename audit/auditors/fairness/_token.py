"""The fairness parts of a token classifier (NER), in the order the section shows them.

* :mod:`._token_names`: name-swap recognition by group of a name lexicon (Mishra, He & Belli
  2020; CheckList's NER tests), with each group against the best one;
* :mod:`._token_switch`: entity-switched F1 by origin (Agarwal et al. 2020, "Entity-Switched
  Datasets"): the eval set's persons and places replaced by those of each group;
* :mod:`._token_groups`: strict entity metrics per value of each sensitive column (one value per
  sentence), with the performance auditor's per-sentence counts and bootstrap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from audit.core.results import SectionPart

if TYPE_CHECKING:
    from audit.core.context import AuditContext


def token_steps(ctx: AuditContext, options: Mapping[str, Any]) -> list[tuple[str, bool, Callable[[], SectionPart]]]:
    """The steps of the token fairness section: (name, enabled, the part's work)."""
    from audit.auditors.fairness._token_groups import sensitive_groups
    from audit.auditors.fairness._token_lexicon import load_name_lexicon
    from audit.auditors.fairness._token_names import name_swap
    from audit.auditors.fairness._token_switch import entity_switch

    lexicon = load_name_lexicon(options["name_lexicon"])
    return [
        ("name_swap", True, lambda: name_swap(ctx, options, lexicon=lexicon)),
        ("entity_switch", True, lambda: entity_switch(ctx, options, lexicon=lexicon)),
        ("sensitive_groups", bool(ctx.sensitive), lambda: sensitive_groups(ctx, options)),
    ]
