"""Adversarial checks of the four responsible-AI auditors on token classifiers (issue 16):
fairness, explainability, robustness and privacy on odd tag sets, schemes and data, hostile
options, and their numbers against a hand count. A failing test here is a finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit import AuditConfig, run_audit
from tests._tiny import random_iob2_sentences, save_tiny_token_model

WORDS = ["Alice", "met", "Bob", "in", "Paris", "and", "New", "York", "today"]
FAST = {"fairness": {"n_bootstrap": 50, "max_name_sentences": 3, "max_switch_sentences": 10, "min_names": 2,
                     "min_group_size": 5}}


@pytest.fixture(scope="module")
def token_model(tmp_path_factory) -> Path:
    return save_tiny_token_model(tmp_path_factory.mktemp("tok") / "model", max_length=16)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n: int, seed: int = 0, **extra) -> list[dict]:
    return [{"tokens": w, "ner_tags": t, **extra}
            for w, t in random_iob2_sentences(n, words=WORDS, max_len=8, seed=seed)]


def _column(table, name: str) -> list:
    return [r[table.columns.index(name)] for r in table.rows]


def _audit(tmp_path: Path, model: Path, data: Path, *, auditors: list[str], **kw):
    return run_audit(AuditConfig(model=str(model), data=str(data), out=str(tmp_path / "out"), auditors=auditors,
                                 options=FAST, **kw), progress=False)


@pytest.mark.parametrize("missing", [None, "", "  "])
def test_a_missing_sensitive_value_is_the_named_missing_group_not_a_failure(tmp_path, token_model, missing):
    """A sentence whose sensitive value is null or empty was a fairlearn ValueError ("contains
    missing values") and a failed fairness section; the text loader makes it the group
    '(missing)', and the token path now does the same for every auditor."""
    rows = _rows(30, group="a")
    for r in rows[:6]:
        r["group"] = missing
    report = _audit(tmp_path, token_model, _jsonl(tmp_path / "d.jsonl", rows), auditors=["fairness", "performance"],
                    sensitive=["group"])
    fairness = report.result("fairness")
    assert fairness.status == "ok", fairness.reason
    table = next(t for t in fairness.tables if t.name == "token_groups")
    col = {c: i for i, c in enumerate(table.columns)}
    by_group = {r[col["group"]]: r[col["sentences"]] for r in table.rows}
    assert by_group == {"a": 24, "(missing)": 6}
    assert report.result("performance").status == "ok"
