"""Token-classification performance equals the reference libraries on the same tags: seqeval
(strict and default mode) for the entity reports, nervaluate for the error breakdown,
scikit-learn for the token report, and seqeval again, resample by resample, for the bootstrap."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nervaluate import Evaluator
from seqeval import metrics as sqm
from seqeval import scheme as sq
from seqeval.metrics.sequence_labeling import get_entities
from sklearn import metrics as skm

from audit.auditors.performance import _token as tok
from audit.auditors.performance._auditor import expected_calibration_error
from audit.auditors.performance._token_errors import count_violations, entity_confusion, error_breakdown
from audit.auditors.performance._token_report import O_NOTE, entity_reports, strict_spans, token_report
from audit.core.stats import bootstrap_resamples, percentile_interval
from audit.errors import AuditInputError

TYPES = ("PER", "LOC", "ORG")
SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU", "IO")
PREFIXES = {"IOB1": "BI", "IOB2": "BI", "IOE1": "IE", "IOE2": "IE", "IOBES": "BIES", "BILOU": "BILU"}
SEQEVAL = {"IOB1": sq.IOB1, "IOB2": sq.IOB2, "IOE1": sq.IOE1, "IOE2": sq.IOE2, "IOBES": sq.IOBES,
           "BILOU": sq.BILOU, "IO": sq.IOB1}
SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)
FEWER = settings(max_examples=25, deadline=None, derandomize=True)  # for checks that run sklearn each time


def tag_names(scheme: str, types: tuple[str, ...] = TYPES) -> list[str]:
    if scheme == "IO":
        return ["O", *types]
    return ["O", *(f"{p}-{t}" for t in types for p in PREFIXES[scheme])]


def for_seqeval(seqs: list[list[str]], scheme: str, *, lenient: bool = False) -> list[list[str]]:
    """The documented reading: IO tags as I-T under IOB1; BILOU's L/U as E/S for conlleval."""
    if scheme == "IO":
        return [[t if t == "O" else "I-" + t for t in s] for s in seqs]
    if scheme == "BILOU" and lenient:
        return [[{"L": "E", "U": "S"}.get(t[0], t[0]) + t[1:] if t != "O" else t for t in s] for s in seqs]
    return [list(s) for s in seqs]


def encode(chunks: list[tuple[str, int]], scheme: str) -> list[str]:
    """Well-formed tags for a sentence of chunks (type or 'O', length) under the scheme."""
    out: list[str] = []
    for i, (t, n) in enumerate(chunks):
        if t == "O":
            out += ["O"] * n
            continue
        prev_same = i > 0 and chunks[i - 1][0] == t
        next_same = i + 1 < len(chunks) and chunks[i + 1][0] == t
        tags = {"IOB2": ["B"] + ["I"] * (n - 1), "IOB1": ["B" if prev_same else "I"] + ["I"] * (n - 1),
                "IOE2": ["I"] * (n - 1) + ["E"], "IOE1": ["I"] * (n - 1) + ["E" if next_same else "I"],
                "IOBES": ["S"] if n == 1 else ["B"] + ["I"] * (n - 2) + ["E"],
                "BILOU": ["U"] if n == 1 else ["B"] + ["I"] * (n - 2) + ["L"]}.get(scheme)
        out += [t] * n if tags is None else [f"{p}-{t}" for p in tags]
    return out


@st.composite
def chunks_of(draw, length: int) -> list[tuple[str, int]]:
    """Random chunks (type or 'O', length) covering exactly ``length`` words."""
    out, total = [], 0
    while total < length:
        t, n = draw(st.sampled_from(["O", "O", *TYPES])), draw(st.integers(1, 3))
        out.append((t, min(n, length - total)))
        total += out[-1][1]
    return out


