"""Result data: what auditors return and what the report is made of.

Results are plain data (STYLE: "results are data"); rendering lives in :mod:`audit.report`.
Everything here turns into JSON through ``to_dict`` and back through ``from_dict``.

Over the ~400 lines a module should hold because each of the report's value types (Metric,
Table, Figure, Finding, SectionPart, AuditorResult, AuditReport) keeps its own checks and JSON
round trip beside its definition, where a reader of results.json looks for them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from audit.core.scorecard import Scorecard
from audit.core.verdicts import ComplianceAssessment, PolicyVerdict

# 2.0: figures hold the data to draw (no SVG markup); ``policy`` entries name their auditor,
# metric and kind; ``compliance`` holds the clause verdicts; ``scorecard`` the verdict per area
# (added within 2.0: a 2.0 file without it reads as an empty scorecard). A 1.x file given as
# --baseline is read for its metrics (its figures are dropped: a baseline is compared, never drawn).
SCHEMA_VERSION = "2.0"

Status = Literal["ok", "skipped", "failed"]
Severity = Literal["info", "warn", "fail"]
SEVERITIES = ("info", "warn", "fail")


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Metric:
    """One number, with an optional confidence interval and the slice it was measured on."""

    name: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    higher_is_better: bool | None = None
    slice: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _num(self.value),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "higher_is_better": self.higher_is_better,
            "slice": self.slice,
            "description": self.description,
        }

    @property
    def key(self) -> str:
        """The name used by policies: ``name`` or ``name[slice]``."""
        return self.name if self.slice is None else f"{self.name}[{self.slice}]"


@dataclass(frozen=True)
class Finding:
    """Something a reviewer should read: a severity, a one-line title and the evidence."""

    severity: Severity
    title: str
    detail: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "evidence": _jsonable(self.evidence),
        }


UNKNOWN_TABLE_COLUMN = "table {table!r}: {field} names {column!r}, which is not one of its columns {columns}"


@dataclass(frozen=True)
class Table:
    """A titled table; ``columns`` and ``rows`` hold plain values (built from a DataFrame).

    A wide table says what a reader needs on screen: ``shown`` names the columns the report
    shows (in that order), with the whole table collapsed beneath; empty shows every column.
    ``chips`` names status-like columns ("judged", "too small to judge") the report draws as
    short chips rather than wrapping text. Both are presentation only: ``rows`` keeps every
    column, so results.json holds the full table either way.
    """

    name: str
    columns: list[str]
    rows: list[list[Any]]
    title: str = ""
    shown: tuple[str, ...] = ()
    chips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("shown", "chips"):
            names = tuple(getattr(self, name))
            for column in names:
                if column not in self.columns:
                    raise ValueError(UNKNOWN_TABLE_COLUMN.format(table=self.name, field=name, column=column,
                                                                 columns=list(self.columns)))
            object.__setattr__(self, name, names)

    @classmethod
    def from_frame(cls, name: str, frame: Any, *, title: str = "", index: bool = False,
                   shown: Sequence[str] = (), chips: Sequence[str] = ()) -> Table:
        if index:
            frame = frame.reset_index()
        columns = [str(c) for c in frame.columns]
        rows = [[_jsonable(v) for v in row] for row in frame.itertuples(index=False, name=None)]
        if not columns:  # an empty frame has no columns to pick from: show it as it is
            shown, chips = (), ()
        return cls(name=name, columns=columns, rows=rows, title=title, shown=tuple(shown), chips=tuple(chips))

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    @property
    def shown_indices(self) -> list[int]:
        """Positions of the on-screen columns (every column when ``shown`` is empty)."""
        if not self.shown:
            return list(range(len(self.columns)))
        return [self.columns.index(c) for c in self.shown]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "title": self.title, "columns": self.columns, "rows": self.rows}
        # Written only when declared, so a table without them reads and writes as before.
        if self.shown:
            out["shown"] = list(self.shown)
        if self.chips:
            out["chips"] = list(self.chips)
        return out


FigureKind = Literal["bar", "heatmap", "lines", "reliability"]
FIGURE_KINDS: tuple[str, ...] = ("bar", "heatmap", "lines", "reliability")
HEATMAP_COLOURMAPS = ("Blues", "RdYlGn")  # counts; scores where high is good (bias AUCs)
LEGEND_PLACES = ("best", "outside")  # "outside": right of the axes, for many series
BAD_FIGURE_KIND = "figure kind must be one of {kinds}, got {kind!r}"


@dataclass(frozen=True)
class Figure:
    """The data of one figure, drawn by the report (``audit.report.charts.draw``), never markup.

    ``kind`` names the chart and ``data`` holds plain JSON (numbers, strings, lists, dicts) in
    that chart's shape, so results.json alone can redraw every figure. Build one with the
    keyword-only constructors (:meth:`bar`, :meth:`heatmap`, :meth:`lines`, :meth:`reliability`);
    the shapes are also spelled out in results.schema.json.
    """

    name: str
    kind: FigureKind
    data: dict[str, Any]
    caption: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FIGURE_KINDS:
            raise ValueError(BAD_FIGURE_KIND.format(kinds=FIGURE_KINDS, kind=self.kind))
        # Held as the JSON it will be written as (numpy to lists, NaN to None), so the report
        # draws from exactly what results.json stores, whether it renders now or from the file.
        object.__setattr__(self, "data", _jsonable(dict(self.data)))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "caption": self.caption, "data": self.data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        return cls(name=data["name"], kind=data["kind"], data=dict(data["data"]), caption=data.get("caption", ""))

    @classmethod
    def bar(cls, name: str, *, labels: Sequence[str], values: Sequence[float],
            ci_low: Sequence[float | None] | None = None, ci_high: Sequence[float | None] | None = None,
            title: str = "", xlabel: str = "", reference: float | None = None, reference_label: str = "",
            caption: str = "") -> Figure:
        """Horizontal bars, one per label, with optional intervals and a dashed reference line."""
        lows = list(ci_low) if ci_low is not None else [None] * len(values)
        highs = list(ci_high) if ci_high is not None else [None] * len(values)
        bars = [{"label": str(label), "value": v, "ci_low": lo, "ci_high": hi}
                for label, v, lo, hi in zip(labels, values, lows, highs, strict=True)]
        return cls(name, "bar", {"title": title, "xlabel": xlabel, "bars": bars, "reference": reference,
                                 "reference_label": reference_label}, caption)

    @classmethod
    def heatmap(cls, name: str, *, cells: Any, rows: Sequence[str], columns: Sequence[str], title: str = "",
                xlabel: str = "", ylabel: str = "", decimals: int = 0, colourmap: str = "Blues",
                vmin: float | None = None, vmax: float | None = None, caption: str = "") -> Figure:
        """A matrix with its value written in each cell (``decimals`` places); missing cells are None."""
        if colourmap not in HEATMAP_COLOURMAPS:
            raise ValueError(f"colourmap must be one of {HEATMAP_COLOURMAPS}, got {colourmap!r}")
        return cls(name, "heatmap", {
            "title": title, "xlabel": xlabel, "ylabel": ylabel, "rows": [str(r) for r in rows],
            "columns": [str(c) for c in columns], "cells": cells, "decimals": int(decimals),
            "colourmap": colourmap, "vmin": vmin, "vmax": vmax}, caption)

    @classmethod
    def lines(cls, name: str, *, series: Sequence[tuple[str, Sequence[float], Sequence[float]]], title: str = "",
              xlabel: str = "", ylabel: str = "", dotted: Sequence[str] = (), log_x: bool = False,
              log_y: bool = False, diagonal: bool = False, xlim: tuple[float, float] | None = None,
              ylim: tuple[float, float] | None = None, markers: bool = False, legend: str = "best",
              caption: str = "", integer_x: bool = False) -> Figure:
        """Curves ``(name, x, y)``; those named in ``dotted`` are baselines drawn dotted;
        ``diagonal`` adds y = x (chance ROC, perfect calibration); ``integer_x`` ticks the x axis
        at whole numbers only (x counts something: stages, rounds)."""
        if legend not in LEGEND_PLACES:
            raise ValueError(f"legend must be one of {LEGEND_PLACES}, got {legend!r}")
        return cls(name, "lines", {
            "title": title, "xlabel": xlabel, "ylabel": ylabel,
            "series": [{"name": str(n), "x": x, "y": y, "dotted": n in dotted} for n, x, y in series],
            "log_x": log_x, "log_y": log_y, "diagonal": diagonal, "markers": markers, "legend": legend,
            "xlim": xlim, "ylim": ylim, "integer_x": integer_x}, caption)

    @classmethod
    def reliability(cls, name: str, *, confidence: Sequence[float], accuracy: Sequence[float],
                    count: Sequence[int], title: str = "Reliability diagram", caption: str = "") -> Figure:
        """Per calibration bin: mean confidence, accuracy (None for an empty bin) and row count."""
        return cls(name, "reliability", {"title": title, "confidence": confidence, "accuracy": accuracy,
                                         "count": count}, caption)


EXTRA_CLASH = ("two parts of one section both set extra[{key!r}] ({first} and {second}); only lists "
               "(notes) are joined, anything else must come from one part")


@dataclass(frozen=True, kw_only=True)
class SectionPart:
    """What one part of an auditor found (its group metrics, its bias AUCs, its attacks...):
    metrics, tables, figures, findings and ``extra`` values for the section template.

    STYLE's "parts return values, not out-parameters": each part returns one of these and the
    auditor adds them up (``a + b`` or :meth:`merge`, in the order the section shows them) and
    turns the sum into its :class:`AuditorResult` (:meth:`to_result`). Any sequence given is
    stored as a tuple and ``extra`` as a read-only mapping, so a part cannot be changed after
    it is returned.
    """

    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    findings: tuple[Finding, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("metrics", "tables", "figures", "findings"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    def __add__(self, other: SectionPart) -> SectionPart:
        """Both parts, ``self`` first. ``extra`` keys are united; a key both set is an error
        unless both values are lists (notes), which are joined in order."""
        if not isinstance(other, SectionPart):
            return NotImplemented
        extra = dict(self.extra)
        for key, value in other.extra.items():
            if key not in extra:
                extra[key] = value
            elif isinstance(extra[key], list) and isinstance(value, list):
                extra[key] = [*extra[key], *value]
            else:
                raise ValueError(EXTRA_CLASH.format(key=key, first=type(extra[key]).__name__,
                                                    second=type(value).__name__))
        return SectionPart(metrics=self.metrics + other.metrics, tables=self.tables + other.tables,
                           figures=self.figures + other.figures, findings=self.findings + other.findings,
                           extra=extra)

    @classmethod
    def merge(cls, *parts: SectionPart) -> SectionPart:
        """The parts added up in the order given (an empty part when none is given)."""
        total = cls()
        for part in parts:
            total = total + part
        return total

    def to_result(self, *, auditor: str, status: Status = "ok", reason: str = "",
                  timings: Mapping[str, float] | None = None) -> AuditorResult:
        """The section's result, made of this part (usually the merge of all of them)."""
        return AuditorResult(auditor=auditor, status=status, reason=reason, metrics=self.metrics,
                             tables=self.tables, figures=self.figures, findings=self.findings,
                             timings=dict(timings or {}), extra=dict(self.extra))


