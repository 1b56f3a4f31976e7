"""rai-audit: responsible-AI audits of fine-tuned Hugging Face text classifiers.

The public API is re-exported here lazily, so ``import audit`` (and ``rai-audit --help`` /
``rai-audit list``) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "run_audit": "audit.runner",
    "AuditConfig": "audit.config",
    "AuditContext": "audit.core.context",
    "Predictions": "audit.core.context",
    "AuditInputError": "audit.errors",
    "Option": "audit.core.options",
    "AuditReport": "audit.core.results",
    "AuditorResult": "audit.core.results",
    "Metric": "audit.core.results",
    "Finding": "audit.core.results",
    "Table": "audit.core.results",
    "Figure": "audit.core.results",
    "SectionPart": "audit.core.results",
    "PolicyOutcome": "audit.core.verdicts",
    "PolicyVerdict": "audit.core.verdicts",
    "ClauseVerdict": "audit.core.verdicts",
    "ComplianceAssessment": "audit.core.verdicts",
    "Auditor": "audit.auditors.base",
    "discover": "audit.auditors.base",
    "EvalSet": "audit.engine.data",
    "load_evalset": "audit.engine.data",
    "Target": "audit.engine.target",
    "build_demo": "audit.selftest.demo",
    "PerformanceAuditor": "audit.auditors.performance._auditor",
    "FairnessAuditor": "audit.auditors.fairness._auditor",
    "ExplainabilityAuditor": "audit.auditors.explainability._auditor",
    "RobustnessAuditor": "audit.auditors.robustness._auditor",
    "PrivacyAuditor": "audit.auditors.privacy._auditor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
