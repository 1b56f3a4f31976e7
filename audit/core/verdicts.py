"""What the report concludes, as typed values: the policy gate's outcomes and verdict, and the
compliance map's verdict per clause.

Both are computed once, when the audit is judged (:func:`audit.core.policy.evaluate_policy` and
:func:`audit.report.compliance.assess`), stored in ``results.json`` (``passed``, ``policy``,
``compliance``) and read back from there by the HTML, the Markdown card and any pipeline, so none
of them recomputes a verdict of its own. Plain frozen data with ``to_dict`` / ``from_dict``;
nothing here imports the rest of the package.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PolicyKind = Literal["threshold", "baseline"]
Outcome = Literal["pass", "fail", "missing", "not_run"]
OUTCOMES: tuple[str, ...] = ("pass", "fail", "missing", "not_run")
# Outcomes that do not meet a rule: "missing" (no evidence) counts as not met, never as a pass.
UNMET: tuple[str, ...] = ("fail", "missing")
RULE_SEVERITIES: tuple[str, ...] = ("fail", "warn")
JUDGED_ON: tuple[str, ...] = ("value", "ci_low", "ci_high")

ClauseVerdictName = Literal["evidence", "concern", "not assessed"]
CLAUSE_VERDICTS: tuple[str, ...] = ("evidence", "concern", "not assessed")

BAD_VALUE = "{what} must be one of {allowed}, got {got!r}"


def _check(what: str, got: Any, allowed: tuple[str, ...]) -> None:
    if got not in allowed:
        raise ValueError(BAD_VALUE.format(what=what, allowed=", ".join(allowed), got=got))


def _num(value: Any) -> float | None:
    """A JSON-safe float: None, NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pair(values: Any) -> tuple[float | None, float | None]:
    if values is None:
        return (None, None)
    low, high = values
    return (_num(low), _num(high))


# ------------------------------------------------------------------------------------ policy


@dataclass(frozen=True, kw_only=True)
class PolicyOutcome:
    """One rule judged on this run (``kind="threshold"``), or one metric compared with a
    baseline run (``kind="baseline"``).

    ``auditor``, ``metric`` and ``slice`` name what was judged (``slice``: the rule's own slice,
    or the worst slice a rule without one was judged on); they are None for an outcome about no
    single metric (an auditor not run this time, a baseline that compared nothing).
    ``on`` says which number a threshold judged (the value or a confidence bound); ``baseline``,
    ``ci``, ``baseline_ci`` and ``change`` hold a baseline comparison's numbers.
    """

    kind: PolicyKind
    rule: str
    outcome: Outcome
    severity: Literal["fail", "warn"] = "fail"
    value: float | None = None
    reason: str = ""
    auditor: str | None = None
    metric: str | None = None
    slice: str | None = None
    on: str = "value"
    baseline: float | None = None
    ci: tuple[float | None, float | None] = (None, None)
    baseline_ci: tuple[float | None, float | None] = (None, None)
    change: float | None = None

    def __post_init__(self) -> None:
        _check("kind", self.kind, ("threshold", "baseline"))
        _check("outcome", self.outcome, OUTCOMES)
        _check("severity", self.severity, RULE_SEVERITIES)
        _check("on", self.on, JUDGED_ON)

    @property
    def unmet(self) -> bool:
        """The rule was not met: it failed, or had nothing to judge."""
        return self.outcome in UNMET

    @property
    def blocking(self) -> bool:
        """Not met at severity ``fail``: this outcome fails the gate (``warn`` never does)."""
        return self.unmet and self.severity == "fail"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "rule": self.rule, "auditor": self.auditor, "metric": self.metric,
            "slice": self.slice, "severity": self.severity, "value": _num(self.value), "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.kind == "threshold":
            out["on"] = self.on
        else:
            out.update(baseline=_num(self.baseline), ci=list(_pair(self.ci)), baseline_ci=list(_pair(self.baseline_ci)),
                       change=_num(self.change))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyOutcome:
        """Read an entry of results.json's ``policy`` (files written before ``kind``, ``auditor``
        and ``metric`` were recorded read as thresholds about no named metric)."""
        kind = data.get("kind", "threshold")
        fields: dict[str, Any] = {
            "kind": kind, "rule": str(data["rule"]), "outcome": data["outcome"],
            "severity": data.get("severity", "fail"), "value": data.get("value"), "reason": data.get("reason") or "",
            "auditor": data.get("auditor"), "metric": data.get("metric"), "slice": data.get("slice"),
        }
        if kind == "threshold":
            fields["on"] = data.get("on") or "value"
        else:
            fields.update(baseline=data.get("baseline"), ci=_pair(data.get("ci")),
                          baseline_ci=_pair(data.get("baseline_ci")), change=data.get("change"))
        return cls(**fields)


