"""Adversarial checks of the four responsible-AI auditors on token classifiers (issue 16):
fairness, explainability, robustness and privacy on odd tag sets, schemes and data, hostile
options, and their numbers against a hand count. A failing test here is a finding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


@pytest.mark.parametrize("types", [["location", "person"], ["GPE", "ORGANIZATION", "PERSON"], ["corporation"],
                                   ["LOC", "ORG", "PER"]])
def test_entity_swap_pool_covers_wnut_and_ontonotes_type_spellings(types):
    """The robustness auditor's ``swap_entity`` family drew its pool only for the exact spellings
    PER/LOC/ORG: a WNUT-17 model (``person``/``location``) or an OntoNotes one (``PERSON``/``GPE``)
    got an empty pool and the family was silently never run (``token_unrealigned`` 0, no F1, no note),
    while the fairness name swaps read those same types in any case."""
    from audit.auditors.robustness._token_perturb import SwapPool
    from audit.selftest.ner_demo import load_lexicon

    pool = SwapPool.from_lexicon(load_lexicon(), types=types)
    assert sorted(pool.by_type) == sorted(types)
    assert all(len(v) > 10 for v in pool.by_type.values()), {k: len(v) for k, v in pool.by_type.items()}
    assert pool.by_type.get("MISC") is None


def test_swap_entity_runs_for_a_wnut_style_tagger(tmp_path):
    labels = ["O", "B-person", "I-person", "B-location", "I-location"]
    model = save_tiny_token_model(tmp_path / "m", labels=labels, max_length=16)
    rows = [{"tokens": r["tokens"], "ner_tags": [t.replace("PER", "person").replace("LOC", "location")
                                                 for t in r["ner_tags"]]} for r in _rows(20)]
    report = run_audit(AuditConfig(model=str(model), data=str(_jsonl(tmp_path / "d.jsonl", rows)),
                                   out=str(tmp_path / "o"), auditors=["robustness"],
                                   options={"robustness": {"token_sentences": 10, "context_attack_words": 0,
                                                           "token_perturbations": ["swap_entity"]}}),
                       progress=False)
    result = report.result("robustness")
    assert result.status == "ok", result.reason
    assert 0.0 <= result.metric("token_invariance_pass_rate", "swap_entity").value <= 1.0


def test_explainability_options_a_token_model_cannot_honour_are_stated_not_dropped(tmp_path, token_model):
    """``methods: [lime, kernel_shap, ...]`` and ``target_class`` were silently ignored on a token
    model (the section ran other methods and said nothing); the section now notes each one."""
    data = _jsonl(tmp_path / "d.jsonl", _rows(12))
    options = {"explainability": {"methods": ["lime", "occlusion"], "target_class": "nonexistent",
                                  "explain_sentences": 2, "faithfulness": False, "sanity_check": False}}
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), out=str(tmp_path / "o"),
                                   auditors=["explainability"], options=options), progress=False)
    result = report.result("explainability")
    assert result.status == "ok", result.reason
    assert result.extra["methods"] == ["occlusion"]
    notes = " ".join(result.extra["task_notes"])
    assert "methods lime" in notes and "target_class 'nonexistent'" in notes, notes


def test_explainability_default_methods_raise_no_ignored_note(tmp_path, token_model):
    data = _jsonl(tmp_path / "d.jsonl", _rows(12))
    options = {"explainability": {"explain_sentences": 2, "n_steps": 4, "faithfulness": False,
                                  "sanity_check": False}}
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), out=str(tmp_path / "o"),
                                   auditors=["explainability"], options=options), progress=False)
    notes = " ".join(report.result("explainability").extra["task_notes"])
    assert "not used for a token classifier" not in notes, notes


def test_train_data_equal_to_eval_data_says_why_membership_did_not_run(tmp_path, token_model):
    """With train data identical to the eval data every sentence is in both files and is left out;
    the section said only "only 0 member/non-member pairs are available", which reads as an
    empty file. The reason now names the overlap."""
    rows = _rows(30)
    data = _jsonl(tmp_path / "d.jsonl", rows)
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), train_data=str(data),
                                   out=str(tmp_path / "o"), auditors=["privacy"],
                                   options={"privacy": {"token_reference": 0, "n_bootstrap": 50}}), progress=False)
    result = report.result("privacy")
    assert result.status == "ok", result.reason
    reason = result.extra["membership"]["reason"]
    assert f"{len(rows)} of the {len(rows)} training sentences also appear in d.jsonl" in reason, reason
    assert "\n" not in reason


def test_membership_loss_auc_equals_sklearn_on_the_same_sentences(tmp_path, token_model):
    """Spot-check of a headline number: with every member and non-member used (pools smaller than
    mia_examples, none shared), the loss attack's AUC is sklearn's ROC AUC of the mean gold-tag
    log-probability per sentence."""
    from sklearn.metrics import roc_auc_score

    from audit.engine.target import Target

    def distinct(rows: list[dict]) -> list[dict]:
        return list({tuple(r["tokens"]): r for r in rows}.values())

    members = distinct(_rows(40, seed=1))[:25]
    keys = {tuple(r["tokens"]) for r in members}
    others = [r for r in distinct(_rows(60, seed=2)) if tuple(r["tokens"]) not in keys][:25]
    assert len(members) == len(others) == 25
    train, holdout = _jsonl(tmp_path / "m.jsonl", members), _jsonl(tmp_path / "h.jsonl", others)
    report = run_audit(AuditConfig(model=str(token_model), data=str(holdout), train_data=str(train),
                                   holdout_data=str(holdout), out=str(tmp_path / "o"), auditors=["privacy"],
                                   options={"privacy": {"mia_examples": 1000, "n_bootstrap": 50, "token_reference": 0,
                                                        "pii": False}}), progress=False)
    result = report.result("privacy")
    assert result.status == "ok", result.reason
    target = Target.load(str(token_model))
    names = list(target.label_names)

    def score(rows: list[dict]) -> list[float]:
        probs = target.predict_words([r["tokens"] for r in rows]).probs
        return [float(np.mean([np.log(max(p[i, names.index(g)], 1e-12)) for i, g in enumerate(r["ner_tags"])]))
                for p, r in zip(probs, rows, strict=True)]

    expected = roc_auc_score(np.r_[np.ones(25), np.zeros(25)], np.r_[score(members), score(others)])
    assert result.metric("mia_auc", "loss").value == pytest.approx(expected, abs=1e-9)


def test_hostile_group_and_lexicon_names_are_escaped_in_the_fairness_section(tmp_path, token_model):
    """Sensitive values and name-lexicon groups reach the fairness tables, charts and findings of
    the token path; a script in either must never reach report.html or README.md live."""
    payload, img = "<script>alert('g')</script>", "<img src=x onerror=alert(2)>"
    lexicon = tmp_path / "lex.json"
    lexicon.write_text(json.dumps({"groups": {payload: {"first_names": {img: ["Ann", "Bea"]}},
                                              "plain": {"first_names": {"f": ["Cy", "Di"]}}}}), encoding="utf-8")
    data = _jsonl(tmp_path / "d.jsonl", _rows(20, group=payload))
    out = tmp_path / "o"
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), out=str(out), auditors=["fairness"],
                                   sensitive=["group"], options={"fairness": {**FAST["fairness"],
                                                                              "name_lexicon": str(lexicon)}}),
                       progress=False)
    assert report.result("fairness").status == "ok", report.result("fairness").reason
    html = (out / "report.html").read_text(encoding="utf-8")
    card = (out / "README.md").read_text(encoding="utf-8")
    assert payload not in html and img not in html and payload not in card and img not in card
    assert "&lt;script&gt;alert(" in html  # shown, escaped
