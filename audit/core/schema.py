"""results.json's JSON schema, kept in the package (audit/data_files/results.schema.json), and
validation against it: of a whole report, or of one auditor's section (a resumed one)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any


def schema_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data_files" / "results.schema.json"


def _schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@functools.cache
def _validator(definition: str | None) -> Any:
    """A validator for the whole schema or one of its ``$defs``, with the schema itself checked
    once: ``jsonschema.validate`` re-checks the schema against its metaschema on every call (0.9 s
    of the six validations in one audit of MiniLM)."""
    import jsonschema

    schema = _schema()
    if definition is not None:
        schema = {**schema["$defs"][definition], "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate(data: dict[str, Any], definition: str | None) -> None:
    """Raise the error ``jsonschema.validate`` would raise (its best match), if any."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(definition).iter_errors(data))
    if error is not None:
        raise error


def validate_results(data: dict[str, Any]) -> None:
    """Validate a results.json document against the schema kept in the package."""
    _validate(data, None)


def validate_result(data: dict[str, Any]) -> None:
    """Validate one section (an auditor's result) against the schema's result definition."""
    _validate(data, "result")
