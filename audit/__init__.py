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
    "AuditContext": "audit.context",
    "Predictions": "audit.context",
    "AuditInputError": "audit.errors",
    "AuditReport": "audit.results",
    "AuditorResult": "audit.results",
    "Metric": "audit.results",
    "Finding": "audit.results",
    "Table": "audit.results",
    "Figure": "audit.results",
    "Auditor": "audit.auditors.base",
    "discover": "audit.auditors.base",
    "EvalSet": "audit.data",
    "load_evalset": "audit.data",
    "Target": "audit.target",
    "build_demo": "audit.demo",
    "PerformanceAuditor": "audit.auditors.performance",
    "FairnessAuditor": "audit.auditors.fairness",
    "ExplainabilityAuditor": "audit.auditors.explainability",
    "RobustnessAuditor": "audit.auditors.robustness",
    "PrivacyAuditor": "audit.auditors.privacy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'audit' has no attribute {name!r}")
