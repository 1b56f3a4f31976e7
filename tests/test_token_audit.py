"""A token classifier audited end to end: CoNLL and JSONL eval data in, the three outputs out, the
entity-level headline equal to seqeval strict on the same predictions, the other auditors skipped
with their reason, and bad token data refused in one line with its line number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit import AuditConfig, run_audit
from audit.cli import main
from tests._text import one_line
from tests._tiny import random_iob2_sentences, save_tiny_token_model

WORDS = ["Alice", "met", "Bob", "in", "Paris", "and", "New", "York", "today", "with", "Carol", "Smith"]


def _sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    return random_iob2_sentences(n, words=WORDS, max_len=9, seed=seed)


def _write_conll(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    lines = ["-DOCSTART- -X- O O", ""]
    for words, tags in sentences:
        lines += [f"{w}\tNNP\t{t}" for w, t in zip(words, tags, strict=True)] + ["\t"]  # a separator holding a tab
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_token_model(tmp_path_factory.mktemp("tok") / "model", max_length=16)


def test_a_token_classifier_is_audited_from_a_conll_file(token_model, tmp_path):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from audit.engine.target import Target

    sentences = _sentences(60) + [(WORDS * 3, ["O"] * len(WORDS) * 3)]  # one longer than the 16-token window
    data = _write_conll(tmp_path / "dev.conll", sentences)
    out = tmp_path / "out"
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), out=str(out)), progress=False)
    assert {p.name for p in out.iterdir()} >= {"report.html", "results.json", "README.md"}
    perf = report.result("performance")
    assert perf.status == "ok", perf.reason
    # The headline equals seqeval strict on the same word predictions, predicted again here.
    target = Target.load(str(token_model))
    words = target.predict_words([w for w, _ in sentences])
    pred = [[target.label_names[i] for i in p] for p in words.preds]
    gold = [t for _, t in sentences]
    expected = f1_score(gold, pred, mode="strict", scheme=IOB2, zero_division=0)
    assert perf.metric("entity_f1_micro").value == pytest.approx(expected, abs=1e-12)
    assert perf.extra["windowed_sentences"] >= 1 and perf.extra["scheme"] == "IOB2"
    for name in ("fairness", "explainability", "robustness"):  # every auditor runs on a tagger (issue 16)
        result = report.result(name)
        assert result.status == "ok", (name, result.reason)
    privacy = report.result("privacy")  # runs on token models; without --train-data no membership test
    assert privacy.status == "ok" and not privacy.extra["membership"]["ran"], privacy.reason
    results = json.loads((out / "results.json").read_text())
    assert results["metadata"]["model"]["task"] == "token-classification"
    assert results["metadata"]["data"]["sentences"] == len(sentences)
    html = one_line((out / "report.html").read_text())
    for row in ("B-PER", "I-PER", "B-LOC", "micro avg", "macro avg", "weighted avg"):
        assert f">{row}<" in html, row  # the token-level report's rows, as the seed document prints them
    assert "Entity-level report (strict, IOB2" in html
    card = (out / "README.md").read_text()
    assert "type: token-classification" in card and "F1 (seqeval, strict)" in card


def test_a_jsonl_token_table_with_a_sentence_column_gives_entity_metrics_by_group(token_model, tmp_path):
    rows = [{"tokens": w, "ner_tags": t, "origin": "a" if i % 2 else "b"} for i, (w, t) in enumerate(_sentences(80))]
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = run_audit(AuditConfig(model=str(token_model), data=str(data), out=str(tmp_path / "o"),
                                   auditors=["performance"], sensitive=["origin"]), progress=False)
    perf = report.result("performance")
    groups = perf.table("groups_origin").to_frame()
    assert sorted(groups["group"]) == ["a", "b"] and groups["sentences"].sum() == 80


@pytest.mark.parametrize(("lines", "problem"), [
    (["Alice\tB-PER", "met", "Bob\tB-PER"], "line 2"),
    (["Alice\tB-PER", "met\tB-ORG"], "B-ORG"),
])
def test_bad_token_data_is_one_line_with_its_line_number(token_model, tmp_path, capsys, lines, problem):
    data = tmp_path / "bad.conll"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(["run", str(token_model), "--data", str(data), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert str(data) in err and problem in err, err


def test_a_conll_file_for_a_sequence_classifier_is_refused(demo_planted, tmp_path, capsys):
    data = _write_conll(tmp_path / "dev.conll", _sentences(3))
    code = main(["run", str(demo_planted.model_dir), "--data", str(data), "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "needs a token classifier" in err and err.count("\n") == 1, err


def test_the_aggregation_choices_are_declared_once():
    from audit.config import AGGREGATIONS
    from audit.tasks import alignment

    assert AGGREGATIONS == alignment.AGGREGATIONS


@pytest.mark.slow
def test_the_token_demo_shows_the_planted_group_recall_gap_and_its_clean_control_does_not(tmp_path, capsys):
    """`rai-audit demo --task token-classification`: the planted origin group's person names go
    missing (its PER recall far below the others'), the policy gate fails on the planted model's
    entity F1; on the clean control from the same builder every group's PER recall is high."""
    from audit.selftest.ner_demo import BIASED_GROUP, build_ner_demo

    code = main(["demo", "--task", "token-classification", "--out", str(tmp_path / "demo"), "--quiet"])
    assert code == 1, capsys.readouterr().err
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    # The demo runs every auditor on the tagger, and none fails (issue 16).
    assert {r["auditor"]: r["status"] for r in results["results"]} == dict.fromkeys(
        ("performance", "fairness", "explainability", "robustness", "privacy"), "ok"), results["results"]
    perf = next(r for r in results["results"] if r["auditor"] == "performance")
    gap = [f["title"] for f in perf["findings"] if "recall by origin" in f["title"]]
    assert gap and gap[0].startswith("PER recall") and f"({BIASED_GROUP})" in gap[0], gap
    groups = next(t for t in perf["tables"] if t["name"] == "groups_origin")
    per = dict(zip([r[0] for r in groups["rows"]], [r[groups["columns"].index("recall PER")] for r in groups["rows"]],
                   strict=True))
    assert per[BIASED_GROUP] < 0.3 and min(v for g, v in per.items() if g not in (BIASED_GROUP, "none")) > 0.9

    clean = build_ner_demo(tmp_path / "clean", seed=0, bias=False, trigger=False, memorise=False)
    report = run_audit(AuditConfig(model=str(clean.model_dir), data=str(clean.eval_path), out=str(tmp_path / "c"),
                                   auditors=["performance"], sensitive=["origin"]), progress=False)
    table = report.result("performance").table("groups_origin").to_frame()
    judged = table[table["group"] != "none"]
    assert judged["recall PER"].min() > 0.9, table
