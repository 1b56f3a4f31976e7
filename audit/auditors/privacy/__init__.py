"""Privacy: membership inference (_membership; LiRA reference models: _reference) against blind baselines
(_blind_baselines), PII scan (_pii).

This folder is the whole auditor: its engines, its options and its section template
(section.html.j2). It reads the shared predictions and target through the AuditContext only."""

from audit.auditors.privacy._auditor import PrivacyAuditor

__all__ = ["PrivacyAuditor"]
