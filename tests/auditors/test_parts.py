"""Auditors are built of parts that return values (STYLE: "parts return values, not
out-parameters"): no function of an auditor fills a list or dict of results passed in."""

from __future__ import annotations

import ast
from pathlib import Path

import audit.auditors

RESULT_FIELDS = {"metrics", "tables", "figures", "findings", "extra", "timings"}
FILLING = {"append", "extend", "insert", "update", "setdefault"}


def _filled(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    """Whether ``function`` adds to its parameter ``name``: name.append(...), name += ...,
    name[key] = ..., and the like (reading it is fine)."""
    for node in ast.walk(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FILLING
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name):
            return True
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name) and target.id == name:
                return True
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and target.value.id == name:
                return True
    return False


def _out_parameters(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            if arg.arg in RESULT_FIELDS and _filled(node, arg.arg):
                found.append(f"{path.name}:{node.lineno} {node.name}({arg.arg})")
    return found


def test_no_auditor_function_fills_results_passed_in() -> None:
    root = Path(audit.auditors.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 10
    assert [p for f in files for p in _out_parameters(f)] == []


def test_the_check_tells_filling_from_reading(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def _report(self, info, metrics, findings, timings, tables):\n"
        "    metrics += [Metric('a', 1.0)]\n"
        "    findings.append(Finding('info', 'x'))\n"
        "    timings['step'] = 1.0\n"
        "    return tables[0]\n"
        "def _findings(metrics: dict[str, Metric]) -> list[Finding]:\n"
        "    return [Finding('info', str(metrics['f1'].value))]\n")
    assert _out_parameters(bad) == ["bad.py:1 _report(metrics)", "bad.py:1 _report(findings)",
                                    "bad.py:1 _report(timings)"]
