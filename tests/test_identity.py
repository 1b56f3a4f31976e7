"""Identity-term lexicon: matching, counterfactual swaps, user extensions."""

from __future__ import annotations

import pytest

from audit.auditors.fairness._identity import (
    LEXICON_BAD_ENTRY,
    LEXICON_NOT_MAPPING,
    load_lexicon,
    match_case,
    split_spans,
    swap_term,
    term_spans,
)
from audit.errors import AuditInputError


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon()


def test_builtin_lexicon_has_every_documented_category_and_the_demo_age_terms(lexicon) -> None:
    assert set(lexicon.categories) == {"gender", "religion", "race_ethnicity", "nationality", "sexual_orientation",
                                       "disability", "age"}
    ages = {t.name for t in lexicon.categories["age"]}
    assert {"young", "elderly", "teenage", "middle-aged", "old"} <= ages


def test_mentions_are_whole_words_case_insensitive_and_hyphen_aware(lexicon) -> None:
    texts = ["The ELDERLY man", "a middle-aged woman", "she named males", "an old-fashioned lamp", "Old friends"]
    m = lexicon.mentions(texts)
    assert m[("age", "elderly")].tolist() == [True, False, False, False, False]
    assert m[("age", "middle-aged")].tolist() == [False, True, False, False, False]
    # "old" is neither inside "old-fashioned" nor a prefix match; "males" is the plural form of "male".
    assert m[("age", "old")].tolist() == [False, False, False, False, True]
    assert m[("gender", "male")].tolist() == [False, False, True, False, False]
    assert m[("gender", "man")].tolist() == [True, False, False, False, False]


def test_swap_keeps_case_and_form_and_reports_spans(lexicon) -> None:
    woman, man = lexicon.term("gender", "woman"), lexicon.term("gender", "man")
    s = swap_term("Women and a woman; WOMAN.", woman, man)
    assert s.text == "Men and a man; MAN."
    assert [s.text[a:b] for a, b in s.spans] == ["Men", "man", "MAN"]
    elderly, young = lexicon.term("age", "elderly"), lexicon.term("age", "middle-aged")
    assert swap_term("Elderly people", elderly, young).text == "Middle-aged people"
    native = lexicon.term("race_ethnicity", "native american")
    assert swap_term("two Native  Americans", native, lexicon.term("race_ethnicity", "asian")).text == "two Asians"


def test_split_spans_marks_only_the_swapped_word(lexicon) -> None:
    text = "the elderly man"
    parts = split_spans(text, term_spans(text, lexicon.term("age", "elderly")))
    assert parts == [("the ", False), ("elderly", True), (" man", False)]
    assert match_case("Elderly", "middle-aged") == "Middle-aged"


def test_user_lexicon_extends_or_replaces(tmp_path) -> None:
    extra = tmp_path / "terms.yaml"
    extra.write_text("age:\n  - [retiree, retirees]\ncaste:\n  - dalit\n  - brahmin\n", encoding="utf-8")
    lx = load_lexicon(extra)
    assert "retiree" in {t.name for t in lx.categories["age"]} and "elderly" in {t.name for t in lx.categories["age"]}
    assert [t.name for t in lx.categories["caste"]] == ["dalit", "brahmin"]
    extra.write_text("replace: true\ncaste:\n  - dalit\n  - brahmin\n", encoding="utf-8")
    assert list(load_lexicon(extra).categories) == ["caste"]


def test_bad_user_lexicon_is_named(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(AuditInputError, match=LEXICON_NOT_MAPPING.format(path=bad).replace("(", r"\(")[:20]):
        load_lexicon(bad)
    bad.write_text("age:\n  - {a: 1}\n", encoding="utf-8")
    with pytest.raises(AuditInputError, match="an entry must be a term"):
        load_lexicon(bad)
    assert "an entry must be a term" in LEXICON_BAD_ENTRY
    with pytest.raises(AuditInputError, match="identity-term lexicon not found"):
        load_lexicon(tmp_path / "missing.yaml")
