"""Performance: classification report, confusion matrix, ROC/PR AUC, calibration, bootstrap intervals.

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.performance._auditor import PerformanceAuditor

__all__ = ["PerformanceAuditor"]
