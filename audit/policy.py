"""Policy thresholds on metrics -> pass/fail -> exit code.

A rule reads ``auditor.metric[slice] OP number``, e.g. ``performance.accuracy >= 0.8`` or
``fairness.demographic_parity_ratio[age_group] >= 0.8``. A rule whose metric is absent (the
auditor was skipped or failed, or the name is wrong) does not pass silently: it is reported as
"missing" and fails the gate, since no evidence is not good evidence.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

from audit.errors import OPTION_INVALID, AuditInputError
from audit.results import AuditorResult

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_RULE = re.compile(r"^\s*(?P<auditor>[\w-]+)\.(?P<metric>\w+)(?:\[(?P<slice>[^\]]+)\])?\s*"
                   r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")
EXIT_PASSED, EXIT_POLICY_FAILED, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Rule:
    auditor: str
    metric: str
    slice: str | None
    op: str
    threshold: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Rule:
        match = _RULE.match(text)
        if not match:
            raise AuditInputError(OPTION_INVALID.format(
                option="thresholds", problem=f"cannot read rule {text!r}; expected e.g. 'performance.accuracy >= 0.8'"))
        return cls(match["auditor"], match["metric"], match["slice"], match["op"], float(match["value"]), text.strip())

    def evaluate(self, results: list[AuditorResult]) -> dict[str, Any]:
        by_name = {r.auditor: r for r in results}
        result = by_name.get(self.auditor)
        outcome: dict[str, Any] = {"rule": self.text, "value": None, "outcome": "missing", "reason": ""}
        if result is None:
            outcome["reason"] = f"auditor {self.auditor!r} did not run"
            return outcome
        if result.status != "ok":
            outcome["reason"] = f"auditor {self.auditor!r} {result.status}: {result.reason}"
            return outcome
        try:
            metric = result.metric(self.metric, self.slice)
        except KeyError:
            outcome["reason"] = f"no metric {self.metric!r}" + (f" for slice {self.slice!r}" if self.slice else "")
            return outcome
        outcome["value"] = metric.value
        if metric.value is None:
            outcome["reason"] = "the metric is undefined on this data"
            return outcome
        ok = _OPS[self.op](metric.value, self.threshold)
        outcome["outcome"] = "pass" if ok else "fail"
        return outcome


def evaluate_policy(rules: list[str], results: list[AuditorResult]) -> list[dict[str, Any]]:
    """One outcome per rule: pass, fail, or missing (counts as a failure for the exit code)."""
    return [Rule.parse(text).evaluate(results) for text in rules]


def exit_code(policy: list[dict[str, Any]]) -> int:
    return EXIT_POLICY_FAILED if any(p["outcome"] in ("fail", "missing") for p in policy) else EXIT_PASSED
