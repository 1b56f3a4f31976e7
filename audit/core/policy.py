"""Policy: thresholds on metrics and regressions against a baseline -> pass/fail -> exit code.

A rule reads ``auditor.metric[slice] OP number [on ci_low|ci_high] [: fail|warn]``, e.g.
``performance.accuracy >= 0.85 on ci_low: fail``. Judged ``on ci_low`` (or ``ci_high``) the
rule uses the confidence bound instead of the point value, so a gate does not flip on noise.
A rule whose metric is absent (the auditor was skipped or failed) does not pass silently: it is
"missing", which fails the gate at the rule's severity: no evidence is not good evidence. A rule
for an auditor the run did not select is "not_run": reported, not judged.

A policy file (YAML) holds ``rules`` (strings as above, or mappings with ``metric``, ``op``,
``threshold``, ``severity``, ``on``) and ``max_regression`` for ``--baseline`` comparisons.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.core.results import AuditorResult, AuditReport
from audit.core.verdicts import PolicyOutcome, PolicyVerdict
from audit.errors import OPTION_INVALID, PATH_MISSING, AuditInputError, did_you_mean

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_RULE = re.compile(r"^\s*(?P<auditor>[\w-]+)\.(?P<metric>\w+)(?:\[(?P<slice>[^\]]+)\])?\s*"
                   r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)"
                   r"(?:\s+on\s+(?P<on>value|ci_low|ci_high))?\s*(?::\s*(?P<severity>fail|warn))?\s*$")
EXIT_PASSED, EXIT_POLICY_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_POLICY = "default"
RULE_UNREADABLE = ("cannot read rule {rule!r}; expected e.g. 'performance.accuracy >= 0.8' or "
                   "'performance.accuracy >= 0.8 on ci_low: warn'")
BASELINE_NOTHING_COMPARED = ("no metric of this run could be compared with the baseline (other auditors, "
                             "or no defined values there): the regression gate has no evidence")
RULE_AUDITOR_UNKNOWN = "policy rule {rule!r}: no auditor {auditor!r} is installed{hint}; installed: {known}"
METRIC_UNKNOWN = "policy rule {rule!r}: auditor {auditor!r} has no metric {metric!r}{hint}; it reports {known}"


@dataclass(frozen=True)
class Rule:
    auditor: str
    metric: str
    slice: str | None
    op: str
    threshold: float
    severity: str = "fail"
    on: str = "value"
    text: str = ""

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> Rule:
        if isinstance(spec, Mapping):
            return cls._from_mapping(spec)
        match = _RULE.match(str(spec))
        if not match:
            raise AuditInputError(OPTION_INVALID.format(option="thresholds", problem=RULE_UNREADABLE.format(rule=spec)))
        return cls(match["auditor"], match["metric"], match["slice"], match["op"], float(match["value"]),
                   match["severity"] or "fail", match["on"] or "value", str(spec).strip())

    @classmethod
    def _from_mapping(cls, spec: Mapping[str, Any]) -> Rule:
        if len(spec) == 1:
            (key, value), = spec.items()
            if key not in ("metric", "threshold") and isinstance(value, str):
                return cls.parse(f"{key}: {value}")  # YAML read "rule: severity" as a mapping
        unknown = set(spec) - {"metric", "op", "threshold", "severity", "on"}
        if unknown or "metric" not in spec or "threshold" not in spec:
            raise AuditInputError(OPTION_INVALID.format(
                option="policy rules",
                problem=f"a rule needs metric, threshold (and may have op, severity, on); got {dict(spec)}"))
        text = f"{spec['metric']} {spec.get('op', '>=')} {spec['threshold']}"
        if spec.get("on", "value") != "value":
            text += f" on {spec['on']}"
        return cls.parse(f"{text}: {spec.get('severity', 'fail')}")

    def _pick(self, result: AuditorResult) -> Any:
        """The metric a rule judges: the named slice; without one, the unsliced metric, or else the
        worst slice for this rule (the smallest for >= and >, the largest for <= and <)."""
        same = [m for m in result.metrics if m.name == self.metric]
        if self.slice is not None:
            return next((m for m in same if m.slice == self.slice), None)
        unsliced = next((m for m in same if m.slice is None), None)
        if unsliced is not None:
            return unsliced
        undefined = [m for m in same if not _finite(self._judged(m))]
        if undefined or not same:  # an undefined slice is no evidence: the rule cannot be judged
            return undefined[0] if undefined else None
        worst = min if self.op in (">=", ">") else max
        return worst(same, key=lambda m: self._judged(m))

    def _judged(self, metric: Any) -> float | None:
        return {"value": metric.value, "ci_low": metric.ci_low, "ci_high": metric.ci_high}[self.on]

    def evaluate(self, results: list[AuditorResult]) -> PolicyOutcome:
        by_name = {r.auditor: r for r in results}
        result = by_name.get(self.auditor)
        judged = {"kind": "threshold", "rule": self.text, "severity": self.severity, "on": self.on,
                  "auditor": self.auditor, "metric": self.metric, "slice": self.slice}
        if result is None:  # not selected for this run: reported, not judged
            return PolicyOutcome(**judged, outcome="not_run",
                                 reason=f"auditor {self.auditor!r} was not selected for this run")
        if result.status != "ok":
            return PolicyOutcome(**judged, outcome="missing",
                                 reason=f"auditor {self.auditor!r} {result.status}: {result.reason}")
        metric = self._pick(result)
        if metric is None:
            names = sorted({m.name for m in result.metrics})
            hint = did_you_mean(self.metric, names) if all(m.name != self.metric for m in result.metrics) else ""
            return PolicyOutcome(**judged, outcome="missing", reason=(
                f"no metric {self.metric!r}{hint}" + (f" for slice {self.slice!r}" if self.slice else "")))
        reason = ""
        if metric.slice is not None and self.slice is None:
            judged["slice"] = metric.slice
            reason = f"worst slice: {metric.slice}"
        value = self._judged(metric)
        value = value if _finite(value) else None
        if value is None:
            where = f" for slice {metric.slice}" if metric.slice is not None else ""
            return PolicyOutcome(**judged, outcome="missing", reason=(
                f"the metric is undefined{where} on this data" if self.on == "value"
                else f"the metric has no {self.on}{where}"))
        return PolicyOutcome(**judged, value=value, reason=reason,
                             outcome="pass" if _OPS[self.op](value, self.threshold) else "fail")


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    max_regression: float = 0.02
    source: str = ""


def default_policy_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data_files" / "default_policy.yaml"


def load_policy(path: str | Path) -> Policy:
    """Read a policy file; ``default`` names the documented one shipped with the package."""
    from audit.core.options import Option, check, read_yaml_file

    path = default_policy_path() if str(path) == DEFAULT_POLICY else Path(path)
    if not path.exists():
        raise AuditInputError(PATH_MISSING.format(what="policy file", path=path))
    raw = read_yaml_file(path, what="policy file") or {}
    known = {"version", "rules", "max_regression", "description"}
    if not isinstance(raw, dict):
        raise AuditInputError(f"{path}: expected a mapping with 'rules'")
    for key in raw:
        if key not in known:
            raise AuditInputError(f"{path}: unknown key {key!r}{did_you_mean(str(key), known)}; "
                                  f"known keys are {', '.join(sorted(known))}")
    rules_raw = raw.get("rules") or []
    if not isinstance(rules_raw, list) or not all(isinstance(r, (str, dict)) for r in rules_raw):
        raise AuditInputError(f"{path}: 'rules' must be a list of rules")
    rules = tuple(Rule.parse(r) for r in rules_raw)
    max_reg = check(f"{path}: max_regression", raw.get("max_regression", 0.02), Option(kind="float", min=0))
    return Policy(rules=rules, max_regression=float(max_reg), source=str(path))


def check_rules_known(rules: Iterable[Rule], declared: Mapping[str, Iterable[str]]) -> None:
    """Reject, before the run, rules naming an auditor that is not installed or a metric that its
    auditor never reports (``declared``: every installed auditor's ``metric_names``)."""
    for rule in rules:
        if rule.auditor not in declared:
            raise AuditInputError(RULE_AUDITOR_UNKNOWN.format(
                rule=rule.text, auditor=rule.auditor, hint=did_you_mean(rule.auditor, declared),
                known=", ".join(sorted(declared)) or "(none installed)"))
        names = set(declared[rule.auditor])
        if rule.metric not in names:
            raise AuditInputError(METRIC_UNKNOWN.format(
                rule=rule.text, auditor=rule.auditor, metric=rule.metric, hint=did_you_mean(rule.metric, names),
                known=", ".join(sorted(names))))


def evaluate_policy(rules: Iterable[str | Rule], results: list[AuditorResult]) -> list[PolicyOutcome]:
    """One outcome per rule: pass, fail, or missing (which fails the gate at the rule's severity)."""
    return [(r if isinstance(r, Rule) else Rule.parse(r)).evaluate(results) for r in rules]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def compare_baseline(results: list[AuditorResult], baseline: AuditReport, *, max_regression: float
                     ) -> list[PolicyOutcome]:
    """Every metric with a direction, against the same metric of a previous run: a change for the
    worse beyond ``max_regression`` fails. Returns one outcome per compared metric.

    Undefined values never pass: a metric the baseline measured that is now undefined is
    "missing" (fails); and a comparison that compared nothing is itself a failed outcome, so a
    baseline of another run shape (or of NaNs) cannot pass the gate by saying nothing."""
    if not _finite(max_regression) or max_regression < 0:
        raise AuditInputError(OPTION_INVALID.format(
            option="max_regression", problem=f"expected a finite number >= 0, got {max_regression!r}"))
    now = {r.auditor: r for r in results}
    outcomes: list[PolicyOutcome] = []
    not_run: set[str] = set()
    for old_result in baseline.results:
        if old_result.status != "ok":
            continue
        for old in old_result.metrics:
            if old.higher_is_better is None or not _finite(old.value):
                continue
            auditor = old_result.auditor
            entry: dict[str, Any] = {
                "kind": "baseline", "rule": f"{auditor}.{old.key} vs baseline (max regression {max_regression:g})",
                "auditor": auditor, "metric": old.name, "slice": old.slice, "severity": "fail",
                "baseline": old.value, "baseline_ci": (old.ci_low, old.ci_high)}
            current = now.get(auditor)
            if current is None:  # not selected this time: reported once, not judged
                if auditor not in not_run:
                    not_run.add(auditor)
                    outcomes.append(PolicyOutcome(kind="baseline", rule=f"{auditor} vs baseline", auditor=auditor,
                                                  outcome="not_run",
                                                  reason=f"auditor {auditor!r} was not run this time"))
                continue
            if current.status != "ok":
                outcomes.append(PolicyOutcome(**entry, outcome="missing", reason=(
                    f"the {auditor} section {current.status} this time: {current.reason}")))
                continue
            m = next((x for x in current.metrics if x.name == old.name and x.slice == old.slice), None)
            if m is None or not _finite(m.value):
                outcomes.append(PolicyOutcome(**entry, outcome="missing", reason=(
                    f"{'not reported' if m is None else 'undefined'} now (was {old.value:.4g})")))
                continue
            worse_by = (old.value - m.value) if old.higher_is_better else (m.value - old.value)
            failed = not worse_by <= max_regression
            outcomes.append(PolicyOutcome(
                **entry, value=m.value, ci=(m.ci_low, m.ci_high), change=m.value - old.value,
                outcome="fail" if failed else "pass",
                reason=f"worse by {worse_by:.4g} (was {old.value:.4g}, now {m.value:.4g})" if failed else ""))
    if not any(o.outcome in ("pass", "fail") for o in outcomes):
        outcomes.append(PolicyOutcome(kind="baseline", rule="baseline comparison", outcome="missing",
                                      reason=BASELINE_NOTHING_COMPARED))
    return outcomes


def gate_failed(outcomes: Iterable[PolicyOutcome]) -> bool:
    """Whether these outcomes fail the gate (the rule of :attr:`PolicyVerdict.passed`)."""
    return not PolicyVerdict(tuple(outcomes)).passed


def exit_code(verdict: PolicyVerdict) -> int:
    return EXIT_PASSED if verdict.passed else EXIT_POLICY_FAILED


def describe_verdict(report: AuditReport) -> dict[str, str]:
    """Two sentences that keep apart what a reader conflates: the *severity of findings* (the
    auditors' own judgement) and the *policy verdict* (the rules the user set). One source for
    the text summary, the HTML summary and the README card."""
    findings = [f for r in report.results for f in r.findings]
    serious = sum(f.severity == "fail" for f in findings)
    warnings = sum(f.severity == "warn" for f in findings)
    finding_text = (f"{serious} serious finding{'s' if serious != 1 else ''}, "
                    f"{warnings} warning{'s' if warnings != 1 else ''} from the auditors")
    policy = report.policy
    judged = [p for p in policy.thresholds if p.outcome != "not_run"]
    warn_unmet = [p for p in judged if p.unmet and p.severity == "warn"]
    parts = [f"{len(judged)} rule{'s' if len(judged) != 1 else ''} judged"]
    if warn_unmet:
        parts.append(f"{len(warn_unmet)} warn-level rule{'s' if len(warn_unmet) != 1 else ''} not met")
    if policy.comparisons:
        n = len(policy.comparisons)
        parts.append(f"{n} baseline comparison{'s' if n != 1 else ''}")
    n = len(policy.blocking)
    parts.append(f"{n} blocking rule{'s' if n != 1 else ''} failed" if n else "no blocking rule failed")
    policy_text = ", ".join(parts) if policy.outcomes else "no policy rules were set"
    verdict = f"{'PASSED' if policy.passed else 'FAILED'} — {policy_text}" if policy.outcomes else "none set"
    return {"findings": finding_text, "policy": policy_text, "line": f"{finding_text}; policy: {verdict}"}
