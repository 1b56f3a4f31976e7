"""Robustness of a token classifier (NER): perturbations keep track of every word they move, so
entity spans map between the original and the perturbed sentence; the pass rates and F1 under
perturbation are counted right (hand counts, scipy's Wilson interval, seqeval's strict F1); the
planted casing fragility of the NER demo is found and its case-augmented control is not flagged;
a failure that does not reproduce outside the cache is caught."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.auditors.robustness import _token_perturb as P
from audit.auditors.robustness._token_invariance import f1_pair, judge, token_invariance
from audit.tasks import TOKEN
from audit.tasks.tagging import Span, entity_spans

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
ENTITIES = {("Ada",): "PER", ("Tunde", "Bakare"): "PER", ("Lagos",): "LOC", ("Port", "Harcourt"): "LOC",
            ("Acme", "Bank"): "ORG", ("Zenith",): "ORG"}
POOL = P.SwapPool(by_type={t: tuple(sorted(e for e, k in ENTITIES.items() if k == t)) for t in ("PER", "LOC", "ORG")})
FILLER = ("met", "with", "visited", "the", "office", "near", "Dr.", "today", "went", "home")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _spans(tags: Sequence[str]) -> list[Span]:
    return entity_spans(list(tags), scheme="IOB2")


# ---------------------------------------------------------------- alignment of each perturbation

def test_typo_swaps_two_interior_letters_of_one_word_and_keeps_the_alignment():
    words = ["Ada", "visited", "Lagos", "."]
    new, alignment = P.typo(words, spans=[], rng=_rng(), pool=POOL)
    changed = [i for i, (a, b) in enumerate(zip(words, new, strict=True)) if a != b]
    assert alignment == (0, 1, 2, 3) and len(changed) == 1
    a, b = words[changed[0]], new[changed[0]]
    assert sorted(a) == sorted(b) and a[0] == b[0] and a[-1] == b[-1]
    assert P.typo(["an", "ox", "."], spans=[], rng=_rng(), pool=POOL) is None


@pytest.mark.parametrize(("kind", "expected"), [("lower", ["ada", "met", "acme", "bank"]),
                                                ("upper", ["ADA", "MET", "ACME", "BANK"]),
                                                ("title", ["Ada", "Met", "Acme", "Bank"])])
def test_casing_changes_letters_only(kind, expected):
    new, alignment = P.PERTURBATIONS[kind](["Ada", "met", "Acme", "Bank"], spans=[], rng=_rng(), pool=POOL)
    assert new == expected and alignment == (0, 1, 2, 3)
    assert P.lower(["a", "b"], spans=[], rng=_rng(), pool=POOL) is None  # nothing to change


def test_punctuation_split_maps_both_pieces_to_the_original_word():
    words = ["Dr.", "Ada", "went", "home"]
    spans = [Span(type="PER", start=1, end=2)]
    new, alignment = P.punctuation(words, spans=spans, rng=_rng(), pool=POOL)
    assert new == ["Dr", ".", "Ada", "went", "home"] and alignment == (0, 0, 1, 2, 3)
    assert P.forward_span(spans[0], alignment) == Span(type="PER", start=2, end=3)


def test_punctuation_comma_is_inserted_between_two_words_outside_entities():
    words = ["Ada", "went", "home", "today"]
    spans = [Span(type="PER", start=0, end=1)]
    new, alignment = P.punctuation(words, spans=spans, rng=_rng(), pool=POOL)
    assert len(new) == 5 and new.count(",") == 1 and alignment.count(None) == 1
    at = new.index(",")
    assert at >= 2 and [w for w in new if w != ","] == words  # never right after the entity's first word


@pytest.mark.parametrize("kind", ["context_before", "context_after"])
def test_added_context_is_inserted_and_spans_shift(kind):
    words = ["Lagos", "is", "big", "."]
    spans = [Span(type="LOC", start=0, end=1)]
    new, alignment = P.PERTURBATIONS[kind](words, spans=spans, rng=_rng(), pool=POOL)
    added = len(new) - len(words)
    assert added >= 3 and alignment.count(None) == added
    moved = P.forward_span(spans[0], alignment)
    assert new[moved.start] == "Lagos" and moved.end - moved.start == 1
    assert P.map_back(moved, alignment, n_original=len(words)) == spans[0]


def test_swap_for_a_longer_entity_maps_both_words_back_to_the_one_it_replaced():
    words = ["Ada", "visited", "Lagos", "today"]
    spans = [Span(type="LOC", start=2, end=3)]
    pool = P.SwapPool(by_type={"LOC": (("Port", "Harcourt"),)})
    new, alignment = P.swap_entity(words, spans=spans, rng=_rng(), pool=pool)
    assert new == ["Ada", "visited", "Port", "Harcourt", "today"] and alignment == (0, 1, 2, 2, 3)
    assert P.forward_span(spans[0], alignment) == Span(type="LOC", start=2, end=4)
    assert P.map_back(Span(type="LOC", start=2, end=4), alignment, n_original=4) == spans[0]


def test_swap_for_a_shorter_entity_maps_back_to_the_whole_original_span():
    words = ["Tunde", "Bakare", "visited", "Lagos"]
    spans = [Span(type="PER", start=0, end=2), Span(type="LOC", start=3, end=4)]
    pool = P.SwapPool(by_type={"PER": (("Ada",),)})  # no LOC: only the person can be swapped
    new, alignment = P.swap_entity(words, spans=spans, rng=_rng(), pool=pool)
    assert new == ["Ada", "visited", "Lagos"] and alignment == (0, 2, 3)
    assert P.forward_span(spans[0], alignment) == Span(type="PER", start=0, end=1)
    assert P.map_back(Span(type="PER", start=0, end=1), alignment, n_original=4) == spans[0]
    assert P.swap_entity(words, spans=spans, rng=_rng(), pool=P.SwapPool(by_type={})) is None


def test_an_inserted_word_inside_an_entity_cannot_be_realigned_and_says_why():
    alignment = (0, None, 1, 2)
    assert P.forward_span(Span(type="ORG", start=0, end=2), alignment) == P.UNREALIGNED_HOLE
    assert P.map_back(Span(type="ORG", start=0, end=3), alignment, n_original=3) is None
    case = judge(kind="punctuation", row=0, words=["Acme", "Bank", "x"], new_words=["Acme", ",", "Bank", "x"],
                 alignment=alignment, pred=[Span(type="ORG", start=0, end=2)], new_pred=[], gold=[], scheme="IOB2")
    assert case.unrealigned == P.UNREALIGNED_HOLE and not case.passed


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU", "IO"])
def test_spans_to_tags_is_the_inverse_of_entity_spans(scheme):
    spans = [Span(type="PER", start=0, end=2), Span(type="PER", start=2, end=3), Span(type="LOC", start=4, end=7)]
    tags = P.spans_to_tags(spans, length=8, scheme=scheme)
    expected = spans if scheme != "IO" else [Span(type="PER", start=0, end=3), spans[2]]  # IO cannot split them
    assert entity_spans(tags, scheme=scheme) == expected


# ---------------------------------------------------------------- the round trip, by property

def _dictionary_tags(words: Sequence[str]) -> list[str]:
    """A perfect stand-in tagger: longest match of the entity dictionary, whatever the case."""
    table = {tuple(w.lower() for w in e): t for e, t in ENTITIES.items()}
    longest = max(len(e) for e in table)
    tags, i = [], 0
    while i < len(words):
        for k in range(min(longest, len(words) - i), 0, -1):
            kind = table.get(tuple(w.lower() for w in words[i:i + k]))
            if kind:
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (k - 1)
                i += k
                break
        else:
            tags.append("O")
            i += 1
    return tags


sentence = st.lists(st.one_of(st.sampled_from(sorted(ENTITIES)), st.sampled_from(FILLER).map(lambda w: (w,))),
                    min_size=1, max_size=10).map(lambda parts: [w for p in parts for w in p])


@settings(max_examples=60, deadline=None)
@given(words=sentence, seed=st.integers(0, 2**16), kind=st.sampled_from(sorted(P.PERTURBATIONS)))
def test_mapped_back_spans_equal_the_original_when_the_prediction_is_perfect(words, seed, kind):
    gold = _spans(_dictionary_tags(words))
    out = P.PERTURBATIONS[kind](words, spans=gold, rng=_rng(seed), pool=POOL)
    if out is None:
        return
    new, alignment = out
    assert len(alignment) == len(new) and all(o is None or 0 <= o < len(words) for o in alignment)
    forward = [P.forward_span(s, alignment) for s in gold]
    if kind == "typo":  # a typo can hit an entity word the dictionary then misses: the oracle is the realigned gold
        predicted = _spans(P.spans_to_tags(forward, length=len(new), scheme="IOB2"))
    else:
        predicted = _spans(_dictionary_tags(new))
    assert predicted == forward
    assert [P.map_back(s, alignment, n_original=len(words)) for s in predicted] == gold


# ---------------------------------------------------------------- counts against hand counts

class _CaseSensitiveTagger:
    """A stand-in token target: tags the dictionary's entities only as written (title case), so
    lower- and upper-casing lose them; predictions are one-hot."""

    task = TOKEN
    label_names = LABELS

    def __init__(self, *, any_case: bool = False) -> None:
        self.any_case = any_case
        self.calls: list[int] = []

    def predict_words(self, sentences, *, aggregation="first", stride=None, progress=False, desc=""):
        from audit.tasks.alignment import WordPredictions

        self.calls.append(len(sentences))
        probs = []
        for words in sentences:
            tags = _dictionary_tags(words)
            if not self.any_case:
                tags = [t if t == "O" or words[i][:1].isupper() and not words[i].isupper() else "O"
                        for i, t in enumerate(tags)]
                tags = [t if not t.startswith("I-") or (i and tags[i - 1] != "O") else "O" for i, t in enumerate(tags)]
            p = np.zeros((len(words), len(LABELS)))
            p[np.arange(len(words)), [LABELS.index(t) for t in tags]] = 1.0
            probs.append(p)
        n = len(sentences)
        return WordPredictions(probs=probs, windowed=np.zeros(n, dtype=bool), empty_words=np.zeros(n, dtype=np.int64),
                               cut_words=np.zeros(n, dtype=np.int64))


SENTENCES = [["Ada", "visited", "Lagos", "."], ["the", "office", "went", "home", "."],
             ["Tunde", "Bakare", "met", "Ada", "today", "."], ["we", "went", "home", "."],
             ["Acme", "Bank", "is", "near", "Port", "Harcourt", "."]]


def _context(target: Any, sentences: list[list[str]] = SENTENCES) -> Any:
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.tasks.token_data import TokenEvalSet

    data = TokenEvalSet(source="hand.jsonl", tokens=sentences, tags=[_dictionary_tags(s) for s in sentences],
                        first_lines=None, columns=pd.DataFrame(index=range(len(sentences))), scheme="IOB2",
                        gold_violations=0)
    return AuditContext(config=AuditConfig(model="stand-in", data="hand.jsonl"), target=target, data=data,
                        progress_enabled=False)


def test_pass_rates_equal_a_hand_count_with_scipys_wilson_interval():
    from scipy.stats import binomtest

    target = _CaseSensitiveTagger()
    ctx = _context(target)
    part = token_invariance(ctx, rows=np.arange(5), kinds=("lower", "upper", "context_after"), pool=POOL,
                            max_f1_drop=0.1, examples_shown=2)
    rates = {m.slice: m for m in part.metrics if m.name == "token_invariance_pass_rate"}
    # Three sentences name entities: lower- and upper-casing lose all of them. The two without one pass
    # upper-casing, and lower-casing does not apply to them (already lower-case: counted, not judged).
    # Added context after the sentence changes nothing for this tagger: five of five pass.
    for kind, passed, cases in (("lower", 0, 3), ("upper", 2, 5), ("context_after", 5, 5)):
        ci = binomtest(passed, cases).proportion_ci(confidence_level=0.95, method="wilson")
        assert rates[kind].value == pytest.approx(passed / cases)
        assert (rates[kind].ci_low, rates[kind].ci_high) == pytest.approx((ci.low, ci.high))
    assert target.calls == [5, 3, 5, 5]  # the eval pass, then ONE batched call per family
    table = part.tables[0].to_frame().set_index("perturbation")
    assert (table["not_applicable"] + table["unrealigned"] + table["cases"] == table["sentences"]).all()
    findings = {f.evidence["perturbation"]: f for f in part.findings}
    assert set(findings) == {"lower", "upper"} and "Casing" in findings["lower"].detail
    assert {e["perturbation"] for e in part.extra["token_examples"]} == {"lower", "upper"}


def test_failure_examples_are_rendered_with_spans_marked_and_words_escaped():
    from audit.report.html import render_section

    sentences = [["Ada", "<script>alert(1)</script>", "visited", "Lagos", "."]]
    part = token_invariance(_context(_CaseSensitiveTagger(), sentences), rows=np.arange(1), kinds=("lower",),
                            pool=POOL, max_f1_drop=0.1, examples_shown=3)
    assert [e["perturbation"] for e in part.extra["token_examples"]] == ["lower"]
    html = render_section(part.to_result(auditor="robustness"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert '<span class="ner-pred">Ada <sup>PER</sup></span>' in html  # the original's entity, marked
    assert "Perturbations (entity spans realigned)" in html


def test_a_case_robust_tagger_passes_every_perturbation_and_is_not_flagged():
    ctx = _context(_CaseSensitiveTagger(any_case=True))
    kinds = tuple(k for k in P.PERTURBATIONS if k != "typo")  # a typo in an entity word defeats a dictionary
    part = token_invariance(ctx, rows=np.arange(5), kinds=kinds, pool=POOL, max_f1_drop=0.1, examples_shown=2)
    rates = {m.slice: m.value for m in part.metrics if m.name == "token_invariance_pass_rate"}
    assert rates == {k: 1.0 for k in kinds} and not part.findings
    drops = {m.slice: m.value for m in part.metrics if m.name == "token_entity_f1_drop"}
    assert drops == {k: pytest.approx(0.0) for k in kinds}


def test_f1_under_perturbation_equals_seqeval_strict_on_the_realigned_tags():
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    rng = _rng(3)
    gold = [_dictionary_tags(s) for s in SENTENCES]
    pred = [[t if rng.random() < 0.7 else "O" for t in g] for g in gold]
    pred = [[t if not t.startswith("I-") or (i and p[i - 1] != "O") else "O" for i, t in enumerate(p)] for p in pred]
    f1 = f1_pair(clean_gold=gold, clean_pred=gold, gold=gold, pred=pred, scheme="IOB2", seed=0)
    assert f1.clean[0] == pytest.approx(1.0)
    assert f1.perturbed[0] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))
    assert f1.drop[0] == pytest.approx(1.0 - f1.perturbed[0]) and f1.drop[1] <= f1.drop[0] <= f1.drop[2]


def test_unrealigned_sentences_are_counted_not_dropped():
    """A tagger that reads each whole sentence of words as one organisation: a comma inserted inside
    it cannot be mapped, and the sentence is counted as unrealigned with the reason."""
    class WholeSentence(_CaseSensitiveTagger):
        def predict_words(self, sentences, **kw):
            out = super().predict_words(sentences, **kw)
            for p in out.probs:
                p[:] = 0.0
                p[:, LABELS.index("I-ORG")] = 1.0
                p[0, :] = 0.0
                p[0, LABELS.index("B-ORG")] = 1.0
            return out

    sentences = [["we", "went", "home", "today"], ["they", "went", "home", "late"]]
    part = token_invariance(_context(WholeSentence(), sentences), rows=np.arange(2), kinds=("punctuation",),
                            pool=POOL, max_f1_drop=0.1, examples_shown=0)
    row = part.tables[0].to_frame().iloc[0]
    assert (row["unrealigned"], row["cases"], row["not_applicable"]) == (2, 0, 0)
    assert P.UNREALIGNED_HOLE in row["unrealigned_why"]
    assert next(m for m in part.metrics if m.name == "token_unrealigned").value == 2


# ---------------------------------------------------------------- the NER demo (slow: fixtures)

@pytest.mark.slow
def test_planted_casing_fragility_is_found_and_the_control_is_not_flagged(ner_planted, ner_clean):
    from audit.auditors.robustness import RobustnessAuditor
    from tests.conftest import make_token_context

    options = {"token_sentences": 150, "token_perturbations": ("lower", "upper", "punctuation"),
               "context_attack_words": 0}
    planted = RobustnessAuditor(**options).run(make_token_context(ner_planted))
    clean = RobustnessAuditor(**options).run(make_token_context(ner_clean))
    assert planted.status == clean.status == "ok"
    flagged = {f.evidence.get("perturbation") for f in planted.findings if f.severity in ("warn", "fail")}
    assert {"lower", "upper"} <= flagged
    casing = [f for f in clean.findings if f.severity != "info" and f.evidence.get("perturbation") in P.CASING]
    assert not casing
    for kind in ("lower", "upper"):
        rate = "token_invariance_pass_rate"
        bad, good = planted.metric(rate, kind), clean.metric(rate, kind)
        assert bad.ci_high < good.ci_low, (kind, bad, good)
        drop = "token_entity_f1_drop"
        assert planted.metric(drop, kind).ci_low > 0.1 > clean.metric(drop, kind).value
    from audit.report.html import render_section

    html = render_section(planted)
    assert "ner-pred" in html and "Perturbations (entity spans realigned)" in html


@pytest.mark.slow
def test_context_attack_reports_f1_drop_and_reverification_catches_a_cache_disagreement(ner_planted, monkeypatch):
    from audit.auditors.robustness._token_context import context_attack
    from tests.conftest import make_token_context

    ctx = make_token_context(ner_planted)
    rows = np.arange(60)
    synonyms = {"flew": ["flies"], "office": ["bureau"], "born": ["innate"], "spoke": ["talked"], "works": ["plant"],
                "talking": ["speaking"], "told": ["said"], "mentioned": ["cited"], "visited": ["saw"]}

    def attack() -> Any:
        return context_attack(ctx, rows=rows, budget=1, synonyms=lambda w: synonyms.get(w, []),
                              stopwords=frozenset({"the", "a"}), max_f1_drop=0.1)

    honest = attack()
    assert honest.disagreements == 0
    table = honest.part.tables[0].to_frame().iloc[0]
    assert table["cases"] + table["not_applicable"] == 60 and table["failures_reverified"] == table["cases"] - table[
        "passed"]
    # Plant a disagreement: the cache answers "B-ORG everywhere" for the first attacked sentence.
    real = ctx.target.predict_words

    def corrupted(sentences, **kw):
        out = real(sentences, **kw)
        if "context attack" in kw.get("desc", ""):
            fake = np.zeros_like(out.probs[0])
            fake[:, LABELS.index("B-ORG")] = 1.0
            out.probs[0] = fake
        return out

    monkeypatch.setattr(ctx.target, "predict_words", corrupted)
    planted = attack()
    assert planted.disagreements == 1
    assert planted.part.findings[0].severity == "fail" and "outside the cache" in planted.part.findings[0].detail


@pytest.mark.slow  # imports TextAttack
def test_wordnet_synonyms_come_from_textattacks_transformation_offline():
    from audit.auditors.robustness._token_context import substitute, wordnet_synonyms

    synonyms, stopwords, why = wordnet_synonyms()
    if synonyms is None:
        pytest.skip(why)
    assert "the" in stopwords and "office" not in stopwords
    found = synonyms("office")
    assert found and all("_" not in s and s != "office" for s in found)
    words, tags = ["Ada", "visited", "the", "office", "in", "Lagos"], ["B-PER", "O", "O", "O", "O", "B-LOC"]
    new, alignment = substitute(words, tags, budget=5, rng=_rng(), synonyms=synonyms, stopwords=stopwords)
    assert alignment == tuple(range(6)) and new[0] == "Ada" and new[5] == "Lagos" and new[2] == "the"
    assert new[3] != "office"
