"""Auditors are built of parts that return values (STYLE: "parts return values, not
out-parameters"): no function of an auditor takes a list or dict of results to fill."""

from __future__ import annotations

import ast
from pathlib import Path

import audit.auditors

RESULT_FIELDS = {"metrics", "tables", "figures", "findings", "extra", "timings"}


def _out_parameters(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
            if arg.arg in RESULT_FIELDS and annotation.startswith(("list", "dict", "List", "Dict")):
                found.append(f"{path.name}:{node.lineno} {node.name}({arg.arg}: {annotation})")
    return found


def test_no_auditor_function_takes_results_to_fill() -> None:
    root = Path(audit.auditors.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    assert [p for f in files for p in _out_parameters(f)] == []


def test_the_check_sees_an_out_parameter(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def _report(self, info: dict, metrics: list[Metric], findings: list[Finding]) -> None: ...\n")
    assert _out_parameters(bad) == ["bad.py:1 _report(metrics: list[Metric])",
                                    "bad.py:1 _report(findings: list[Finding])"]
