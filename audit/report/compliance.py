"""Compliance mapping: which evidence in the report bears on which clause a reviewer checks.

The clauses (EU AI Act, Regulation (EU) 2024/1689: Art. 9, 10, 13, 15; NIST AI RMF 1.0 MEASURE
2.x) and the metrics and findings that are evidence for each live in a versioned data file,
``audit/data_files/compliance_map.yaml``, so a reviewer can read and extend the mapping without
touching code. :func:`assess` lays a report over it: per clause, the evidence found, its policy
outcome, and whether the clause is backed by evidence, raises a concern, or was not assessed
(a :class:`~audit.core.verdicts.ClauseVerdict`, stored in results.json).

This maps evidence to clauses for a reviewer; it is not a legal determination of conformity.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audit.core.results import AuditReport
from audit.core.verdicts import (
    ClauseEvidence,
    ClauseFinding,
    ClauseVerdict,
    ComplianceAssessment,
    PolicyOutcome,
    PolicyVerdict,
)
from audit.errors import AuditInputError

MAPPING_VERSION = 1
DISCLAIMER = ("This section maps evidence to clauses for a reviewer; it is not a legal determination of "
              "conformity.")
REVIEWER_FIELDS = ("owner", "intended_use", "out_of_scope", "reviewer", "decision", "date", "notes")

MAPPING_UNREADABLE = "{path}: cannot read the compliance mapping: {error}"
MAPPING_INVALID = "{path}: {problem}"


_OUTCOME_RANK = {"fail": 3, "missing": 2, "pass": 1, "not_run": 0}


def mapping_path() -> Path:
    """The mapping shipped with the package."""
    return Path(__file__).resolve().parent.parent / "data_files" / "compliance_map.yaml"


def load_mapping(path: Path | None = None) -> dict[str, Any]:
    """Read a compliance mapping (default: the packaged one) and check its shape."""
    import yaml

    path = mapping_path() if path is None else Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditInputError(MAPPING_UNREADABLE.format(path=path, error=first)) from None
    problem = _shape_problem(raw)
    if problem:
        raise AuditInputError(MAPPING_INVALID.format(path=path, problem=problem))
    return raw


def _shape_problem(raw: Any) -> str:
    if not isinstance(raw, dict):
        return "expected a mapping with version, reviewed, frameworks and clauses"
    if raw.get("version") != MAPPING_VERSION:
        return f"version must be {MAPPING_VERSION}, got {raw.get('version')!r}"
    frameworks = raw.get("frameworks")
    if not isinstance(frameworks, dict) or not frameworks:
        return "frameworks must map a key to a framework's name"
    clauses = raw.get("clauses")
    if not isinstance(clauses, list) or not clauses:
        return "clauses must be a non-empty list"
    seen = set()
    for i, clause in enumerate(clauses):
        where = f"clause {i + 1}"
        if not isinstance(clause, dict):
            return f"{where}: expected a mapping"
        for key in ("id", "framework", "title", "summary"):
            if not isinstance(clause.get(key), str) or not clause[key].strip():
                return f"{where}: {key} must be a non-empty string"
        where = f"clause {clause['id']!r}"
        if clause["id"] in seen:
            return f"{where}: id repeated"
        seen.add(clause["id"])
        if clause["framework"] not in frameworks:
            return f"{where}: framework {clause['framework']!r} is not one of {', '.join(frameworks)}"
        evidence = clause.get("evidence")
        if not isinstance(evidence, list) or not evidence:
            return f"{where}: evidence must be a non-empty list"
        for item in evidence:
            if not isinstance(item, dict) or not isinstance(item.get("auditor"), str):
                return f"{where}: every evidence entry needs an auditor"
            if set(item) - {"auditor", "metric", "slice", "findings"}:
                return f"{where}: unknown keys {sorted(set(item) - {'auditor', 'metric', 'slice', 'findings'})}"
            if ("metric" in item) == (item.get("findings") is True):
                return f"{where}: an evidence entry has either a metric or findings: true, got {item}"
    return ""


def known_metric_names() -> dict[str, set[str]]:
    """Metric names each installed auditor can report: its class's ``metric_names``, the one
    list that policies and this mapping are checked against."""
    from audit.auditors.base import discover

    return {name: set(info.cls.metric_names) for name, info in discover().items() if info.cls is not None}


def validate_mapping(mapping: Mapping[str, Any], known: Mapping[str, set[str]]) -> list[str]:
    """Problems with a mapping against the known metric names (unknown auditor or metric)."""
    problems = []
    for clause in mapping.get("clauses", []):
        for item in clause.get("evidence", []):
            auditor = item.get("auditor")
            if auditor not in known:
                problems.append(f"{clause.get('id')}: unknown auditor {auditor!r}")
            elif "metric" in item and item["metric"] not in known[auditor]:
                problems.append(f"{clause.get('id')}: auditor {auditor!r} reports no metric {item['metric']!r}")
    return problems


def _policy_index(policy: PolicyVerdict) -> dict[tuple[str, str, str | None], list[PolicyOutcome]]:
    """Outcomes by the metric they judged: (auditor, metric, slice)."""
    index: dict[tuple[str, str, str | None], list[PolicyOutcome]] = {}
    for outcome in policy.outcomes:
        if outcome.auditor is not None and outcome.metric is not None:
            index.setdefault((outcome.auditor, outcome.metric, outcome.slice), []).append(outcome)
    return index


def _worst(outcomes: list[str]) -> str | None:
    return max(outcomes, key=lambda o: _OUTCOME_RANK.get(o, 0)) if outcomes else None


def assess(report: AuditReport, mapping: Mapping[str, Any]) -> ComplianceAssessment:
    """The mapping laid over a report: per clause, the evidence the report holds for it and the
    clause's verdict. The runner calls this once, after the policy is judged, and stores the
    result in the report (results.json's ``compliance``); renderers read that.

    * ``concern``: a related warn/fail finding, or a related policy rule failed;
    * ``not assessed``: none of the clause's auditors ran (absent, skipped or failed) or none of
      its metrics is present, and no findings-auditor ran;
    * ``evidence``: otherwise.

    A metric entry without a slice takes the auditor's unsliced (headline) value when it reports
    one, else every slice of that metric. A policy outcome attaches to the metric it judged,
    including the worst slice that a rule without a slice was judged on.
    """
    results = {r.auditor: r for r in report.results}
    policy = _policy_index(report.policy)
    clauses = []
    for clause in mapping["clauses"]:
        evidence: list[ClauseEvidence] = []
        findings: dict[tuple[str, str, str], ClauseFinding] = {}
        gaps: list[str] = []
        assessed = concern = False
        for item in clause["evidence"]:
            auditor = item["auditor"]
            result = results.get(auditor)
            if result is None or result.status != "ok":
                why = ("did not run" if result is None
                       else result.status + (f": {result.reason}" if result.reason else ""))
                gap = f"{auditor} {why}"
                if gap not in gaps:
                    gaps.append(gap)
                continue
            if item.get("findings") is True:
                assessed = True
                for f in result.findings:
                    if f.severity in ("warn", "fail"):
                        findings.setdefault((auditor, f.severity, f.title),
                                            ClauseFinding(auditor=auditor, severity=f.severity, title=f.title))
                        concern = True
                continue
            name, want = item["metric"], item.get("slice")
            same = [m for m in result.metrics if m.name == name]
            if want is not None:
                chosen = [m for m in same if m.slice == want]
            else:
                chosen = [m for m in same if m.slice is None] or same
            if not chosen:
                gaps.append(f"{auditor} reported no {name}" + (f"[{want}]" if want else ""))
            for m in chosen:
                outcome = _worst([p.outcome for p in policy.get((auditor, m.name, m.slice), [])])
                concern = concern or outcome == "fail"
                evidence.append(ClauseEvidence(auditor=auditor, metric=m.name, slice=m.slice, value=m.value,
                                               ci_low=m.ci_low, ci_high=m.ci_high, policy_outcome=outcome))
                assessed = True
        verdict = "concern" if concern else ("evidence" if assessed else "not assessed")
        clauses.append(ClauseVerdict(
            id=clause["id"], framework=clause["framework"],
            framework_name=mapping.get("frameworks", {}).get(clause["framework"], clause["framework"]),
            title=clause["title"], summary=clause["summary"], verdict=verdict, evidence=tuple(evidence),
            findings=tuple(findings.values()), gaps=tuple(gaps)))
    return ComplianceAssessment(mapping_version=mapping.get("version"),
                                mapping_reviewed=str(mapping.get("reviewed", "")), clauses=tuple(clauses))


def reviewer_fields(model_card: Mapping[str, Any] | None) -> dict[str, str]:
    """The reviewer block's fields from the config's ``model_card`` (blank when not given)."""
    card = model_card or {}
    return {k: "" if card.get(k) is None else str(card.get(k)) for k in REVIEWER_FIELDS}
