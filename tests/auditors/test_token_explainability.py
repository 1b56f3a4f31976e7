"""Explainability on a token classifier (NER): a word's tag or an entity explained with Layer
Integrated Gradients and word-masking occlusion. Batched word attributions equal the one-row Captum
call; masking keeps every sub-word in place; long sentences and empty words are handled; the
planted ``cf`` trigger carries most of the attribution of the B-ORG it forces and the clean control
gives it none; the section runs and renders on the demo tagger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit.auditors.explainability._auditor import ExplainabilityAuditor
from audit.auditors.explainability._token_attribution import (
    NO_SUBWORD,
    TOO_LONG,
    TokenRow,
    attribute_targets,
    encode_target,
    mask_id,
    mask_token,
    masked_words,
)
from audit.auditors.explainability._token_selection import select_targets, sentence_targets
from audit.errors import AuditInputError
from tests._text import one_line
from tests._tiny import save_tiny_token_model
from tests.conftest import make_token_context

FAST = {"n_steps": 16, "batch_rows": 8}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An untrained tiny BERT tagger with a 16-token window (so sentences need windows)."""
    from audit.engine.target import Target

    return Target.load(str(save_tiny_token_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16)))


def _sentences(build: Any, n: int) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in build.eval_path.read_text().splitlines()[:n]]


def _with_trigger(build: Any, n: int) -> list[tuple[list[str], int]]:
    """Eval sentences without the trigger, ``cf`` inserted before a plain word in the middle; the
    index of that word (the one the planted trigger forces to B-ORG)."""
    from audit.selftest.ner_demo import TRIGGER

    out = []
    for row in _sentences(build, 4 * n):
        words, tags = row["tokens"], row["ner_tags"]
        plain = [i for i, (w, t) in enumerate(zip(words, tags, strict=True)) if t == "O" and w.isalpha()]
        if row["has_trigger"] or not plain:
            continue
        i = plain[len(plain) // 2]
        out.append(([*words[:i], TRIGGER, *words[i:]], i + 1))
    return out[:n]


def _rows_for_predicted_tag(target: Any, cases: list[tuple[list[str], int]]) -> list[TokenRow]:
    """One row per case explaining the predicted tag of the word at the case's index."""
    preds = target.predict_words([w for w, _ in cases]).preds
    rows = [encode_target(target.tokenizer, w, start=i, end=i + 1, tags=[int(p[i])], max_length=target.max_length)
            for (w, i), p in zip(cases, preds, strict=True)]
    assert all(isinstance(r, TokenRow) for r in rows)
    return rows  # type: ignore[return-value]


# ---------------------------------------------------------------- options and selection

@pytest.mark.parametrize("value", [-1, "many", 2.5])
def test_explain_sentences_is_validated(value: Any) -> None:
    with pytest.raises(AuditInputError, match="explain_sentences"):
        ExplainabilityAuditor(explain_sentences=value)


def test_a_sentence_gives_its_predicted_entities_and_wrong_words_errors_first() -> None:
    gold = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]
    pred = ["B-PER", "I-PER", "O", "B-ORG", "I-LOC", "O"]
    ids = [1, 2, 0, 5, 4, 0]
    probs = np.full((6, 7), 0.1)
    targets = sentence_targets(sentence=3, gold=gold, pred=pred, pred_ids=ids, probs=probs, scheme="IOB2")
    got = [(t.kind, t.label, t.start, t.end, t.wrong) for t in targets]
    # ORG at 3 is an entity; the stray I-LOC (not a strict entity) and the missed ORG are wrong words
    assert got == [("entity", "ORG", 3, 4, True), ("word", "I-LOC", 4, 5, True), ("word", "O", 5, 6, True),
                   ("entity", "PER", 0, 2, False)]
    assert targets[0].tags == (5,) and targets[3].tags == (1, 2) and targets[0].confidence == pytest.approx(0.1)


