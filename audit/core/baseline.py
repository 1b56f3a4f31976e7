"""A previous run's results.json as a baseline for regression gating: read safely (a regular
file of bounded size, finite JSON numbers, valid against the schema; a schema 1.x file for its
metrics only), and matched against this run (same data? same model? same checkpoint?)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit.core.results import SCHEMA_VERSION, AuditReport
from audit.core.schema import validate_results
from audit.errors import AuditInputError, printable
from audit.report.outdir import MAX_STATE_BYTES, read_regular

if TYPE_CHECKING:
    from audit.config import AuditConfig

BASELINE_OTHER_DATA = ("the baseline was measured on other data (data fingerprint {theirs}, this run {ours}); "
                       "its metrics are not comparable row for row")
BASELINE_OTHER_MODEL = ("the baseline is of another model ({what}): {theirs} there, {ours} here")
BASELINE_OTHER_CHECKPOINT = "the baseline is of another checkpoint (weights fingerprint {theirs}, this run {ours})"


def baseline_match(baseline: AuditReport, config: AuditConfig, target: Any, data: Any) -> dict[str, Any]:
    """How the baseline relates to this run: same data? same model? Mismatches are stated in the
    report and summary; ``baseline_strict`` makes other data or another model an error. Another
    checkpoint of the same model is the gate's purpose and only noted."""
    meta = baseline.metadata
    theirs_model, theirs_data = meta.get("model", {}) or {}, meta.get("data", {}) or {}
    notes, problems = [], []
    if theirs_data.get("fingerprint") != data.fingerprint:
        problems.append(BASELINE_OTHER_DATA.format(theirs=str(theirs_data.get("fingerprint"))[:12],
                                                   ours=data.fingerprint[:12]))
    for key, ours in (("labels", target.label_names), ("problem_type", target.problem_type)):
        if theirs_model.get(key) != ours:
            problems.append(BASELINE_OTHER_MODEL.format(what=key, theirs=printable(theirs_model.get(key), limit=80),
                                                        ours=printable(ours, limit=80)))
    if theirs_model.get("fingerprint") != target.fingerprint:
        notes.append(BASELINE_OTHER_CHECKPOINT.format(theirs=str(theirs_model.get("fingerprint"))[:12],
                                                      ours=target.fingerprint[:12]))
    if problems and config.baseline_strict:
        raise AuditInputError(f"{config.baseline}: {problems[0]} (--baseline-strict)")
    return {"source": config.baseline,
            "same_data": not any(p.startswith("the baseline was measured") for p in problems),
            "same_model": not any("another model" in p for p in problems),
            "same_checkpoint": theirs_model.get("fingerprint") == target.fingerprint,
            "warnings": problems, "notes": notes}


def load_baseline(path: str | Path) -> AuditReport:
    """A previous run's results.json, for regression gating: valid JSON (no NaN or Infinity),
    valid against the schema, and with at least one defined metric to compare."""
    path = Path(path)
    if not path.exists():
        raise AuditInputError(f"baseline not found: {path}")
    raw = read_regular(path)
    if raw is None:
        raise AuditInputError(f"{path}: the baseline is not a regular file of at most {MAX_STATE_BYTES:,} bytes")

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not a number JSON allows")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text[:20]} is not a finite number")
        return value

    try:
        data = _from_schema_1(json.loads(raw, parse_constant=no_constants, parse_float=finite))
        validate_results(data)
    except (ValueError, RecursionError) as exc:
        raise AuditInputError(f"{path}: the baseline is not valid JSON: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # noqa: BLE001 - jsonschema.ValidationError and friends
        raise AuditInputError(f"{path}: not a rai-audit results.json: {str(exc).splitlines()[0]}") from None
    try:
        report = AuditReport.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:  # a field the schema lets through but the types refuse
        raise AuditInputError(f"{path}: not a rai-audit results.json: {exc}") from None
    if not any(m.value is not None and m.higher_is_better is not None
               for r in report.results if r.status == "ok" for m in r.metrics):
        raise AuditInputError(f"{path}: the baseline has no defined metric to compare against")
    return report


def _from_schema_1(data: Any) -> Any:
    """A results.json of schema 1.x (SVG figures; 1.0 had no compliance block and untyped policy
    entries), read as a baseline: only its metrics are compared, so its figures, policy and
    compliance are dropped rather than converted. Anything else is returned untouched."""
    if not (isinstance(data, dict) and data.get("schema_version") in ("1.0", "1.1")
            and isinstance(data.get("results"), list)):
        return data
    results = [{**r, "figures": []} if isinstance(r, dict) else r for r in data["results"]]
    return {**data, "schema_version": SCHEMA_VERSION, "results": results, "policy": [],
            "compliance": {"mapping_version": 0, "mapping_reviewed": "", "clauses": []}}