@dataclass(frozen=True)
class AuditorResult:
    """What one auditor produced. Same shape whatever the input, so reports are uniform."""

    auditor: str
    status: Status = "ok"
    reason: str = ""
    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    findings: tuple[Finding, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str, slice: str | None = None) -> Metric:
        for m in self.metrics:
            if m.name == name and m.slice == slice:
                return m
        raise KeyError(f"{self.auditor} has no metric {name!r} (slice {slice!r})")

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"{self.auditor} has no table {name!r}")

    def replace(self, **changes: Any) -> AuditorResult:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "auditor": self.auditor,
            "status": self.status,
            "reason": self.reason,
            "metrics": [m.to_dict() for m in self.metrics],
            "tables": [t.to_dict() for t in self.tables],
            "figures": [f.to_dict() for f in self.figures],
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "extra": _jsonable(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditorResult:
        return cls(
            auditor=data["auditor"],
            status=data["status"],
            reason=data.get("reason", ""),
            metrics=tuple(Metric(**m) for m in data.get("metrics", [])),
            tables=tuple(Table(**t) for t in data.get("tables", [])),
            figures=tuple(Figure.from_dict(f) for f in data.get("figures", [])),
            findings=tuple(Finding(**f) for f in data.get("findings", [])),
            timings=dict(data.get("timings", {})),
            extra=dict(data.get("extra", {})),
        )


@dataclass
class AuditReport:
    """The whole audit: metadata, one result per auditor, the policy verdict, the compliance
    map's verdict per clause and the scorecard (all judged once, by the runner, and stored as
    they are)."""

    metadata: dict[str, Any]
    results: list[AuditorResult]
    policy: PolicyVerdict = field(default_factory=PolicyVerdict)
    compliance: ComplianceAssessment = field(default_factory=ComplianceAssessment)
    scorecard: Scorecard = field(default_factory=Scorecard)

    def __post_init__(self) -> None:
        if not isinstance(self.policy, PolicyVerdict):
            raise TypeError(f"policy must be a PolicyVerdict (PolicyVerdict.of(outcomes)), "
                            f"got {type(self.policy).__name__}")

    @property
    def passed(self) -> bool:
        """The gate's verdict: False when a rule of severity 'fail' failed or had no metric to judge."""
        return self.policy.passed

    def result(self, auditor: str) -> AuditorResult:
        for r in self.results:
            if r.auditor == auditor:
                return r
        raise KeyError(f"no result for auditor {auditor!r}")

    def findings(self) -> list[tuple[str, Finding]]:
        """All findings, worst first."""
        rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        pairs = [(r.auditor, f) for r in self.results for f in r.findings]
        return sorted(pairs, key=lambda p: rank[p[1].severity])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "metadata": _jsonable(self.metadata),
            "passed": self.passed,
            "policy": self.policy.to_list(),
            "compliance": self.compliance.to_dict(),
            "scorecard": self.scorecard.to_dict(),
            "results": [r.to_dict() for r in self.results],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditReport:
        return cls(
            metadata=data["metadata"],
            results=[AuditorResult.from_dict(r) for r in data["results"]],
            policy=PolicyVerdict.from_list(data.get("policy", [])),
            compliance=ComplianceAssessment.from_dict(data.get("compliance")),
            scorecard=Scorecard.from_dict(data.get("scorecard")),
        )


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and paths into plain JSON values."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)
