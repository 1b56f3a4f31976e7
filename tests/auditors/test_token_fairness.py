"""Fairness of a token classifier (NER): gold tags re-aligned after a swap under every scheme,
name-swap recognition equal to a hand count on a rule tagger, entity-switched and per-column F1
equal to seqeval on the same sentences, a malformed name lexicon refused in one line, and the NER
demo's planted origin bias found while its clean control raises nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval import metrics as sqm
from seqeval import scheme as sq

from audit.auditors.fairness._auditor import FairnessAuditor
from audit.auditors.fairness._inputs import JUDGED, TOO_SMALL
from audit.auditors.fairness._token_lexicon import (
    EXPECTED_NAMES,
    EXPECTED_OBJECT,
    LEXICON_KEY,
    LEXICON_UNREADABLE,
    load_name_lexicon,
)
from audit.auditors.fairness._token_names import NAME_TEMPLATES, NO_PERSON_TYPE, name_swap
from audit.auditors.fairness._token_swap import span_tags, swap_entities
from audit.auditors.fairness._token_switch import ORIGINAL, entity_switch, switch_variants
from audit.errors import AuditInputError
from audit.tasks import TOKEN
from audit.tasks.alignment import WordPredictions
from audit.tasks.tagging import Span, entity_spans
from tests.auditors.test_token_performance import encode
from tests.conftest import make_token_context

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
FAST = {"n_bootstrap": 200, "min_names": 2, "min_group_size": 2}

# -- re-alignment ----------------------------------------------------------------------------------


def _swap(tokens: str, tags: str, replacements: list[tuple[tuple[str, int, int], str]], scheme: str) -> Any:
    return swap_entities(tokens=tokens.split(), tags=tags.split(), scheme=scheme,
                         replacements=[(Span(type=t, start=a, end=b), words.split()) for (t, a, b), words
                                       in replacements])


def test_one_word_name_becomes_two_with_begin_and_inside_tags_iob2() -> None:
    out = _swap("I met Bob .", "O O B-PER O", [(("PER", 2, 3), "Ade Koya")], "IOB2")
    assert out.tokens == ("I", "met", "Ade", "Koya", ".")
    assert out.tags == ("O", "O", "B-PER", "I-PER", "O")
    assert out.spans == (Span(type="PER", start=2, end=4),)


def test_two_word_name_becomes_one_iob2_and_iobes() -> None:
    iob2 = _swap("Ann Lee met us", "B-PER I-PER O O", [(("PER", 0, 2), "Bo")], "IOB2")
    assert iob2.tags == ("B-PER", "O", "O")
    iobes = _swap("Ann Lee met us", "B-PER E-PER O O", [(("PER", 0, 2), "Bo")], "IOBES")
    assert iobes.tags == ("S-PER", "O", "O")


def test_iobes_and_bilou_single_tags_grow_into_begin_inside_end() -> None:
    assert _swap("met Bob", "O S-PER", [(("PER", 1, 2), "A B C")], "IOBES").tags == ("O", "B-PER", "I-PER", "E-PER")
    assert _swap("met Bob", "O U-PER", [(("PER", 1, 2), "A B")], "BILOU").tags == ("O", "B-PER", "L-PER")


def test_entities_at_sentence_start_and_end_are_both_replaced() -> None:
    out = _swap("Bob saw Rome", "B-PER O B-LOC", [(("LOC", 2, 3), "Ado Ekiti"), (("PER", 0, 1), "Ade Koya")], "IOB2")
    assert out.tokens == ("Ade", "Koya", "saw", "Ado", "Ekiti")
    assert out.tags == ("B-PER", "I-PER", "O", "B-LOC", "I-LOC")
    assert out.spans == (Span(type="LOC", start=3, end=5), Span(type="PER", start=0, end=2))  # in the order given


def test_adjacent_entities_of_one_type_stay_apart() -> None:
    iob2 = _swap("Ann Bob left", "B-PER B-PER O", [(("PER", 0, 1), "Ade Koya")], "IOB2")
    assert iob2.tags == ("B-PER", "I-PER", "B-PER", "O")
    # IOB1 marks the second of two adjacent same-type entities with B-: kept on the replacement's first word.
    iob1 = _swap("Ann Bob left", "I-PER B-PER O", [(("PER", 1, 2), "Ade Koya"), (("PER", 0, 1), "Ola Oni")], "IOB1")
    assert iob1.tags == ("I-PER", "I-PER", "B-PER", "I-PER", "O")
    assert [(s.start, s.end) for s in entity_spans(list(iob1.tags), scheme="IOB1")] == [(0, 2), (2, 4)]
    # IOE1 marks the first of the two with E-: kept on the replacement's last word.
    ioe1 = _swap("Ann Bob left", "E-PER I-PER O", [(("PER", 0, 1), "Ade Koya")], "IOE1")
    assert ioe1.tags == ("I-PER", "E-PER", "I-PER", "O")


def test_overlapping_replacements_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        _swap("a b c", "B-PER I-PER O", [(("PER", 0, 2), "x"), (("PER", 1, 2), "y")], "IOB2")


def test_io_keeps_the_written_form_of_plain_types() -> None:
    assert span_tags(["PER"], length=2, scheme="IO") == ["PER", "PER"]


_CHUNKS = st.lists(st.tuples(st.sampled_from(["PER", "LOC", "O"]), st.integers(1, 3)), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(chunks=_CHUNKS, scheme=st.sampled_from(["IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU", "IO"]),
       lengths=st.lists(st.integers(1, 3), min_size=6, max_size=6))
def test_after_any_swap_the_strict_entities_are_the_old_ones_moved(chunks: list[tuple[str, int]], scheme: str,
                                                                    lengths: list[int]) -> None:
    """Every scheme: replace every entity by one of another length; the strict entities of the new tags
    are the same types, in the same order, at the new places, and the other words keep their tags."""
    tags = encode(chunks, scheme)
    tokens = [f"w{i}" for i in range(len(tags))]
    spans = entity_spans(tags, scheme=scheme)
    replacements = [(s, [f"r{k}"] * lengths[k]) for k, s in enumerate(spans)]
    out = swap_entities(tokens=tokens, tags=tags, replacements=replacements, scheme=scheme)
    assert entity_spans(list(out.tags), scheme=scheme) == list(out.spans)
    assert [s.type for s in out.spans] == [s.type for s in spans]
    assert [out.spans[k].end - out.spans[k].start for k in range(len(spans))] == lengths[:len(spans)]
    kept = [(w, t) for w, t in zip(out.tokens, out.tags, strict=True) if w.startswith("w")]
    inside = {i for s in spans for i in range(s.start, s.end)}
    assert kept == [(tokens[i], tags[i]) for i in range(len(tags)) if i not in inside]


# -- a rule tagger as the stand-in target -------------------------------------------------------------

PERSON_FIRST = {"Ann", "Bea", "Cid", "Eve"}  # tagged B-PER
PERSON_REST = {"Lee"}  # I-PER after a person word
PLACES = {"Paris"}  # B-LOC
MISTAKEN_FOR_PLACES = {"Dov"}  # a first name tagged B-LOC
LEXICON = {
    "version": 1, "licence": "test names",
    "groups": {
        "a": {"first_names": {"female": ["Ann", "Bea"], "male": ["Cid"]}, "last_names": ["Lee"], "places": ["Paris"]},
        "b": {"first_names": {"female": ["Dov", "Eve"], "male": ["Fay"]}, "last_names": ["Moe"], "places": ["Rome"]},
    },
}
EVAL_ROWS = [
    (["Ann", "Lee", "visited", "Paris", "."], ["B-PER", "I-PER", "O", "B-LOC", "O"], "x"),
    (["We", "saw", "Eve", "in", "Paris", "."], ["O", "O", "B-PER", "O", "B-LOC", "O"], "x"),
    (["Paris", "is", "big", "."], ["B-LOC", "O", "O", "O"], "y"),
    (["Cid", "Lee", "left", "."], ["B-PER", "I-PER", "O", "O"], "y"),
    (["Nothing", "here", "."], ["O", "O", "O"], "y"),
]


class _RuleTagger:
    """Tags words by the sets above; counts its calls (each part must predict in one batch)."""

    task = TOKEN

    def __init__(self, labels: list[str] = LABELS) -> None:
        self.label_names = labels
        self.calls: list[int] = []

    def tags(self, words: list[str]) -> list[str]:
        out: list[str] = []
        for w in words:
            if w in PERSON_FIRST:
                out.append("B-PER")
            elif w in PERSON_REST and out and out[-1].endswith("-PER"):
                out.append("I-PER")
            elif w in PLACES | MISTAKEN_FOR_PLACES:
                out.append("B-LOC")
            else:
                out.append("O")
        return out

    def predict_words(self, sentences: list[list[str]], **_: Any) -> WordPredictions:
        self.calls.append(len(sentences))
        at = {t: i for i, t in enumerate(self.label_names)}
        probs = [np.eye(len(self.label_names))[[at.get(t, 0) for t in self.tags(list(s))]].reshape(len(s), -1)
                 for s in sentences]
        n = len(sentences)
        return WordPredictions(probs=probs, windowed=np.zeros(n, bool), empty_words=np.zeros(n, int),
                               cut_words=np.zeros(n, int))


def _context(tmp_path: Path, target: Any, **config: Any) -> Any:
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.tasks.token_data import read_token_data

    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"tokens": t, "ner_tags": g, "site": s}) + "\n" for t, g, s in EVAL_ROWS))
    data = read_token_data(path, tag_names=LABELS)
    cfg = AuditConfig(model="rule-tagger", data=str(path), **config)
    return AuditContext(config=cfg, target=target, data=data, progress_enabled=False)


def _lexicon(tmp_path: Path, content: Any = None) -> Path:
    path = tmp_path / "names.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content or LEXICON))
    return path


def _options(**extra: Any) -> dict[str, Any]:
    return FairnessAuditor(**FAST, **extra).options


def test_name_swap_counts_equal_a_hand_count_in_one_batch(tmp_path: Path) -> None:
    target = _RuleTagger()
    ctx = _context(tmp_path, target)
    lexicon = load_name_lexicon(_lexicon(tmp_path))
    part = name_swap(ctx, _options(), lexicon=lexicon)
    contexts = len(NAME_TEMPLATES) + 3  # the three eval sentences with a person
    assert target.calls == [6 * contexts]  # six names, every context, one call
    rows = {(r["slice"], r["group"]): r for r in part.tables[0].to_frame().to_dict("records")}
    # a: "Ann Lee", "Bea Lee", "Cid Lee" always whole persons. b: "Dov Moe" a place (other type),
    # "Eve Moe" a person cut short (missed), "Fay Moe" nothing (missed).
    expected = {("origin", "a"): (1, 0, 0), ("origin", "b"): (0, 1 / 3, 2 / 3),
                ("first-name list", "female"): (0.5, 0.25, 0.25), ("first-name list", "male"): (0.5, 0, 0.5)}
    for key, (rec, other, missed) in expected.items():
        row = rows[key]
        assert (row["recognised"], row["other_type"], row["missed"]) == pytest.approx((rec, other, missed)), key
    assert rows[("origin×first-name list", "a×male")]["status"] == TOO_SMALL  # one name, min_names 2
    assert rows[("origin×first-name list", "a×female")]["status"] == JUDGED
    charts = {f.name: [b["label"] for b in f.data["bars"]] for f in part.figures}
    assert not any(label.startswith("a×male") for label in charts["name_recognition:origin×first-name list"])
    (finding,) = [f for f in part.findings if f.evidence["slice"] == "origin"]
    assert finding.severity == "fail"
    assert (finding.evidence["group"], finding.evidence["reference_group"]) == ("b", "a")
    assert finding.evidence["gap"] == pytest.approx(1.0)


def test_without_a_person_type_the_name_swap_says_so(tmp_path: Path) -> None:
    labels = ["O", "B-LOC", "I-LOC"]
    part = name_swap(_context(tmp_path, _RuleTagger(labels)), _options(), lexicon=load_name_lexicon())
    assert part.extra["notes"] == [NO_PERSON_TYPE.format(tags=labels, types="PER, PERSON, PERS")]
    assert not part.findings and not part.tables


def _seqeval_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    return sqm.f1_score(gold, pred, mode="strict", scheme=sq.IOB2, zero_division=0)


def test_entity_switched_f1_equals_seqeval_on_the_switched_sentences(tmp_path: Path) -> None:
    target = _RuleTagger()
    ctx = _context(tmp_path, target)
    lexicon = load_name_lexicon(_lexicon(tmp_path))
    part = entity_switch(ctx, _options(), lexicon=lexicon)
    assert target.calls == [2 * 4, len(EVAL_ROWS)]  # both groups' four sentences at once, then the shared eval pass
    rows = {r["group"]: r for r in part.tables[0].to_frame().to_dict("records")}
    chosen = [r for r in EVAL_ROWS if any(t != "O" for t in r[1])]
    for group in ("a", "b"):
        variants = switch_variants(tokens=[r[0] for r in chosen], tags=[r[1] for r in chosen], scheme="IOB2",
                                   person="PER", place="LOC", lexicon=lexicon, group=group,
                                   rng=ctx.rng(f"fairness:switch:{group}"))
        gold = [list(v.tags) for v in variants]
        assert rows[group]["f1"] == pytest.approx(_seqeval_f1(gold, [target.tags(list(v.tokens)) for v in variants]))
    assert rows[ORIGINAL]["f1"] == pytest.approx(_seqeval_f1([r[1] for r in chosen],
                                                             [target.tags(r[0]) for r in chosen]))
    assert rows["a"]["f1"] == 1.0 and rows["b"]["f1"] < 1.0


def test_per_column_entity_f1_equals_seqeval_on_each_group_with_a_lexicon_file(tmp_path: Path) -> None:
    target = _RuleTagger()
    names = _lexicon(tmp_path)
    result = FairnessAuditor(**FAST, name_lexicon=str(names)).run(_context(tmp_path, target, sensitive=["site"]))
    assert result.status == "ok", result.reason
    assert result.extra["name_swap"]["lexicon"] == str(names)  # the option's lexicon, not the built-in one
    assert sorted(result.table("entity_switched").to_frame()["group"]) == sorted([ORIGINAL, "a", "b"])
    # The one name of a×male is too small to judge: its row is collapsed, and no chart draws it.
    from audit.report.html import render_section

    html = render_section(result)
    collapsed = re.findall(r"<details[^>]*>(?:(?!</details>).)*too small to judge.*?</details>", html, flags=re.S)
    assert len(collapsed) == 1 and "a×male" in collapsed[0]
    assert "a×male (n=" not in html
    rows = {r["group"]: r for r in result.table("token_groups").to_frame().to_dict("records")}
    for site in ("x", "y"):
        mine = [r for r in EVAL_ROWS if r[2] == site]
        assert rows[site]["f1"] == pytest.approx(_seqeval_f1([r[1] for r in mine], [target.tags(r[0]) for r in mine]))
        assert rows[site]["sentences"] == len(mine)


@pytest.mark.parametrize(("content", "key", "problem"), [
    ({"groups": []}, "groups", EXPECTED_OBJECT.format(got="list")),
    ({"groups": {"a": {"first_names": {"female": "Ann"}}}}, "groups.a.first_names.female",
     EXPECTED_NAMES.format(got='"Ann"')),
    ({"groups": {"a": {"first_names": {"female": ["Ann"]}, "places": ["", "Rome"]}}}, "groups.a.places",
     EXPECTED_NAMES.format(got='["", "Rome"]')),
])
def test_a_malformed_name_lexicon_is_one_line_naming_file_and_key(tmp_path: Path, content: Any, key: str,
                                                                   problem: str) -> None:
    path = _lexicon(tmp_path, content)
    message = LEXICON_KEY.format(path=path, key=key, problem=problem)
    with pytest.raises(AuditInputError, match=f"^{_escape(message)}$"):
        FairnessAuditor(name_lexicon=str(path))


def test_a_name_lexicon_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = _lexicon(tmp_path, "{not json")
    with pytest.raises(AuditInputError, match=_escape(LEXICON_UNREADABLE.split(":")[0].format(path=path))) as err:
        load_name_lexicon(path)
    assert "\n" not in str(err.value)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


# -- the planted truth ------------------------------------------------------------------------------


@pytest.mark.slow
def test_planted_origin_bias_is_found_and_clean_control_is_not_flagged(ner_planted: Any, ner_clean: Any) -> None:
    from audit.report.html import render_section
    from audit.selftest.ner_demo import BIASED_GROUP

    planted = FairnessAuditor(n_bootstrap=300).run(make_token_context(ner_planted, sensitive=["origin"]))
    assert planted.status == "ok", planted.reason
    found = [f for f in planted.findings if f.evidence.get("check") == "name_recognition"
             and f.evidence["slice"] == "origin"]
    assert [(f.severity in ("warn", "fail"), f.evidence["group"]) for f in found] == [(True, BIASED_GROUP)]
    assert BIASED_GROUP in found[0].title and found[0].evidence["gap_ci"][0] > 0.1
    checks = {f.evidence.get("check") for f in planted.findings
              if f.severity != "info" and f.evidence.get("group") == BIASED_GROUP}
    assert {"name_recognition", "entity_switched_f1", "group_entity_f1"} <= checks
    assert "Name-swap recognition by group" in render_section(planted)

    clean = FairnessAuditor(n_bootstrap=300).run(make_token_context(ner_clean, sensitive=["origin"]))
    assert clean.status == "ok", clean.reason
    assert [f.title for f in clean.findings if f.severity in ("warn", "fail")] == []
    rate = {m.slice: m.value for m in clean.metrics if m.name == "name_recognition_rate"}
    assert rate[f"origin={BIASED_GROUP}"] > 0.8


_SCHEME_MARKS = {"IO": "", "IOBES": "BIES", "BILOU": "BILU", "IOE1": "IE"}


@pytest.mark.parametrize("scheme", sorted(_SCHEME_MARKS))
def test_untrained_taggers_in_other_schemes_get_a_section_not_a_failure(tmp_path: Path, scheme: str) -> None:
    """Garbage predictions in any scheme (plain IO types included) through the real target: every part
    runs, names keep their multi-word spans, and the swapped gold tags stay within the model's tags."""
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.engine.target import Target
    from audit.tasks.token_data import read_token_data
    from tests._tiny import save_tiny_token_model

    marks = _SCHEME_MARKS[scheme]
    labels = ["O", "PER", "LOC"] if scheme == "IO" else ["O", *(f"{m}-{t}" for t in ("PER", "LOC") for m in marks)]
    chunks = [[("PER", 2), ("O", 1), ("PER", 1), ("O", 2), ("LOC", 1)], [("O", 2), ("LOC", 2), ("O", 1)],
              [("PER", 1), ("PER", 1), ("O", 3)]]
    rows = []
    for i in range(12):
        tags = encode(chunks[i % 3], scheme)
        rows.append({"tokens": [f"w{i}{k}" for k in range(len(tags))], "ner_tags": tags, "site": "xy"[i % 2]})
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = save_tiny_token_model(tmp_path / "m", labels=labels, max_length=16)
    target = Target.load(str(model))
    data = read_token_data(path, tag_names=target.label_names)
    ctx = AuditContext(config=AuditConfig(model=str(model), data=str(path), sensitive=["site"]), target=target,
                       data=data, progress_enabled=False)
    result = FairnessAuditor(**FAST, max_name_sentences=3, max_switch_sentences=6,
                             name_lexicon=str(_lexicon(tmp_path))).run(ctx)
    assert result.status == "ok", result.reason
    assert {t.name for t in result.tables} == {"name_recognition", "entity_switched", "token_groups"}
    lexicon = load_name_lexicon()
    for group in lexicon.groups:
        for v in switch_variants(tokens=data.tokens, tags=data.tags, scheme=data.scheme, person="PER", place="LOC",
                                 lexicon=lexicon, group=group, rng=np.random.default_rng(0)):
            assert set(v.tags) <= set(labels)
            assert [s.type for s in entity_spans(list(v.tags), scheme=data.scheme)] == [s.type for s in v.spans]
