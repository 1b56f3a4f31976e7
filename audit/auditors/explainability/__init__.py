"""Explainability: Captum attributions (_attribution) checked for faithfulness (_faithfulness) and sanity.

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.explainability._auditor import ExplainabilityAuditor

__all__ = ["ExplainabilityAuditor"]