@dataclass(frozen=True)
class PolicyVerdict:
    """Every policy outcome of a run and the gate's verdict on them, computed here once: the
    run passes unless an outcome is :attr:`PolicyOutcome.blocking`. The exit code, the summary,
    the HTML, the Markdown card and ``results.json``'s ``passed`` all read :attr:`passed`."""

    outcomes: tuple[PolicyOutcome, ...] = ()
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        object.__setattr__(self, "passed", not any(o.blocking for o in self.outcomes))

    @classmethod
    def of(cls, *groups: Iterable[PolicyOutcome]) -> PolicyVerdict:
        """The verdict on the outcomes of one or more groups (thresholds, baseline comparisons)."""
        return cls(tuple(o for group in groups for o in group))

    @property
    def thresholds(self) -> tuple[PolicyOutcome, ...]:
        return tuple(o for o in self.outcomes if o.kind == "threshold")

    @property
    def comparisons(self) -> tuple[PolicyOutcome, ...]:
        return tuple(o for o in self.outcomes if o.kind == "baseline")

    @property
    def blocking(self) -> tuple[PolicyOutcome, ...]:
        return tuple(o for o in self.outcomes if o.blocking)

    def to_list(self) -> list[dict[str, Any]]:
        return [o.to_dict() for o in self.outcomes]

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, Any]]) -> PolicyVerdict:
        return cls(tuple(PolicyOutcome.from_dict(o) for o in data))


# -------------------------------------------------------------------------------- compliance


@dataclass(frozen=True, kw_only=True)
class ClauseEvidence:
    """A metric of the report that bears on a clause, with the worst policy outcome judged on it
    (None when no rule judged it)."""

    auditor: str
    metric: str
    slice: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    policy_outcome: Outcome | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"auditor": self.auditor, "metric": self.metric, "slice": self.slice, "value": _num(self.value),
                "ci_low": _num(self.ci_low), "ci_high": _num(self.ci_high), "policy_outcome": self.policy_outcome}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClauseEvidence:
        return cls(**{k: data.get(k) for k in ("auditor", "metric", "slice", "value", "ci_low", "ci_high",
                                                "policy_outcome")})


@dataclass(frozen=True, kw_only=True)
class ClauseFinding:
    """A warn or fail finding that bears on a clause."""

    auditor: str
    severity: str
    title: str

    def to_dict(self) -> dict[str, Any]:
        return {"auditor": self.auditor, "severity": self.severity, "title": self.title}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClauseFinding:
        return cls(auditor=data["auditor"], severity=data["severity"], title=data["title"])


@dataclass(frozen=True, kw_only=True)
class ClauseVerdict:
    """One clause of the compliance map laid over the report: ``verdict`` is ``concern`` (a
    related warn/fail finding or failed policy rule), ``not assessed`` (nothing measured for it)
    or ``evidence``; ``gaps`` say what the audit lacked for it."""

    id: str
    framework: str
    framework_name: str
    title: str
    summary: str
    verdict: ClauseVerdictName
    evidence: tuple[ClauseEvidence, ...] = ()
    findings: tuple[ClauseFinding, ...] = ()
    gaps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check("verdict", self.verdict, CLAUSE_VERDICTS)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "framework": self.framework, "framework_name": self.framework_name,
                "title": self.title, "summary": self.summary, "verdict": self.verdict,
                "evidence": [e.to_dict() for e in self.evidence], "findings": [f.to_dict() for f in self.findings],
                "gaps": list(self.gaps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClauseVerdict:
        return cls(id=data["id"], framework=data["framework"], framework_name=data["framework_name"],
                   title=data["title"], summary=data["summary"], verdict=data["verdict"],
                   evidence=tuple(ClauseEvidence.from_dict(e) for e in data.get("evidence", [])),
                   findings=tuple(ClauseFinding.from_dict(f) for f in data.get("findings", [])),
                   gaps=tuple(data.get("gaps", [])))


@dataclass(frozen=True, kw_only=True)
class ComplianceAssessment:
    """The compliance map's verdict on a report, clause by clause, and which mapping made it
    (its ``version`` and ``reviewed`` date). Empty when the report was never assessed."""

    mapping_version: int | None = None
    mapping_reviewed: str = ""
    clauses: tuple[ClauseVerdict, ...] = ()

    def clause(self, clause_id: str) -> ClauseVerdict:
        for c in self.clauses:
            if c.id == clause_id:
                return c
        raise KeyError(f"no clause {clause_id!r} in the compliance assessment")

    def to_dict(self) -> dict[str, Any]:
        return {"mapping_version": self.mapping_version, "mapping_reviewed": self.mapping_reviewed,
                "clauses": [c.to_dict() for c in self.clauses]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ComplianceAssessment:
        if not data:
            return cls()
        return cls(mapping_version=data.get("mapping_version"), mapping_reviewed=data.get("mapping_reviewed") or "",
                   clauses=tuple(ClauseVerdict.from_dict(c) for c in data.get("clauses", [])))