@st.composite
def corpora(draw, scheme: str, *, valid: bool = False, max_sentences: int = 6):
    """(gold, pred): random tags, or (``valid``) well-formed tags from random chunks, the
    predictions either independent chunks (boundary errors) or gold's chunks with some types
    redrawn (type errors)."""
    names = tag_names(scheme)
    gold, pred = [], []
    for i in range(draw(st.integers(1, max_sentences))):
        length = draw(st.integers(0 if i else 1, 8))  # empty sentences, but never no word at all
        if valid:
            g_chunks = draw(chunks_of(length))
            if draw(st.booleans()):
                p_chunks = draw(chunks_of(length))
            else:
                p_chunks = [(draw(st.sampled_from([t, t, t, *TYPES])) if t != "O" else t, n) for t, n in g_chunks]
            g, p = encode(g_chunks, scheme), encode(p_chunks, scheme)
        else:
            g = draw(st.lists(st.sampled_from(names), min_size=length, max_size=length))
            p = draw(st.lists(st.sampled_from(names), min_size=length, max_size=length))
        gold.append(g)
        pred.append(p)
    return gold, pred


def run(gold, pred, scheme, *, probs=None, n_bootstrap=0, seed=0, names=None):
    return tok.token_performance(gold=gold, pred=pred, probs=probs, tag_names=names or tag_names(scheme),
                                 scheme=scheme, n_bootstrap=n_bootstrap, rng=np.random.default_rng(seed))


