"""Entity metrics by sensitive column of a token classifier (to be filled in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from audit.core.results import SectionPart

if TYPE_CHECKING:
    from audit.core.context import AuditContext


def sensitive_groups(ctx: AuditContext, options: Mapping[str, Any]) -> SectionPart:
    """Nothing yet."""
    return SectionPart()
