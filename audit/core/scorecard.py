"""The first-screen scorecard: one row per audited area (performance, fairness, explainability,
robustness, privacy, and any plugin auditor), each with a verdict word, its key number with the
interval, the rule that gave the verdict and a link to the section.

Built once, by the runner, after the auditors ran and the policy was judged
(:func:`build_scorecard`), and stored in ``results.json`` (``scorecard``); the HTML report and
the Markdown card print the stored rows, so a pipeline and a person read the same verdicts.

Two declared tables hold every decision:

* :data:`KEY_NUMBERS`: which metric is each built-in area's key number (and which are shown
  beside it), and whether the worst slice or the overall value is shown. An auditor missing
  from it (a plugin) gets a row with no number, its verdict from its findings.
* :data:`VERDICT_RULES`: the rules, in order; the first that applies gives the verdict, and
  its words go into the row.

Plain frozen data with ``to_dict`` / ``from_dict``; nothing here imports the rest of the
package at import time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from audit.core.results import AuditorResult, Metric
    from audit.core.verdicts import PolicyOutcome

ScorecardVerdict = Literal["concern", "no concern found", "not judgeable"]
SCORECARD_VERDICTS: tuple[str, ...] = ("concern", "no concern found", "not judgeable")
Pick = Literal["overall", "lowest", "highest"]
PICKS: tuple[str, ...] = ("overall", "lowest", "highest")

BAD_VERDICT = "scorecard verdict must be one of {allowed}, got {got!r}"
BAD_PICK = "key number pick must be one of {allowed}, got {got!r}"
# Printed above the scorecard by the HTML report and the Markdown card (one source for both).
SCORECARD_NOTE = ("One line per area: the verdict, the key number with its 95% interval (the worst slice where a "
                  "metric is reported per group, method or recipe) and the rule that gave the verdict. "
                  "\u201cNo concern found\u201d covers only what the section tested.")
# The longest finding title a row quotes; the section holds it whole.
MAX_REASON_CHARS = 240


def _num(value: Any) -> float | None:
    """A JSON-safe float: None, NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------ declared tables


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    """One number an area shows: the first of ``metrics`` the section reported, read ``pick``
    (``overall``: the value without a slice; ``lowest`` / ``highest``: the worst slice, for a
    metric reported per group, method or recipe). ``label`` says in words what it is."""

    metrics: tuple[str, ...]
    pick: Pick = "overall"
    label: str = ""

    def __post_init__(self) -> None:
        if self.pick not in PICKS:
            raise ValueError(BAD_PICK.format(allowed=", ".join(PICKS), got=self.pick))


@dataclass(frozen=True, kw_only=True)
class AreaSpec:
    """A built-in area: its name, its key number (``key``), the numbers shown beside it
    (``also``) and why the key number can be absent from a section that ran (``absent``)."""

    area: str
    key: KeySpec
    also: tuple[KeySpec, ...] = ()
    absent: str = ""


# The key numbers the issue asks a reviewer to see first (issue 19). Metric names are the
# auditors' declared ``metric_names``; a test checks each one is declared.
KEY_NUMBERS: Mapping[str, AreaSpec] = {
    "performance": AreaSpec(
        area="performance",
        key=KeySpec(metrics=("entity_f1_micro", "accuracy", "micro_f1"), label=(
            "entity-level F1 (seqeval, strict) for a tagger; accuracy for a single-label classifier; "
            "micro F1 for a multi-label one")),
        also=(KeySpec(metrics=("entity_f1_macro", "macro_f1"), label="macro F1"),),
        absent="the section reported no headline score"),
    "fairness": AreaSpec(
        area="fairness",
        key=KeySpec(metrics=("demographic_parity_ratio", "name_recognition_ratio"), pick="lowest", label=(
            "lowest group selection rate over the highest (demographic parity ratio, worst slice; the "
            "four-fifths rule reads under 0.8 as adverse impact); for a tagger, the lowest origin group's "
            "whole-name PER recognition rate over the best group's (name swaps)")),
        also=(KeySpec(metrics=("equalized_odds_difference", "entity_switched_f1_gap"), pick="highest",
                      label="worst equalized-odds difference; for a tagger, the widest entity-switched F1 gap "
                            "to the best origin group"),),
        absent=("no group was large enough to compare (no sensitive column, or every group under the "
                "fairness auditor's min_group_size): pass --sensitive, or audit more rows")),
    "explainability": AreaSpec(
        area="explainability",
        key=KeySpec(metrics=("faithfulness_gain_over_random",), pick="lowest", label=(
            "least faithful method's gain over random words (comprehensiveness and sufficiency; above 0: "
            "its top words matter more than random ones)")),
        also=(KeySpec(metrics=("sanity_rank_correlation",), pick="highest", label=(
            "sanity check: highest rank correlation with the trained model's attributions after "
            "randomising the model (a method at or above the threshold fails the check, as a finding)")),),
        absent="no faithfulness check ran (faithfulness off, or no row explained)"),
    "robustness": AreaSpec(
        area="robustness",
        key=KeySpec(metrics=("accuracy_under_attack", "token_perturbed_entity_f1"), pick="lowest",
                    label="accuracy under the strongest adversarial attack recipe; for a tagger, entity F1 "
                          "under the most damaging perturbation"),
        also=(KeySpec(metrics=("invariance_flip_rate", "token_entity_f1_drop"), pick="highest",
                      label="worst invariance flip rate (share of predictions a harmless edit changes); for a "
                            "tagger, the largest entity F1 drop under a perturbation"),),
        absent="no attack and no invariance test ran"),
    "privacy": AreaSpec(
        area="privacy",
        key=KeySpec(metrics=("mia_leakage_margin",), label=(
            "membership-inference attack AUC over the best blind baseline (the part of the attack's "
            "success that needs the model)")),
        also=(KeySpec(metrics=("mia_auc",), label="strongest attack's AUC (0.5 is chance)"),),
        absent=("leakage cannot be judged: members and non-members differ even without the model, on "
                "matched rows too")),
}