def seqeval_report(gold, pred, scheme, *, lenient=False) -> dict:
    g, p = for_seqeval(gold, scheme, lenient=lenient), for_seqeval(pred, scheme, lenient=lenient)
    kwargs = {} if lenient else {"mode": "strict", "scheme": SEQEVAL[scheme]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # macro average over no entity type: nan
        return sqm.classification_report(g, p, output_dict=True, zero_division=0, **kwargs)


def assert_report_equals(frame, report: dict) -> None:
    assert list(frame.index) == list(report)
    for name, row in report.items():
        for col in ("precision", "recall", "f1-score"):
            np.testing.assert_allclose(frame.loc[name, col], row[col], rtol=0, atol=1e-12)
        assert frame.loc[name, "support"] == row["support"]


# -- entity reports -------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
def test_entity_reports_equal_seqeval_strict_and_default_on_random_tags(scheme):
    @SETTINGS
    @given(corpora(scheme))
    def check(corpus):
        gold, pred = corpus
        strict, lenient = entity_reports(gold, pred, scheme)
        assert_report_equals(strict, seqeval_report(gold, pred, scheme))
        assert_report_equals(lenient, seqeval_report(gold, pred, scheme, lenient=True))
        assert strict.attrs["matching"].startswith("strict")
        assert lenient.attrs["matching"].startswith("lenient")

    check()


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@FEWER
@given(data=st.data())
def test_headline_metrics_equal_seqeval_strict_functions(scheme, data):
    gold, pred = data.draw(corpora(scheme))
    m = run(gold, pred, scheme, n_bootstrap=20).metrics()
    g, p = for_seqeval(gold, scheme), for_seqeval(pred, scheme)
    strict = {"mode": "strict", "scheme": SEQEVAL[scheme], "zero_division": 0}
    assert m["entity_f1_micro"].value == pytest.approx(sqm.f1_score(g, p, **strict), abs=1e-12)
    assert m["entity_precision_micro"].value == pytest.approx(sqm.precision_score(g, p, **strict), abs=1e-12)
    assert m["entity_recall_micro"].value == pytest.approx(sqm.recall_score(g, p, **strict), abs=1e-12)
    assert m["entity_f1_micro_lenient"].value == pytest.approx(sqm.f1_score(g, p, zero_division=0), abs=1e-12)
    flat_g, flat_p = sum(gold, []), sum(pred, [])
    assert m["token_accuracy"].value == pytest.approx(skm.accuracy_score(flat_g, flat_p), abs=1e-12)
    for name in tok.INTERVAL_METRICS:
        low, high = m[name].ci_low, m[name].ci_high
        assert (low is None and high is None) or np.isnan(low) or low <= high


def test_metric_names_and_intervals_follow_the_auditor_shape():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O"], ["O", "B-ORG"]]
    pred = [["B-PER", "I-PER", "O"], ["B-PER", "O"], ["O", "B-ORG"]]
    with_ci = run(gold, pred, "IOB2", n_bootstrap=50).metrics()
    assert set(with_ci) == {"entity_f1_micro", "entity_precision_micro", "entity_recall_micro", "entity_f1_macro",
                            "entity_f1_weighted", "entity_f1_micro_lenient", "token_accuracy", "pred_violations"}
    for name, metric in with_ci.items():
        assert metric.name == name
        assert (metric.ci_low is not None) == (name in tok.INTERVAL_METRICS)
        assert metric.to_dict()["name"] == name
    assert with_ci["pred_violations"].higher_is_better is False
    without = run(gold, pred, "IOB2", n_bootstrap=0).metrics()
    assert all(m.ci_low is None and m.ci_high is None for m in without.values())


# -- error breakdown ------------------------------------------------------------------------------
def nervaluate_rows(results: dict) -> dict[tuple[str, str], tuple]:
    rows = {}
    for schema, r in results["overall"].items():
        rows[schema, "overall"] = r
    for entity, by_schema in results["entities"].items():
        for schema, r in by_schema.items():
            rows[schema, entity] = r
    return rows


def assert_breakdown_equals(frame, results: dict) -> None:
    expected = nervaluate_rows(results)
    assert {(s, e) for s, e in zip(frame["schema"], frame["entity"], strict=True)} == set(expected)
    for _, row in frame.iterrows():
        r = expected[row["schema"], row["entity"]]
        for col in ("correct", "incorrect", "partial", "missed", "spurious", "possible", "actual"):
            assert row[col] == getattr(r, col), (row["schema"], row["entity"], col)
        for col in ("precision", "recall", "f1"):
            assert row[col] == pytest.approx(getattr(r, col), abs=1e-12)


def as_iob2(seqs: list[list[str]]) -> list[list[str]]:
    """Well-formed IOBES/BILOU as IOB2 (same chunks), the only prefixes nervaluate reads."""
    return [[{"S": "B", "U": "B", "E": "I", "L": "I"}.get(t[0], t[0]) + t[1:] if t != "O" else t for t in s]
            for s in seqs]


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES", "BILOU"])
@SETTINGS
@given(data=st.data())
def test_error_breakdown_equals_nervaluate_reading_the_tags_itself(scheme, data):
    gold, pred = data.draw(corpora(scheme, valid=True))
    breakdown = error_breakdown(strict_spans(gold, scheme), strict_spans(pred, scheme))
    reference = Evaluator(as_iob2(gold), as_iob2(pred), tags=list(TYPES), loader="list").evaluate()
    assert_breakdown_equals(breakdown, reference)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_error_breakdown_equals_nervaluate_on_seqeval_spans_of_any_tags(scheme):
    @SETTINGS
    @given(corpora(scheme))
    def check(corpus):
        gold, pred = corpus
        breakdown = error_breakdown(strict_spans(gold, scheme), strict_spans(pred, scheme))
        spans = [[[{"label": e.tag, "start": e.start, "end": e.end - 1} for e in sentence]
                  for sentence in sq.Entities(for_seqeval(seqs, scheme), SEQEVAL[scheme]).entities]
                 for seqs in (gold, pred)]
        assert_breakdown_equals(breakdown, Evaluator(*spans, tags=list(TYPES), loader="dict").evaluate())
        strict = breakdown.set_index(["schema", "entity"]).loc[("strict", "overall")]
        micro = seqeval_report(gold, pred, scheme)["micro avg"]
        assert strict["possible"] == micro["support"]
        assert strict["correct"] == round(micro["recall"] * micro["support"])

    check()


# -- token report ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["IOB2", "IOBES", "IO"])
@FEWER
@given(data=st.data())
def test_token_report_is_sklearns_with_o_shown_but_outside_the_averages(scheme, data):
    gold, pred = data.draw(corpora(scheme))
    names = tag_names(scheme)
    table, text = token_report(gold, pred, names)
    y, p = sum(gold, []), sum(pred, [])
    labels = [t for t in names if t != "O"]
    reference = skm.classification_report(y, p, labels=labels, output_dict=True, zero_division=0)
    assert list(table.index) == ["O", *reference]  # O first, as in tag_names, then sklearn's rows
    assert table["diagnostic"].tolist() == [True] + [False] * len(reference)
    for name, row in reference.items():
        if isinstance(row, dict):
            for col in ("precision", "recall", "f1-score"):
                assert table.loc[name, col] == pytest.approx(row[col], abs=1e-12)
            assert table.loc[name, "support"] == row["support"]
        else:
            assert table.loc[name, "f1-score"] == pytest.approx(row, abs=1e-12)
    o_p, o_r, o_f, o_s = skm.precision_recall_fscore_support(y, p, labels=["O"], zero_division=0)
    assert table.loc["O", ["precision", "recall", "f1-score", "support"]].tolist() == pytest.approx(
        [o_p[0], o_r[0], o_f[0], o_s[0]])

    sklearn_text = skm.classification_report(y, p, labels=labels, digits=4, zero_division=0)
    o_line = skm.classification_report(y, p, labels=names, digits=4, zero_division=0).splitlines()[2]
    lines = text.splitlines()
    assert lines[2] == o_line
    assert "\n".join(lines[:2] + lines[3:]) == sklearn_text.rstrip("\n") + "\n\n" + O_NOTE


def test_token_report_averages_leave_o_out():
    gold = [["O"] * 8 + ["B-PER"]]
    pred = [["O"] * 8 + ["O"]]
    table = run(gold, pred, "IOB2").token_report
    assert table.loc["O", "recall"] == 1.0 and table.loc["O", "diagnostic"]
    assert table.loc["macro avg", "recall"] == 0.0  # with O in the average it would not be 0
    assert table.loc["micro avg", "support"] == 1


# -- bootstrap ------------------------------------------------------------------------------------
def seqeval_point(gold, pred, scheme) -> np.ndarray:
    report = seqeval_report(gold, pred, scheme)
    micro = report["micro avg"]
    return np.array([micro["precision"], micro["recall"], micro["f1-score"], report["macro avg"]["f1-score"]])


def counts_of(gold, pred, scheme):
    return tok.sentence_counts(strict_spans(gold, scheme), strict_spans(pred, scheme))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_identity_resample_equals_seqeval_strict(scheme):
    @SETTINGS
    @given(corpora(scheme))
    def check(corpus):
        gold, pred = corpus
        counts = counts_of(gold, pred, scheme)
        got = tok.scores_from_weights(counts, np.ones((1, len(gold))))[0]
        np.testing.assert_allclose(got, seqeval_point(gold, pred, scheme), rtol=0, atol=1e-12)

    check()


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_each_resample_equals_seqeval_on_the_resampled_sentences(scheme, data, seed):
    gold, pred = data.draw(corpora(scheme, max_sentences=8))
    n_resamples = 6
    fast = tok.resample_scores(counts_of(gold, pred, scheme), n_bootstrap=n_resamples, seed=seed)
    (block,) = bootstrap_resamples(len(gold), n_resamples=n_resamples, seed=seed)
    for row, idx in zip(fast, block, strict=True):
        slow = seqeval_point([gold[i] for i in idx], [pred[i] for i in idx], scheme)
        np.testing.assert_allclose(row, slow, rtol=0, atol=1e-12)


def test_intervals_are_seeded_percentiles_of_the_sentence_resamples():
    rnd = np.random.default_rng(3)
    names = tag_names("IOB2")
    gold = [[str(rnd.choice(names)) for _ in range(6)] for _ in range(40)]
    pred = [[t if rnd.random() < 0.7 else str(rnd.choice(names)) for t in s] for s in gold]
    a = run(gold, pred, "IOB2", n_bootstrap=300, seed=11).intervals
    b = run(gold, pred, "IOB2", n_bootstrap=300, seed=11).intervals
    c = run(gold, pred, "IOB2", n_bootstrap=300, seed=12).intervals
    assert a.equals(b)
    assert not a.equals(c)
    seed = int(np.random.default_rng(11).integers(0, np.iinfo(np.int64).max))
    values = tok.resample_scores(counts_of(gold, pred, "IOB2"), n_bootstrap=300, seed=seed)
    np.testing.assert_allclose(a["value"].to_numpy(), seqeval_point(gold, pred, "IOB2"), rtol=0, atol=1e-12)
    for j, name in enumerate(tok.INTERVAL_METRICS):
        assert tuple(a.loc[name, ["ci_low", "ci_high"]]) == percentile_interval(values[:, j], confidence=0.95)
        assert a.loc[name, "ci_low"] <= a.loc[name, "value"] <= a.loc[name, "ci_high"]
        assert a.loc[name, "resamples"] == 300


def test_resamples_in_several_blocks_equal_one_block(monkeypatch):
    gold = [["B-PER", "O"], ["B-LOC", "I-LOC"], ["O", "O"], ["B-ORG", "O"]]
    pred = [["B-PER", "O"], ["B-LOC", "O"], ["B-PER", "O"], ["B-ORG", "O"]]
    counts = counts_of(gold, pred, "IOB2")
    whole = tok.resample_scores(counts, n_bootstrap=50, seed=5)
    monkeypatch.setattr(tok, "_BLOCK_VALUES", 12)  # three resamples per block
    np.testing.assert_array_equal(tok.resample_scores(counts, n_bootstrap=50, seed=5), whole)


# -- confusion, violations, calibration ------------------------------------------------------------
def test_confusion_pairs_overlapping_spans_and_counts_the_rest():
    gold = [["B-PER", "I-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"], ["B-LOC", "B-PER", "I-PER", "I-PER"]]
    pred = [["B-PER", "I-PER", "O", "O", "B-ORG", "B-MISC", "O"], ["B-PER", "I-PER", "I-PER", "I-PER"]]
    cm = run(gold, pred, "IOB2", names=tag_names("IOB2", (*TYPES, "MISC"))).confusion
    assert list(cm.index) == ["LOC", "MISC", "ORG", "PER", "spurious"]
    assert list(cm.columns) == ["LOC", "MISC", "ORG", "PER", "missed"]
    assert cm.loc["LOC", "ORG"] == 1  # right boundaries, wrong type
    assert cm.loc["ORG", "missed"] == 1
    assert cm.loc["spurious", "MISC"] == 1
    # a boundary error with the right type; and in sentence 2 the one predicted PER overlaps the
    # gold LOC by one word and the gold PER by three: it goes to the PER, the LOC is missed
    assert cm.loc["PER", "PER"] == 2
    assert cm.loc["LOC", "missed"] == 1 and cm.loc["LOC", "PER"] == 0
    assert int(cm.to_numpy().sum()) == 6


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES", "IOE1"])
@SETTINGS
@given(data=st.data())
def test_confusion_counts_each_gold_and_predicted_entity_once(scheme, data):
    gold, pred = data.draw(corpora(scheme))
    cm = entity_confusion(strict_spans(gold, scheme), strict_spans(pred, scheme))
    report = seqeval_report(gold, pred, scheme)
    types = [t for t in report if not t.endswith(" avg")]
    assert list(cm.index) == [*types, "spurious"] and list(cm.columns) == [*types, "missed"]
    predicted = {t: sum(e.tag == t for s in sq.Entities(for_seqeval(pred, scheme), SEQEVAL[scheme]).entities
                        for e in s) for t in types}
    for t in types:
        assert cm.loc[t].sum() == report[t]["support"]
        assert cm[t].sum() == predicted[t]
        assert cm.loc[t, t] >= round(report[t]["recall"] * report[t]["support"])  # strict hits are diagonal
    assert cm.loc["spurious", "missed"] == 0


def test_violations_count_forbidden_transitions_per_scheme():
    assert count_violations([["O", "I-PER", "I-PER"], ["B-PER", "I-LOC"]], "IOB2") == 2
    assert count_violations([["B-PER", "I-PER", "O"]], "IOB2") == 0
    assert count_violations([["B-PER"], ["I-PER", "B-PER"], ["I-LOC", "B-PER"]], "IOB1") == 2
    assert count_violations([["I-PER", "O"], ["I-PER", "E-PER"], ["I-PER"]], "IOE2") == 2
    assert count_violations([["E-PER", "I-PER"], ["E-PER"], ["I-LOC", "E-PER", "O"]], "IOE1") == 2
    # B then O, and O then E: two transitions; B-PER I-LOC breaks both rules once
    assert count_violations([["B-PER", "O", "E-PER"], ["B-PER", "I-LOC", "E-LOC"]], "IOBES") == 3
    assert count_violations([["U-PER", "B-LOC", "L-LOC"]], "BILOU") == 0
    assert count_violations([["B-PER", "U-PER"]], "BILOU") == 1
    assert count_violations([["PER", "LOC", "O"]], "IO") == 0
    assert run([["O", "I-PER"]], [["I-PER", "I-PER"]], "IOB2").pred_violations == 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_well_formed_tags_have_no_violations(scheme):
    @SETTINGS
    @given(corpora(scheme, valid=True))
    def check(corpus):
        gold, pred = corpus
        assert count_violations(gold, scheme) == 0
        assert count_violations(pred, scheme) == 0

    check()


@pytest.mark.parametrize("scheme", ["IOB2", "IOE2", "IOBES", "BILOU"])
@SETTINGS
@given(data=st.data())
def test_without_violations_strict_and_lenient_chunks_agree(scheme, data):
    # The lenient (conlleval) reader repairs exactly what the scheme forbids.
    _, pred = data.draw(corpora(scheme))
    for seq in pred:
        if count_violations([seq], scheme) == 0:
            lenient = {(t, s, e + 1) for t, s, e in get_entities(for_seqeval([seq], scheme, lenient=True)[0])}
            assert set(strict_spans([seq], scheme)[0]) == lenient


def test_ece_is_the_projects_over_all_words_and_none_without_probabilities():
    names = tag_names("IOB2")
    rnd = np.random.default_rng(0)
    gold = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    probs = [rnd.dirichlet(np.ones(len(names)), size=len(s)) for s in gold]
    pred = [[names[i] for i in p.argmax(1)] for p in probs]
    result = run(gold, pred, "IOB2", probs=probs)
    stacked = np.concatenate(probs)
    correct = np.array(sum(pred, [])) == np.array(sum(gold, []))
    assert result.ece == expected_calibration_error(stacked.max(1), correct, n_bins=15)[0]
    # independent: |mean confidence - accuracy| per occupied bin, weighted by its share
    bins = np.minimum((np.ceil(stacked.max(1) * 15) - 1).clip(0), 14)
    expected = sum(abs(stacked.max(1)[bins == b].mean() - correct[bins == b].mean()) * (bins == b).mean()
                   for b in np.unique(bins))
    assert result.ece == pytest.approx(expected, abs=1e-12)
    assert result.metrics()["ece"].value == result.ece
    one_hot = [np.eye(len(names))[[names.index(t) for t in s]] for s in gold]
    assert run(gold, gold, "IOB2", probs=one_hot).ece == 0.0
    no_probs = run(gold, pred, "IOB2")
    assert no_probs.ece is None and "ece" not in no_probs.metrics()


# -- edge cases -----------------------------------------------------------------------------------
def test_no_gold_entities_gives_zero_recall_and_seqevals_report():
    gold = [["O", "O", "O"], ["O"]]
    pred = [["B-PER", "O", "O"], ["O"]]
    result = run(gold, pred, "IOB2", n_bootstrap=20)
    assert_report_equals(result.entity_report, seqeval_report(gold, pred, "IOB2"))
    assert result.entity_report.loc["PER", "support"] == 0
    assert result.confusion.loc["spurious", "PER"] == 1
    assert result.metrics()["entity_recall_micro"].value == 0.0


def test_no_predicted_entities_gives_zero_precision():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    pred = [["O", "O", "O"], ["O"]]
    result = run(gold, pred, "IOB2", n_bootstrap=20)
    assert_report_equals(result.entity_report, seqeval_report(gold, pred, "IOB2"))
    assert result.metrics()["entity_precision_micro"].value == 0.0
    assert result.confusion["missed"].tolist() == [1, 1, 0]


def test_no_entities_anywhere_leaves_macro_f1_undefined_as_seqeval_does():
    result = run([["O", "O"]], [["O", "O"]], "IOB2", n_bootstrap=10)
    assert np.isnan(result.entity_report.loc["macro avg", "f1-score"])
    assert np.isnan(seqeval_report([["O", "O"]], [["O", "O"]], "IOB2")["macro avg"]["f1-score"])
    assert result.metrics()["entity_f1_macro"].to_dict()["value"] is None
    assert result.intervals.loc["entity_f1_macro", "resamples"] == 0
    assert result.metrics()["token_accuracy"].value == 1.0


def test_one_sentence_gives_a_degenerate_interval():
    result = run([["B-PER", "O", "B-LOC"]], [["B-PER", "O", "B-ORG"]], "IOB2", n_bootstrap=30)
    for name in tok.INTERVAL_METRICS:
        row = result.intervals.loc[name]
        assert row["ci_low"] == row["value"] == row["ci_high"]


def test_a_type_only_in_predictions_gets_a_row_everywhere():
    names = tag_names("IOB2", (*TYPES, "MISC"))
    gold = [["B-PER", "O", "O"]]
    pred = [["B-PER", "O", "B-MISC"]]
    result = run(gold, pred, "IOB2", names=names)
    assert_report_equals(result.entity_report, seqeval_report(gold, pred, "IOB2"))
    assert result.entity_report.loc["MISC", "support"] == 0
    assert result.entity_report.loc["MISC", "precision"] == 0.0
    assert result.confusion.loc["spurious", "MISC"] == 1
    breakdown = result.error_breakdown.set_index(["schema", "entity"])
    assert breakdown.loc[("strict", "MISC"), "spurious"] == 1


# -- input errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scheme": "BIO"}, tok.SCHEME_UNKNOWN.format(scheme="BIO", schemes=", ".join(SCHEMES))),
    ({"gold": []}, tok.NO_SENTENCES),
    ({"gold": [[], []], "pred": [[], []]}, tok.NO_WORDS.format(n=2)),
    ({"pred": [["O"]]}, tok.SENTENCE_COUNTS.format(gold=2, pred=1)),
    ({"pred": [["O"], ["O"]]}, tok.SENTENCE_LENGTHS.format(i=0, gold=2, pred=1)),
    ({"pred": [["O", "B-XYZ"], ["O"]]}, "sentence 0: predicted tag 'B-XYZ' is not among"),
    ({"tag_names": ["O", "S-PER", "B-PER", "I-PER"]}, "tag name 'S-PER' does not fit the IOB2 scheme"),
    ({"tag_names": ["O"]}, "hold no entity tag"),
    ({"probs": [np.ones((2, 3)), np.ones((1, 5))]}, tok.PROBS_SHAPE.format(i=0, shape=(2, 3), words=2, tags=5)),
    ({"probs": [np.ones((2, 5))]}, tok.PROBS_COUNT.format(probs=1, sentences=2)),
    ({"n_bootstrap": -1}, tok.BOOTSTRAP_NEGATIVE.format(n=-1)),
    ({"confidence": 1.0}, tok.CONFIDENCE_RANGE.format(confidence=1.0)),
])
def test_bad_input_is_one_clear_line(kwargs, message):
    args = {"gold": [["B-PER", "I-PER"], ["O"]], "pred": [["B-PER", "O"], ["O"]], "probs": None,
            "tag_names": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"], "scheme": "IOB2", "n_bootstrap": 0,
            "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(AuditInputError, match=re.escape(message)) as err:
        tok.token_performance(**args)
    assert "\n" not in str(err.value)
