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

import operator
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import OPTION_INVALID, PATH_MISSING, AuditInputError, did_you_mean
from audit.results import AuditorResult, AuditReport

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_RULE = re.compile(r"^\s*(?P<auditor>[\w-]+)\.(?P<metric>\w+)(?:\[(?P<slice>[^\]]+)\])?\s*"
                   r"(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)"
                   r"(?:\s+on\s+(?P<on>value|ci_low|ci_high))?\s*(?::\s*(?P<severity>fail|warn))?\s*$")
EXIT_PASSED, EXIT_POLICY_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_POLICY = "default"
RULE_UNREADABLE = "cannot read rule {rule!r}; expected e.g. 'performance.accuracy >= 0.8' or 'performance.accuracy >= 0.8 on ci_low: warn'"
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
                option="policy rules", problem=f"a rule needs metric, threshold (and may have op, severity, on); got {dict(spec)}"))
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
        judged = [m for m in same if self._judged(m) is not None]
        if not judged:
            return same[0] if same else None
        worst = min if self.op in (">=", ">") else max
        return worst(judged, key=lambda m: self._judged(m))

    def _judged(self, metric: Any) -> float | None:
        return {"value": metric.value, "ci_low": metric.ci_low, "ci_high": metric.ci_high}[self.on]

    def evaluate(self, results: list[AuditorResult]) -> dict[str, Any]:
        by_name = {r.auditor: r for r in results}
        result = by_name.get(self.auditor)
        outcome: dict[str, Any] = {"kind": "threshold", "rule": self.text, "severity": self.severity, "on": self.on,
                                   "value": None, "outcome": "missing", "reason": ""}
        if result is None:  # not selected for this run: reported, not judged
            outcome["outcome"] = "not_run"
            outcome["reason"] = f"auditor {self.auditor!r} was not selected for this run"
            return outcome
        if result.status != "ok":
            outcome["reason"] = f"auditor {self.auditor!r} {result.status}: {result.reason}"
            return outcome
        metric = self._pick(result)
        if metric is None:
            names = sorted({m.name for m in result.metrics})
            hint = did_you_mean(self.metric, names) if all(m.name != self.metric for m in result.metrics) else ""
            outcome["reason"] = (f"no metric {self.metric!r}{hint}"
                                 + (f" for slice {self.slice!r}" if self.slice else ""))
            return outcome
        if metric.slice is not None and self.slice is None:
            outcome["slice"] = metric.slice
            outcome["reason"] = f"worst slice: {metric.slice}"
        value = self._judged(metric)
        outcome["value"] = value
        if value is None:
            outcome["reason"] = "the metric is undefined on this data" if self.on == "value" else f"the metric has no {self.on}"
            return outcome
        outcome["outcome"] = "pass" if _OPS[self.op](value, self.threshold) else "fail"
        return outcome


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    max_regression: float = 0.02
    source: str = ""


def default_policy_path() -> Path:
    return Path(__file__).resolve().parent / "data_files" / "default_policy.yaml"


def load_policy(path: str | Path) -> Policy:
    """Read a policy file; ``default`` names the documented one shipped with the package."""
    import yaml

    path = default_policy_path() if str(path) == DEFAULT_POLICY else Path(path)
    if not path.is_file():
        raise AuditInputError(PATH_MISSING.format(what="policy file", path=path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AuditInputError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    known = {"version", "rules", "max_regression", "description"}
    if not isinstance(raw, dict):
        raise AuditInputError(f"{path}: expected a mapping with 'rules'")
    for key in raw:
        if key not in known:
            raise AuditInputError(f"{path}: unknown key {key!r}{did_you_mean(str(key), known)}; known keys are {', '.join(sorted(known))}")
    rules = tuple(Rule.parse(r) for r in raw.get("rules") or [])
    max_reg = raw.get("max_regression", 0.02)
    if not isinstance(max_reg, (int, float)) or max_reg < 0:
        raise AuditInputError(f"{path}: max_regression must be a non-negative number, got {max_reg!r}")
    return Policy(rules=rules, max_regression=float(max_reg), source=str(path))


def check_rules_known(rules: Iterable[Rule], declared: Mapping[str, Iterable[str]]) -> None:
    """Reject rules naming a metric that an auditor declares it never reports (before the run)."""
    for rule in rules:
        names = set(declared.get(rule.auditor, ()))
        if names and rule.metric not in names:
            raise AuditInputError(METRIC_UNKNOWN.format(
                rule=rule.text, auditor=rule.auditor, metric=rule.metric, hint=did_you_mean(rule.metric, names),
                known=", ".join(sorted(names))))


def evaluate_policy(rules: Iterable[str | Rule], results: list[AuditorResult]) -> list[dict[str, Any]]:
    """One outcome per rule: pass, fail, or missing (which fails the gate at the rule's severity)."""
    return [(r if isinstance(r, Rule) else Rule.parse(r)).evaluate(results) for r in rules]


def compare_baseline(results: list[AuditorResult], baseline: AuditReport, *, max_regression: float
                     ) -> list[dict[str, Any]]:
    """Every metric with a direction, against the same metric of a previous run: a change for the
    worse beyond ``max_regression`` fails. Returns one outcome per compared metric."""
    base = {(r.auditor, m.name, m.slice): m for r in baseline.results if r.status == "ok" for m in r.metrics}
    outcomes = []
    for r in results:
        if r.status != "ok":
            continue
        for m in r.metrics:
            old = base.get((r.auditor, m.name, m.slice))
            if old is None or m.higher_is_better is None or m.value is None or old.value is None:
                continue
            worse_by = (old.value - m.value) if m.higher_is_better else (m.value - old.value)
            outcomes.append({
                "kind": "baseline", "rule": f"{r.auditor}.{m.key} vs baseline (max regression {max_regression:g})",
                "severity": "fail", "value": m.value, "baseline": old.value, "change": m.value - old.value,
                "ci": [m.ci_low, m.ci_high], "baseline_ci": [old.ci_low, old.ci_high],
                "outcome": "fail" if worse_by > max_regression else "pass",
                "reason": (f"worse by {worse_by:.4g} (was {old.value:.4g}, now {m.value:.4g})"
                           if worse_by > max_regression else ""),
            })
    return outcomes


def gate_failed(outcomes: Iterable[Mapping[str, Any]]) -> bool:
    return any(o["outcome"] in ("fail", "missing") and o.get("severity", "fail") == "fail" for o in outcomes)


def exit_code(outcomes: Iterable[Mapping[str, Any]]) -> int:
    return EXIT_POLICY_FAILED if gate_failed(outcomes) else EXIT_PASSED