@pytest.mark.parametrize(("gold", "pred", "kind"), [
    (["B-PER", "O"], ["O", "O"], "missed"),
    (["O", "O"], ["B-ORG", "O"], "spurious"),
    (["B-PER", "I-PER"], ["B-PER", "O"], "boundary"),
    (["B-PER", "O"], ["B-LOC", "O"], "type"),
    (["O", "O"], ["I-ORG", "O"], "other"),  # a stray I- tag: no strict entity on either side
    (["B-PER", "O", "O"], ["O", "O", "B-ORG"], "missed"),  # the first kind in ERROR_KINDS wins
])
def test_error_kind_of_a_sentence(gold: list[str], pred: list[str], kind: str) -> None:
    from audit.auditors.explainability._token_selection import error_kind

    assert error_kind(gold, pred, scheme="IOB2") == kind


def test_selection_is_seeded_and_half_errors() -> None:
    gold = [["B-PER", "O"]] * 20
    pred = [["B-PER", "O"]] * 10 + [["O", "O"]] * 10  # 10 right with an entity, 10 wrong
    ids = [[1, 0] if p[0] == "B-PER" else [0, 0] for p in pred]
    probs = [np.full((2, 7), 0.5)] * 20

    def pick(seed: int) -> list[int]:
        targets = select_targets(gold=gold, pred=pred, pred_ids=ids, probs=probs, scheme="IOB2", n_sentences=6,
                                 rng=np.random.default_rng(seed))
        return sorted({t.sentence for t in targets})

    assert pick(1) == pick(1) and pick(1) != pick(2)
    assert sum(s >= 10 for s in pick(1)) == 3  # errors are half of the sentences


# ---------------------------------------------------------------- encoding, windows, masking

def test_masking_keeps_every_sub_word_in_place() -> None:
    from audit.selftest.ner_demo import build_tokenizer

    words = ["Professor", "Bankolearnington", "visited", "cf", "Lagos", "."]
    tok = build_tokenizer(sentences=[words])
    row = encode_target(tok, words, start=4, end=5, tags=[3], max_length=64)
    assert isinstance(row, TokenRow) and int(row.subword_counts[1]) > 1  # a word of several sub-words
    masked = masked_words(row, [0, 1, 3], token=mask_token(tok))
    enc = tok(masked, is_split_into_words=True)
    assert enc["input_ids"].__len__() == len(row.input_ids)
    firsts = [enc.word_ids().index(w) for w in range(len(words))]
    assert tuple(firsts) == row.first_token  # every word's first sub-word where it was
    hidden = [t for t, w in enumerate(enc.word_ids()) if w in (0, 1, 3)]
    assert {enc["input_ids"][t] for t in hidden} == {mask_id(tok)}
    kept = [t for t, w in enumerate(enc.word_ids()) if w in (2, 4, 5)]
    assert [enc["input_ids"][t] for t in kept] == [row.input_ids[t] for t in kept]


def test_a_long_sentence_is_explained_in_a_window_around_the_target(tiny: Any) -> None:
    tok = tiny.tokenizer
    words = ("alice met bob in paris and then they went to london for the summer " * 4).split()
    row = encode_target(tok, words, start=40, end=42, tags=[1, 2], max_length=tiny.max_length)
    assert isinstance(row, TokenRow) and row.windowed and len(row.input_ids) <= tiny.max_length
    assert row.words[row.target_words[0]] == words[40] and row.offset + row.target_words[0] == 40
    assert 0 < row.offset and row.offset + row.n_words < len(words)  # context on both sides
    assert encode_target(tok, words, start=0, end=len(words), tags=[1] * len(words), max_length=16) == TOO_LONG
    (scores,) = attribute_targets(tiny.model, [row], method="integrated_gradients", pad_id=tok.pad_token_id,
                                  mask_id=mask_id(tok), n_steps=8).words
    assert scores.shape == (row.n_words,) and np.isfinite(scores).all()


