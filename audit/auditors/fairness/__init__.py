"""Fairness: group metrics (fairlearn, AIF360), identity-term subgroups, bias AUCs, counterfactual swaps,
advisory mitigation. Parts, each returning a SectionPart from the read-only _inputs: _groups, _bias_auc,
_counterfactual, _mitigation; _auditor orders and merges them. Engines: _metrics (the statistics),
_identity (identity-term lexicon).

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.fairness._auditor import FairnessAuditor

__all__ = ["FairnessAuditor"]