@dataclass(frozen=True, kw_only=True)
class _Evidence:
    """What the verdict rules read about one section."""

    result: AuditorResult
    spec: AreaSpec | None
    has_number: bool
    policy: tuple[PolicyOutcome, ...]


def _rule_not_run(e: _Evidence) -> str | None:
    if e.result.status == "ok":
        return None
    return f"section {e.result.status}: {e.result.reason or 'no reason recorded'}"


def _rule_finding(e: _Evidence) -> str | None:
    rank = {"fail": 0, "warn": 1}
    serious = sorted((f for f in e.result.findings if f.severity in rank), key=lambda f: rank[f.severity])
    if not serious:
        return None
    worst = serious[0]
    more = f" (and {len(serious) - 1} more)" if len(serious) > 1 else ""
    return f"{worst.severity}: {_clip(worst.title)}{more}"


def _rule_policy(e: _Evidence) -> str | None:
    failed = [o for o in e.policy if o.outcome == "fail"]
    if not failed:
        return None
    return "policy rule not met: " + "; ".join(o.rule for o in failed)


def _rule_no_number(e: _Evidence) -> str | None:
    if e.spec is None or e.has_number:
        return None
    return e.spec.absent or "the section measured none of its key numbers"


def _rule_clear(e: _Evidence) -> str | None:
    if e.spec is None:
        return "no warn or fail finding (this auditor has no declared key number)"
    return "no warn or fail finding, and no policy rule on this section failed"


@dataclass(frozen=True, kw_only=True)
class VerdictRule:
    """One rule of the scorecard: when ``applies`` returns a reason, the row gets ``verdict``
    and the rule's ``text``."""

    id: str
    verdict: ScorecardVerdict
    text: str
    applies: Callable[[_Evidence], str | None]


# In order: the first rule that applies gives the verdict.
VERDICT_RULES: tuple[VerdictRule, ...] = (
    VerdictRule(id="not_run", verdict="not judgeable", applies=_rule_not_run,
                text="A skipped or failed section is not judgeable; its reason is given."),
    VerdictRule(id="finding", verdict="concern", applies=_rule_finding,
                text="Any warn or fail finding of the section is a concern; the worst is named."),
    VerdictRule(id="policy", verdict="concern", applies=_rule_policy,
                text="A policy threshold on the section's metrics that failed is a concern."),
    VerdictRule(id="no_key_number", verdict="not judgeable", applies=_rule_no_number,
                text="A section that ran but measured none of its key numbers is not judgeable; why is given."),
    VerdictRule(id="clear", verdict="no concern found", applies=_rule_clear,
                text=("A section that ran, measured its key number (when it declares one) and raised no warn or "
                      "fail finding and no failed policy rule: no concern found. Not a proof of absence: only "
                      "what the section tested.")),
)


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# ------------------------------------------------------------------------------------ values


@dataclass(frozen=True, kw_only=True)
class KeyNumber:
    """A number a row shows: the metric, the slice it was read on (the worst one, for a metric
    reported per slice), its value and 95% interval, and what it is in words."""

    metric: str
    slice: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "slice": self.slice, "value": _num(self.value), "ci_low": _num(self.ci_low),
                "ci_high": _num(self.ci_high), "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyNumber:
        return cls(metric=data["metric"], slice=data.get("slice"), value=data.get("value"),
                   ci_low=data.get("ci_low"), ci_high=data.get("ci_high"), label=data.get("label") or "")


