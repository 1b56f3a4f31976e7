"""results.json's JSON schema, kept in the package (audit/data_files/results.schema.json), and
validation against it: of a whole report, or of one auditor's section (a resumed one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def schema_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data_files" / "results.schema.json"


def _schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


def validate_results(data: dict[str, Any]) -> None:
    """Validate a results.json document against the schema kept in the package."""
    import jsonschema

    jsonschema.validate(data, _schema())


def validate_result(data: dict[str, Any]) -> None:
    """Validate one section (an auditor's result) against the schema's result definition."""
    import jsonschema

    schema = _schema()
    jsonschema.validate(data, {**schema["$defs"]["result"], "$defs": schema["$defs"]})
