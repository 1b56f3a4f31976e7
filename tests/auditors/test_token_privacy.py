"""The privacy auditor on a token classifier: membership inference from per-word losses finds the
NER demo's memorised sentences, the entity canary test finds its memorised made-up entities, the
model as a PII detector shows the planted group's names missed, and the clean control is left
alone; the numbers match scikit-learn on the same scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from audit.auditors.privacy._auditor import PrivacyAuditor
from audit.auditors.privacy._membership import attack_scores
from audit.auditors.privacy._token_canary import CANARY_COLUMN_MISSING, CANARY_VALUE_NEEDED, entity_canary
from audit.auditors.privacy._token_membership import TOKEN_ATTACKS, sentence_attack_scores, sentence_phi
from audit.auditors.privacy._token_pii import pii_types, recall_counts, span_tags
from audit.errors import AuditInputError
from audit.tasks.tagging import SCHEMES, entity_spans
from tests.conftest import make_token_context

# The demo's memorised entities are its made-up words (planted.json: column kind, value made_up).
CANARY = {"canary_column": "kind", "canary_value": "made_up", "canary_types": ["LOC", "ORG"]}
FAST = {"n_bootstrap": 200, "token_reference": 0, "mia_examples": 400, **CANARY}


# ------------------------------------------------------------------------------ pure functions

def test_sentence_scores_are_word_attack_means_and_the_worst_word() -> None:
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(4), size=k) for k in (1, 3, 5)]
    gold = [rng.integers(0, 4, size=len(p)) for p in probs]
    scores = sentence_attack_scores(probs=probs, gold=gold)
    assert tuple(scores) == TOKEN_ATTACKS
    for i, (p, g) in enumerate(zip(probs, gold, strict=True)):
        words = attack_scores(np.log(p), g)
        for name in ("loss", "confidence", "entropy", "modified_entropy"):
            assert scores[name][i] == pytest.approx(words[name].mean())
        assert scores["loss"][i] == pytest.approx(np.mean(np.log(p[np.arange(len(g)), g])))
        assert scores["loss_min"][i] == pytest.approx(np.min(np.log(p[np.arange(len(g)), g])))
        py = p[np.arange(len(g)), g]
        assert sentence_phi(probs=probs, gold=gold)[i] == pytest.approx(np.mean(np.log(py) - np.log1p(-py)), rel=1e-6)


def test_out_difference_score_subtracts_the_references_that_did_not_train_on_the_row() -> None:
    from audit.auditors.privacy._token_reference import out_difference_score

    phi = np.array([3.0, 1.0, 5.0])
    ref = np.array([[0.0, 0.0, 4.0], [2.0, 0.0, 4.0]])
    mask = np.array([[True, False, True], [False, False, True]])
    # Row 0: out of the second reference only (3 - 2); row 1: out of both (1 - 0); row 2: in both,
    # so its out mean is its in mean (4) less the in/out gap seen on row 0 (0 - 2): 5 - 6.
    assert out_difference_score(phi=phi, ref_phi=ref, in_mask=mask).tolist() == pytest.approx([1.0, 1.0, -1.0])


def test_pii_types_are_mapped_by_name() -> None:
    tags = ["O", "B-PER", "I-PER", "B-GPE", "I-GPE", "B-ORG", "B-EMAIL", "S-phone_number", "B-MISC"]
    assert pii_types(tags) == {"PER": "person", "GPE": "location", "EMAIL": "email", "phone_number": "phone"}
    assert pii_types(["O", "B-ORG", "B-MISC"]) == {}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("length", [1, 2, 4])
def test_span_tags_read_back_as_one_entity_in_every_scheme(scheme: str, length: int) -> None:
    tags = ["O", *span_tags(etype="PER", length=length, scheme=scheme), "O"]
    spans = entity_spans(tags, scheme=scheme)
    assert [(s.type, s.start, s.end) for s in spans] == [("PER", 1, 1 + length)]


def test_recall_counts_need_the_exact_span_and_type() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O"], ["O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-PER", "I-PER"], ["O", "O"]]
    counts = recall_counts(gold, pred, scheme="IOB2", types=["PER", "LOC"])
    assert counts["PER"].tolist() == [[1, 1], [1, 0], [1, 0]]  # a longer span is a miss
    assert counts["LOC"].tolist() == [[1, 0], [0, 0], [0, 0]]


# ------------------------------------------------------------------------- the planted demo

@pytest.fixture(scope="module")
def planted_result(ner_planted: Any) -> Any:
    ctx = make_token_context(ner_planted, with_train=True, sensitive=["origin"])
    return ctx, PrivacyAuditor(**FAST).run(ctx)


@pytest.fixture(scope="module")
def clean_result(ner_clean: Any) -> Any:
    ctx = make_token_context(ner_clean, with_train=True, sensitive=["origin"])
    return ctx, PrivacyAuditor(**FAST).run(ctx)


@pytest.mark.slow
def test_loss_attack_finds_the_memorised_sentences(planted_result: Any) -> None:
    _, result = planted_result
    assert result.status == "ok", result.reason
    loss = result.metric("mia_auc", "loss")
    assert loss.ci_low > 0.5 and loss.value > 0.6
    leaks = [f for f in result.findings if f.evidence.get("kind") == "leakage" and f.severity in ("warn", "fail")]
    assert leaks, [f.title for f in result.findings]
    assert result.extra["membership"]["ran"] and "loss_min" in result.extra["membership"]["attacks"]


@pytest.mark.slow
def test_clean_control_is_not_flagged(clean_result: Any) -> None:
    _, result = clean_result
    assert result.status == "ok", result.reason
    assert not [f for f in result.findings if f.evidence.get("kind") in ("leakage", "memorisation")
                and f.severity in ("warn", "fail")]
    loss = result.metric("mia_auc", "loss")
    assert loss.ci_low < 0.5 < loss.ci_high or abs(loss.value - 0.5) < 0.05
    canary = result.metric("canary_auc")
    assert abs(canary.value - 0.5) < 0.1 and canary.ci_low < 0.5 + 0.05


@pytest.mark.slow
def test_attack_numbers_equal_sklearn_on_the_same_scores(planted_result: Any) -> None:
    ctx, result = planted_result
    sc = PrivacyAuditor(**FAST).membership_scores(ctx)
    for attack in TOKEN_ATTACKS:
        assert result.metric("mia_auc", attack).value == pytest.approx(roc_auc_score(sc.y, sc.scores[attack]))
        fpr, tpr, _ = roc_curve(sc.y, sc.scores[attack], drop_intermediate=False)
        assert result.metric("mia_tpr_at_1pct_fpr", attack).value == pytest.approx(tpr[fpr <= 0.01].max())


@pytest.mark.slow
def test_canary_finds_the_memorised_made_up_entities(planted_result: Any) -> None:
    _, result = planted_result
    canary = result.metric("canary_auc")
    assert canary.value > 0.65 and canary.ci_low > 0.55
    assert {m.slice for m in result.metrics if m.name == "canary_auc"} == {None, "LOC", "ORG"}
    assert [f.evidence["kind"] for f in result.findings if f.evidence.get("metric") == "canary_auc"] == [
        "memorisation"]
    assert "Entity canary test" in " ".join(result.extra["tested"])


@pytest.mark.slow
def test_canary_auc_equals_sklearn_on_the_entity_scores(ner_planted: Any) -> None:
    from audit.auditors.privacy import _token_canary as canary

    captured = {}
    real = canary._canary_part

    def spy(mem: Any, non: Any, s_mem: Any, s_non: Any, *args: Any, **kwargs: Any) -> Any:
        captured["y"] = np.r_[np.ones(len(s_mem)), np.zeros(len(s_non))]
        captured["s"] = np.r_[s_mem, s_non]
        return real(mem, non, s_mem, s_non, *args, **kwargs)

    ctx = make_token_context(ner_planted, with_train=True)
    options = {**PrivacyAuditor(**FAST).options}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(canary, "_canary_part", spy)
        part = entity_canary(ctx, options=options)
    headline = next(m for m in part.metrics if m.name == "canary_auc" and m.slice is None)
    assert headline.value == pytest.approx(roc_auc_score(captured["y"], captured["s"]))
    assert headline.ci_low < headline.value < headline.ci_high


@pytest.mark.slow
def test_pii_detector_misses_the_planted_groups_names(planted_result: Any, clean_result: Any) -> None:
    _, planted = planted_result
    groups = {m.slice: m.value for m in planted.metrics if m.name == "pii_recall_group"}
    assert min(groups, key=groups.get) == "origin=yo_NG"
    gaps = [f for f in planted.findings if f.evidence.get("kind") == "pii_recall_gap"]
    assert [f.evidence["low"] for f in gaps] == ["origin=yo_NG"]
    assert {m.slice for m in planted.metrics if m.name == "pii_recall"} == {"person", "location"}
    _, clean = clean_result
    assert not [f for f in clean.findings if f.evidence.get("kind") == "pii_recall_gap"]


@pytest.mark.slow
def test_pii_detector_falls_back_to_lexicon_groups_without_a_sensitive_column(ner_planted: Any) -> None:
    from audit.auditors.privacy._token_pii import pii_detector

    ctx = make_token_context(ner_planted)
    part = pii_detector(ctx, options=PrivacyAuditor(**FAST).options)
    groups = {m.slice: m.value for m in part.metrics if m.name == "pii_recall_group"}
    assert set(groups) == {"lexicon:en_US", "lexicon:en_IN", "lexicon:yo_NG", "lexicon:es_MX", "lexicon:vi_VN"}
    assert min(groups, key=groups.get) == "lexicon:yo_NG"
    assert part.extra["pii_detector"]["groups_from"].startswith("the entity lexicon")


@pytest.mark.slow
def test_pii_scan_reads_token_sentences(planted_result: Any) -> None:
    _, result = planted_result
    scanned = result.extra["pii"]["datasets"]
    assert "tokens" in scanned["eval"]["columns_scanned"] and "tokens" in scanned["train"]["columns_scanned"]
    assert result.metric("pii_rows", "eval").value == 0  # the demo holds no e-mail, phone or card


@pytest.mark.slow
def test_canary_options_name_a_real_column(ner_planted: Any) -> None:
    ctx = make_token_context(ner_planted, with_train=True)
    options = {**PrivacyAuditor(**FAST).options, "canary_column": "nope"}
    with pytest.raises(AuditInputError, match=CANARY_COLUMN_MISSING.split("{")[0]):
        entity_canary(ctx, options=options)
    with pytest.raises(AuditInputError, match=CANARY_VALUE_NEEDED.split("{")[0].replace(".", r"\.")):
        entity_canary(ctx, options={**options, "canary_column": "kind", "canary_value": None})


@pytest.mark.slow
def test_without_training_data_membership_and_canary_say_why(ner_planted: Any) -> None:
    result = PrivacyAuditor(**FAST).run(make_token_context(ner_planted))
    assert result.status == "ok", result.reason
    assert not result.extra["membership"]["ran"] and not result.extra["canary"]["ran"]
    assert any("Entity canary test" in line for line in result.extra["not_tested"])


@pytest.mark.slow
def test_reference_taggers_calibrate_the_attack(ner_planted: Any) -> None:
    ctx = make_token_context(ner_planted, with_train=True)
    result = PrivacyAuditor(**{**FAST, "token_reference": 2, "reference_epochs": 6, "mia_examples": 150}).run(ctx)
    ref = result.extra["membership"]["reference"]
    assert ref["ran"] and ref["mode"] == "online" and ref["models"] == 2
    assert result.metric("mia_auc", "reference").value > 0.6


@pytest.mark.slow
def test_section_renders_the_token_parts(planted_result: Any) -> None:
    from audit.report.html import render_section
    from tests._text import one_line

    _, result = planted_result
    html = one_line(render_section(result))
    assert "Entity canary test" in html and "The model as a PII detector" in html
    assert "origin=yo_NG" in html and "worst word" in html


@pytest.mark.slow
def test_a_clean_tagger_from_the_same_generator_is_an_offline_reference(ner_planted: Any, ner_clean: Any) -> None:
    """The control never saw the planted train.jsonl: a reference trained WITHOUT the members."""
    ctx = make_token_context(ner_planted, with_train=True)
    result = PrivacyAuditor(**{**FAST, "reference_models": [str(ner_clean.model_dir)], "mia_examples": 200}).run(ctx)
    ref = result.extra["membership"]["reference"]
    assert ref["ran"] and ref["mode"] == "offline" and ref["models"] == 1
    assert result.metric("mia_auc", "reference").ci_low > 0.5


@pytest.mark.slow
def test_reference_taggers_are_skipped_with_the_reason_when_the_model_is_too_large(ner_planted: Any,
                                                                                    monkeypatch: Any) -> None:
    from audit.auditors.privacy import _reference
    from audit.auditors.privacy._token_reference import token_reference_attack

    monkeypatch.setattr(_reference, "MAX_REFERENCE_PARAMS", 10)
    ctx = make_token_context(ner_planted)
    ref = token_reference_attack(ctx, options=PrivacyAuditor(token_reference=2).options,
                                 sentences=[["Hello", "there"]], gold=[np.zeros(2, dtype=int)], phi=np.zeros(1))
    assert ref.score is None and not ref.info["ran"] and "re-initialising and training it is not cheap" in ref.info[
        "reason"]