@dataclass(frozen=True, kw_only=True)
class ScorecardRow:
    """One area's line: ``verdict`` (concern / no concern found / not judgeable), its key number
    (``key``, None for an auditor without one or a section that measured none), the numbers
    shown beside it (``also``), the rule that gave the verdict (``rule`` id and ``rule_text``),
    the ``reason`` (the worst finding, the skip reason...) and the section's anchor."""

    area: str
    auditor: str
    verdict: ScorecardVerdict
    key: KeyNumber | None = None
    also: tuple[KeyNumber, ...] = ()
    rule: str = ""
    rule_text: str = ""
    reason: str = ""
    section: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in SCORECARD_VERDICTS:
            raise ValueError(BAD_VERDICT.format(allowed=", ".join(SCORECARD_VERDICTS), got=self.verdict))
        object.__setattr__(self, "also", tuple(self.also))

    @property
    def concern(self) -> bool:
        return self.verdict == "concern"

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area, "auditor": self.auditor, "verdict": self.verdict,
                "key": self.key.to_dict() if self.key is not None else None,
                "also": [k.to_dict() for k in self.also], "rule": self.rule, "rule_text": self.rule_text,
                "reason": self.reason, "section": self.section}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScorecardRow:
        key = data.get("key")
        return cls(area=data["area"], auditor=data["auditor"], verdict=data["verdict"],
                   key=KeyNumber.from_dict(key) if key else None,
                   also=tuple(KeyNumber.from_dict(k) for k in data.get("also", [])), rule=data.get("rule") or "",
                   rule_text=data.get("rule_text") or "", reason=data.get("reason") or "",
                   section=data.get("section") or "")


@dataclass(frozen=True)
class Scorecard:
    """Every area's row, in the report's section order. Empty for a report never judged (a
    results.json written before the scorecard existed)."""

    rows: tuple[ScorecardRow, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))

    def row(self, auditor: str) -> ScorecardRow:
        for r in self.rows:
            if r.auditor == auditor:
                return r
        raise KeyError(f"no scorecard row for auditor {auditor!r}")

    @property
    def concerns(self) -> tuple[ScorecardRow, ...]:
        return tuple(r for r in self.rows if r.concern)

    def to_dict(self) -> dict[str, Any]:
        """The rows, and the rules once in words (each row also names its own)."""
        return {"rules": [{"id": r.id, "verdict": r.verdict, "text": r.text} for r in VERDICT_RULES],
                "rows": [r.to_dict() for r in self.rows]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Scorecard:
        if not data:
            return cls()
        return cls(tuple(ScorecardRow.from_dict(r) for r in data.get("rows", [])))


# ----------------------------------------------------------------------------------- building


def _pick(metrics: Sequence[Metric], spec: KeySpec) -> KeyNumber | None:
    """The first of the spec's metrics the section reported, read as the spec says."""
    for name in spec.metrics:
        found = [m for m in metrics if m.name == name and _num(m.value) is not None]
        if spec.pick == "overall":
            found = [m for m in found if m.slice is None]
        if not found:
            continue
        if spec.pick == "lowest":
            chosen = min(found, key=lambda m: float(m.value))  # type: ignore[arg-type]
        elif spec.pick == "highest":
            chosen = max(found, key=lambda m: float(m.value))  # type: ignore[arg-type]
        else:
            chosen = found[0]
        return KeyNumber(metric=chosen.name, slice=chosen.slice, value=_num(chosen.value),
                         ci_low=_num(chosen.ci_low), ci_high=_num(chosen.ci_high), label=spec.label)
    return None


def score_row(result: AuditorResult, *, policy: Iterable[PolicyOutcome] = (), title: str | None = None
              ) -> ScorecardRow:
    """One section's row: its key numbers read from :data:`KEY_NUMBERS` (none for an auditor
    not there), its verdict from the first of :data:`VERDICT_RULES` that applies."""
    spec = KEY_NUMBERS.get(result.auditor)
    key = _pick(result.metrics, spec.key) if spec is not None and result.status == "ok" else None
    also = tuple(n for s in (spec.also if spec is not None and result.status == "ok" else ())
                 if (n := _pick(result.metrics, s)) is not None)
    evidence = _Evidence(result=result, spec=spec, has_number=key is not None or bool(also),
                         policy=tuple(o for o in policy if o.auditor == result.auditor))
    for rule in VERDICT_RULES:
        reason = rule.applies(evidence)
        if reason is not None:
            break
    else:  # pragma: no cover - the last rule always applies
        raise AssertionError("no scorecard rule applied")
    area = spec.area if spec is not None else (title or result.auditor)
    return ScorecardRow(area=area, auditor=result.auditor, verdict=rule.verdict, key=key, also=also, rule=rule.id,
                        rule_text=rule.text, reason=reason, section=f"sec-{result.auditor}")


def build_scorecard(*, results: Iterable[AuditorResult], policy: Iterable[PolicyOutcome] = (),
                    titles: Mapping[str, str] | None = None) -> Scorecard:
    """The scorecard of a run: a row per result, in the order given (the report's)."""
    outcomes = tuple(policy)
    titles = titles or {}
    return Scorecard(tuple(score_row(r, policy=outcomes, title=titles.get(r.auditor)) for r in results))
