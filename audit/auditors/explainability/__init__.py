"""Explainability: Captum attributions (_attribution) checked for faithfulness and sanity (_checks, on the
engine in _faithfulness), and a global view of the attributions (_global_view); each check returns a SectionPart.

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.explainability._auditor import ExplainabilityAuditor

__all__ = ["ExplainabilityAuditor"]
