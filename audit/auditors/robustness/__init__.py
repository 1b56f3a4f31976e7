"""Robustness: TextAttack recipes offline (_attacks) and invariance perturbations (_invariance); for
token classifiers (NER), perturbations with span realignment (_token_perturb, _token_invariance) and
a RockNER-style context attack (_token_context), put together by _token_section.

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.robustness._auditor import RobustnessAuditor

__all__ = ["RobustnessAuditor"]
