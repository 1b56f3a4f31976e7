"""The limitations of an audit, written once: the HTML report and the Markdown card both print
:func:`limitations`, so the two never state different limits."""

from __future__ import annotations

from audit.core.results import AuditReport

SCOPE = ("Every figure is measured on the evaluation data named above and holds for data like it; it says "
         "nothing about other populations.")
INTERVALS = ("Confidence intervals are seeded percentile bootstraps over eval rows; they do not cover shifts in "
             "the data.")
SECTION_NOT_OK = "The {auditor} section is {status}: {reason}"
NOT_A_CERTIFICATION = "This audit is evidence for a review, not a certification."


def limitations(report: AuditReport) -> list[str]:
    """The sentences of the Limitations section, in order: what the numbers hold for, every section
    that did not run (with its reason), the model card's own limitations, and what the audit is."""
    lines = [SCOPE, INTERVALS]
    lines += [SECTION_NOT_OK.format(auditor=r.auditor, status=r.status, reason=r.reason)
              for r in report.results if r.status != "ok"]
    own = (report.metadata.get("model_card") or {}).get("limitations")
    if own:
        lines.append(str(own))
    lines.append(NOT_A_CERTIFICATION)
    return lines