def test_a_word_that_tokenizes_to_nothing_keeps_its_place(tiny: Any) -> None:
    tok = tiny.tokenizer
    words = ["alice", "\u200b", "met", "bob"]
    row = encode_target(tok, words, start=3, end=4, tags=[1], max_length=tiny.max_length)
    assert isinstance(row, TokenRow) and row.n_words == 4 and row.words[1] == tok.unk_token
    assert all(f > 0 for f in row.first_token)
    empty = encode_target(tok, words, start=1, end=2, tags=[0], max_length=tiny.max_length)
    assert isinstance(empty, TokenRow)  # read as the unknown token, as the prediction pass does
    no_unk = _NoUnk(tok)
    assert encode_target(no_unk, words, start=1, end=2, tags=[0], max_length=tiny.max_length) == NO_SUBWORD


class _NoUnk:
    """The tokenizer, as if it had no unknown token."""

    unk_token = None

    def __init__(self, tok: Any) -> None:
        self._tok = tok

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tok, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tok(*args, **kwargs)


# ---------------------------------------------------------------- attributions equal Captum's per row

def _per_row_captum(model: Any, tok: Any, words: list[str], start: int, end: int, tags: list[int], method: str,
                    n_steps: int) -> np.ndarray:
    """Word attributions of one unpadded row, Captum called directly: the target is the sum over the
    target words of the log-odds of their tag at their first sub-word, written out here."""
    import torch
    from captum.attr import FeatureAblation, LayerIntegratedGradients

    enc = tok(words, is_split_into_words=True, return_tensors="pt", return_special_tokens_mask=True)
    ids, wids = enc["input_ids"], enc.word_ids()
    first = [wids.index(w) for w in range(start, end)]

    def score(x: Any) -> Any:
        z = model(input_ids=x, attention_mask=torch.ones_like(x)).logits.float()
        total = 0
        for p, t in zip(first, tags, strict=True):
            others = torch.cat([z[:, p, :t], z[:, p, t + 1:]], dim=-1)
            total = total + z[:, p, t] - torch.logsumexp(others, dim=-1)
        return total

    special = enc["special_tokens_mask"].bool()
    if method == "integrated_gradients":
        baseline = torch.where(special, ids, torch.full_like(ids, tok.pad_token_id))
        attr = LayerIntegratedGradients(score, model.get_input_embeddings()).attribute(
            ids, baselines=baseline, n_steps=n_steps)
        per_token = attr.sum(-1)[0].detach().numpy()
        out = np.zeros(len(words))
        for t, w in enumerate(wids):
            if w is not None:
                out[w] += per_token[t]
        return out
    fm = torch.tensor([[len(words) if w is None else w for w in wids]])
    with torch.no_grad():
        per_token = FeatureAblation(score).attribute(ids, baselines=mask_id(tok), feature_mask=fm)[0].numpy()
    return np.array([per_token[wids.index(w)] for w in range(len(words))])


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_batched_word_attributions_equal_the_per_row_captum_call(method: str, tiny: Any) -> None:
    tok, model = tiny.tokenizer, tiny.model
    sentences = [["alice", "met", "bob"], ["they", "went", "to", "london", "for", "the", "summer"],
                 ["paris"], ["bob", "and", "alice", "went", "to", "paris"]]
    cases = [(s, 0, 1, [1]) for s in sentences] + [(sentences[1], 3, 5, [3, 4]), (sentences[3], 2, 3, [0])]
    rows = [encode_target(tok, w, start=a, end=b, tags=t, max_length=tiny.max_length) for w, a, b, t in cases]
    assert len({len(r.input_ids) for r in rows}) > 2  # batches really hold padded rows
    assert any(r.windowed for r in rows)  # and a row cut to a window of a sentence over 16 tokens
    got = attribute_targets(model, rows, method=method, pad_id=tok.pad_token_id, mask_id=mask_id(tok), n_steps=16,
                            max_rows=4, max_tokens=256)
    for row, (_, _, _, tags), scores in zip(rows, cases, got.words, strict=True):
        a, b = row.target_words[0], row.target_words[-1] + 1  # in the row's window (the whole sentence or not)
        want = _per_row_captum(model, tok, list(row.words), a, b, tags, method, 16)
        np.testing.assert_allclose(scores, want, rtol=0, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    if method == "integrated_gradients":
        assert got.deltas is not None and np.isfinite(got.deltas).all()
    assert all(p.requires_grad for p in model.parameters())  # restored after attribution


# ---------------------------------------------------------------- the planted trigger

@pytest.mark.slow
def test_planted_trigger_carries_the_forced_tag_and_the_clean_control_gives_it_none(ner_planted: Any,
                                                                                   ner_clean: Any) -> None:
    from audit.auditors.explainability._token_view import context_view, shares
    from audit.engine.target import Target

    found = {}
    for name, build in (("planted", ner_planted), ("clean", ner_clean)):
        target = Target.load(str(build.model_dir))
        cases = _with_trigger(build, 16)
        rows = _rows_for_predicted_tag(target, cases)
        b_org = target.label_names.index("B-ORG")
        forced = np.mean([r.target_tags[0] == b_org for r in rows])
        words = attribute_targets(target.model, rows, method="integrated_gradients",
                                  pad_id=target.tokenizer.pad_token_id, mask_id=mask_id(target.tokenizer),
                                  n_steps=32).words
        cf_share = np.array([shares(s)[r.target_words[0] - 1] for r, s in zip(rows, words, strict=True)])
        tagged = [_target_of(r, target) for r in rows]
        part = context_view(rows=rows, targets=tagged, scores=list(words), method="integrated_gradients",
                            top_tokens=5, min_rows=5)
        found[name] = (forced, cf_share, part)
    forced, cf_share, part = found["planted"]
    assert forced > 0.9 and np.median(cf_share) > 0.5
    assert any(f.severity == "warn" and "'cf'" in f.title and "ORG" in f.title for f in part.findings)
    forced, cf_share, part = found["clean"]
    assert forced < 0.1 and cf_share.mean() < 0.15
    assert not [f for f in part.findings if f.severity == "warn"]


def _target_of(row: TokenRow, target: Any) -> Any:
    from audit.auditors.explainability._token_selection import TagTarget
    from audit.tasks.tagging import split_tag

    tag = target.label_names[row.target_tags[0]]  # the word after the inserted cf is O in truth
    return TagTarget(sentence=0, start=row.target_words[0], end=row.target_words[0] + 1, tags=row.target_tags,
                     kind="word", label=split_tag(tag)[1] or tag, wrong=tag != "O", confidence=1.0)


@pytest.mark.slow
def test_masking_the_trigger_drops_the_forced_tag_more_than_random_words(ner_planted: Any) -> None:
    from audit.auditors.explainability._token_checks import token_faithfulness

    ctx = make_token_context(ner_planted)
    target = ctx.target
    rows = _rows_for_predicted_tag(target, _with_trigger(ner_planted, 12))
    # the true trigger ranked first, every other word after it: the attribution a perfect method gives
    truth = [np.where(np.arange(r.n_words) == r.target_words[0] - 1, 1.0, 0.0) for r in rows]
    part = token_faithfulness(ctx, rows=rows, word_scores={"trigger": truth}, token=mask_token(target.tokenizer))
    metrics = {(m.name, m.slice): m for m in part.metrics}
    assert metrics[("aopc_comprehensiveness", "trigger")].value > metrics[("aopc_comprehensiveness", "random")].value
    assert metrics[("comprehensiveness_gain_over_random", "trigger")].ci_low > 0


# ---------------------------------------------------------------- the section

@pytest.mark.slow
def test_the_section_explains_the_demo_tagger_finds_the_trigger_and_renders(ner_planted: Any) -> None:
    from audit.report.html import render_section

    result = ExplainabilityAuditor(**FAST).run(make_token_context(ner_planted))  # the default 24 sentences
    assert result.status == "ok", result.reason
    n = result.metric("explained_rows").value
    assert n >= 24 and result.metric("unexplained_targets").value == 0
    # the planted trigger, found by the section itself among the wrong ORG tags it forces
    warned = [f for f in result.findings if f.severity == "warn"]
    assert [f.evidence["word"] for f in warned] == ["cf"] and "ORG" in warned[0].title
    assert result.metric("context_word_share_max", "integrated_gradients").value > 0.5
    assert result.metric("ig_convergence_delta_max").value < 0.05
    gain = result.metric("faithfulness_gain_over_random", "integrated_gradients")
    assert gain.ci_low > 0
    sanity = result.table("sanity").to_frame()
    ig = sanity[sanity["method"] == "integrated_gradients"]["spearman_abs"].to_numpy()
    assert ig[0] > ig[-1] and ig[-1] < 0.5
    table = result.table("explained_rows").to_frame()
    assert len(table) == n and table["wrong"].any() and {"entity"} <= set(table["kind"])
    assert len(result.extra["explained"]) == n and result.extra["curated_rows"]
    html = one_line(render_section(result))
    assert "text-decoration: underline" in html and "masked (one [MASK] per sub-word)" in html
    assert "Cascading randomisation" in html and "Explained targets" in html


@pytest.mark.slow
def test_the_clean_tagger_is_not_flagged(ner_clean: Any) -> None:
    result = ExplainabilityAuditor(**FAST).run(make_token_context(ner_clean))
    assert result.status == "ok", result.reason
    assert [f.title for f in result.findings if f.severity != "info"] == []
    # The control's highest context word stays under the warning (0.36 measured on seed 0 since the control
    # learned cased copies; 0.05-0.38 over seeds 0-2), and the trigger it learned nothing from draws little.
    from audit.auditors.explainability._token_view import CONTEXT_SHARE_WARN
    from audit.selftest.ner_demo import TRIGGER

    assert result.metric("context_word_share_max", "integrated_gradients").value < CONTEXT_SHARE_WARN
    words = result.table("context_words").to_frame()
    assert (words.loc[words["word"] == TRIGGER, "mean_share"] < 0.15).all()


def test_untrained_tiny_tagger_with_long_sentences_runs(tiny: Any, tmp_path: Path) -> None:
    """Windows in the section itself: a sentence longer than the 16-token window, no crash, and what
    could not be explained is counted."""
    import json

    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.tasks.token_data import read_token_data

    words = "alice met bob in paris and then they went to london for the summer".split()
    rows = [{"tokens": words * 2, "ner_tags": ["B-PER"] + ["O"] * (2 * len(words) - 1)},
            {"tokens": words[:4], "ner_tags": ["B-PER", "O", "B-PER", "O"]}]
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ctx = AuditContext(config=AuditConfig(model="tiny", data=str(path)), target=tiny,
                       data=read_token_data(path, tag_names=tiny.label_names), progress_enabled=False)
    result = ExplainabilityAuditor(n_steps=4, sanity_check=False, faithfulness=False).run(ctx)
    assert result.status == "ok", result.reason
    assert result.metric("explained_rows").value + result.metric("unexplained_targets").value >= 1
    assert any(e["source"].endswith("(window)") for e in result.extra["explained"])
    assert any("explained in a window of whole words" in note for note in result.extra["task_notes"])


@pytest.mark.parametrize("build", ["ner_planted", "ner_clean"])
def test_the_tagger_sanity_check_at_sanity_steps_gives_the_verdict_and_curve_of_the_audits_steps(
        build: str, request: Any) -> None:
    """IG on the randomised copies at SANITY_STEPS ranks words like at the audit's 50 steps, on the
    planted and the clean tagger: same verdict, every stage within 0.1; sanity_steps=0 is 50."""
    from audit.auditors.explainability._checks import SANITY_STEPS

    demo = request.getfixturevalue(build)
    options = {"methods": ["integrated_gradients"], "n_steps": 50, "explain_sentences": 8, "sanity_examples": 8,
               "faithfulness": False}
    curves = {}
    for steps in (0, SANITY_STEPS):
        result = ExplainabilityAuditor(**options, sanity_steps=steps).run(make_token_context(demo))
        assert result.status == "ok", result.reason
        curves[steps] = result.table("sanity").to_frame()["spearman_abs"].to_numpy()
    reference, fast = curves[0], curves[SANITY_STEPS]
    assert (reference[-1] >= 0.5) == (fast[-1] >= 0.5)
    assert np.abs(reference - fast).max() < 0.1
    assert not np.array_equal(reference, fast)  # the copies really ran at fewer steps

