"""Robustness: TextAttack recipes offline (_attacks) and invariance perturbations (_invariance).

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.robustness._auditor import RobustnessAuditor

__all__ = ["RobustnessAuditor"]
