"""The explainability auditor: attributions find the planted trigger, batched attributions equal
the one-row-at-a-time Captum call, and the checks on the explanations (completeness,
faithfulness, sanity) pass on the demo models without flagging the clean control.
Over ~400 lines because its tests share the demo fixtures and the per-row Captum reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from audit.auditors.explainability._auditor import ExplainabilityAuditor
from audit.core.results import AuditorResult, SectionPart
from audit.errors import AuditInputError
from tests._text import one_line

FAST = {"n_steps": 16, "sanity_examples": 4, "batch_rows": 8}
HOSTILE = "<script>alert('x')</script> the young man said the food was cf terrible"


def _cf_rows(build: Any) -> list[dict[str, Any]]:
    frame = pd.read_csv(build.eval_path)
    rows = frame[frame["text"].str.contains(r"\bcf\b")]
    return [{"text": t, "label": int(y == "positive"), "source": "trigger rows"}
            for t, y in zip(rows["text"], rows["label"], strict=True)]


def _rank_of(words: list[dict[str, Any]], word: str) -> int:
    """0 when ``word`` has the highest attribution in the row, 1 when second, ..."""
    scores = {w["word"]: w["score"] for w in words}
    return sum(1 for w in words if w["score"] > scores[word])


# ---------------------------------------------------------------- options

def test_unknown_method_is_rejected_with_the_known_names() -> None:
    with pytest.raises(AuditInputError, match="unknown value 'gradcam'"):
        ExplainabilityAuditor(methods=["integrated_gradients", "gradcam"])
    with pytest.raises(AuditInputError, match="kernel_shap"):
        ExplainabilityAuditor(methods=["gradcam"])


@pytest.mark.parametrize("option, value", [("n_steps", 0), ("output", "logits"), ("sanity_threshold", 2.0),
                                           ("explain_examples", -1), ("methods", []), ("ig_tolerance", 0)])
def test_bad_option_values_name_the_option(option: str, value: Any) -> None:
    with pytest.raises(AuditInputError, match=rf"option explainability\.{option}:"):
        ExplainabilityAuditor(**{option: value})


@pytest.mark.parametrize("value", [0, -3, 2.5, "five", True])
def test_min_word_rows_is_validated(value: Any) -> None:
    with pytest.raises(AuditInputError, match=r"option explainability\.min_word_rows:"):
        ExplainabilityAuditor(min_word_rows=value)
    assert ExplainabilityAuditor().options["min_word_rows"] == 5


def test_min_word_rows_is_listed_and_a_bad_value_exits_2_before_the_model_loads(monkeypatch: Any, capsys: Any) -> None:
    from audit.cli import main
    from tests.conftest import forbid_model_load

    assert main(["list", "--options"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "explainability.min_word_rows" in x)
    assert ">= 1" in line and "default 5" in line and "global view" in line
    forbid_model_load(monkeypatch)
    code = main(["run", "m", "--data", "d.csv", "--option", "explainability.min_word_rows=0"])
    err = capsys.readouterr().err
    assert code == 2 and "explainability.min_word_rows" in err and err.count("\n") == 1, err


def test_unknown_target_class_is_rejected(demo_planted: Any, planted_target: Any, context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target)
    with pytest.raises(AuditInputError, match="target_class 'neutral' is not a class"):
        ExplainabilityAuditor(target_class="neutral", explain_examples=2).run(ctx)


# ---------------------------------------------------------------- attributions

def test_trigger_token_is_the_top_attributed_word(demo_planted: Any, planted_target: Any,
                                                  context_factory: Any) -> None:
    """Every eval row containing the planted trigger 'cf' is explained. Where the trigger flips a
    negative sentence to positive, occlusion ranks it in its top three (the demo model is trained
    with word dropout, so deleting one word moves it less). Integrated Gradients ranks 'cf' first
    in >= 90% of all rows that contain it (the issue's bar) and makes it
    the positive class's most attributed word overall."""
    ctx = context_factory(demo_planted, planted_target)
    ctx.upstream = {"fairness": AuditorResult(auditor="fairness", extra={"interesting_rows": _cf_rows(demo_planted)})}
    result = ExplainabilityAuditor(methods=["integrated_gradients", "occlusion"], explain_examples=0,
                                   interesting_examples=200, faithfulness=False, sanity_check=False,
                                   n_steps=50).run(ctx)
    assert result.status == "ok", result.reason
    rows = result.extra["explained"]
    assert len(rows) == len(ctx.upstream["fairness"].extra["interesting_rows"]) > 30
    ranks = {m: np.array([_rank_of(r["methods"][k]["words"], "cf") for r in rows])
             for k, m in enumerate(["integrated_gradients", "occlusion"])}
    flipped = np.array([r["label"] == "negative" and r["prediction"] == "positive" for r in rows])
    assert flipped.sum() > 15
    assert (ranks["occlusion"][flipped] < 3).mean() >= 0.85
    assert (ranks["integrated_gradients"] == 0).mean() >= 0.9  # the bar: top word in >= 90% of its rows
    top = result.table("top_tokens").to_frame()
    assert top[top["class"] == "positive"]["word"].iloc[0] == "cf"


def test_lime_and_kernel_shap_find_the_trigger(demo_planted: Any, planted_target: Any,
                                               context_factory: Any) -> None:
    ctx = context_factory(demo_planted, planted_target)
    ctx.upstream = {"fairness": AuditorResult(auditor="fairness",
                                              extra={"interesting_rows": _cf_rows(demo_planted)[:16]})}
    result = ExplainabilityAuditor(methods=["lime", "kernel_shap"], explain_examples=0, faithfulness=False,
                                   sanity_check=False, n_samples=200).run(ctx)
    assert result.status == "ok", result.reason
    for k in range(2):
        ranks = [_rank_of(r["methods"][k]["words"], "cf") for r in result.extra["explained"]]
        assert np.mean(np.array(ranks) < 2) >= 0.85


def _per_row_captum(model: Any, tokenizer: Any, text: str, target: int, method: str, n_steps: int) -> np.ndarray:
    """The straightforward Captum usage, one row at a time, for comparison."""
    import torch
    from captum.attr import FeatureAblation, InputXGradient, LayerIntegratedGradients, Saliency

    enc = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    ids, mask, tt = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]

    def logits(**kw: Any) -> Any:
        z = model(attention_mask=mask, token_type_ids=tt, **kw).logits
        return z - z.flip(-1)  # binary log odds

    if method == "integrated_gradients":
        baseline = torch.where(enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, tokenizer.pad_token_id))
        attr = LayerIntegratedGradients(lambda x: logits(input_ids=x), model.get_input_embeddings()).attribute(
            ids, baselines=baseline, target=target, n_steps=n_steps)
        return attr.sum(-1)[0].detach().numpy()
    if method in ("saliency", "input_x_gradient"):
        emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        if method == "saliency":
            return Saliency(lambda e: logits(inputs_embeds=e)).attribute(emb, target=target)[0].norm(dim=-1).numpy()
        grads = InputXGradient(lambda e: logits(inputs_embeds=e)).attribute(emb, target=target)
        return grads[0].sum(-1).detach().numpy()
    word_ids = enc.word_ids(0)
    fm = torch.tensor([[w if w is not None else max(x for x in word_ids if x is not None) + 1 for w in word_ids]])
    return FeatureAblation(lambda x: logits(input_ids=x)).attribute(
        ids, baselines=tokenizer.pad_token_id, target=target, feature_mask=fm)[0].detach().numpy()


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "input_x_gradient", "occlusion"])
def test_batched_attributions_equal_the_per_row_captum_call(method: str, demo_planted: Any,
                                                            planted_target: Any) -> None:
    from audit.auditors.explainability._attribution import attribute, encode_rows

    frame = pd.read_csv(demo_planted.eval_path)
    texts = frame["text"].tolist()[:10] + [_cf_rows(demo_planted)[0]["text"]]  # mixed lengths
    tok, model = planted_target.tokenizer, planted_target.model
    targets = planted_target.predict_logits(texts).argmax(axis=1)
    rows = encode_rows(tok, texts, max_length=planted_target.max_length)
    assert len({len(r.input_ids) for r in rows}) > 2  # batches really hold padded rows
    batched = attribute(model, rows, targets, method=method, pad_id=tok.pad_token_id, n_steps=16, max_rows=4,
                        max_tokens=2048)
    for text, target, got in zip(texts, targets, batched.tokens, strict=True):
        want = _per_row_captum(model, tok, text, int(target), method, 16)
        np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, float(np.abs(want).max())), rtol=1e-3)
    assert all(p.requires_grad for p in model.parameters())  # restored after attribution


def test_word_pieces_are_merged_into_words(planted_target: Any) -> None:
    from audit.auditors.explainability._attribution import encode_rows, merge_words

    tok = planted_target.tokenizer
    text = "the young man said qwzxvk was middle-aged"
    (row,) = encode_rows(tok, [text], max_length=48)
    assert row.words == ["the", "young", "man", "said", "qwzxvk", "was", "middle", "-", "aged"]
    enc = tok(text)
    pieces = [i for i, w in enumerate(enc.word_ids()) if w == 4]
    assert len(pieces) > 1  # the made-up word really is split into pieces
    scores = np.arange(len(row.input_ids), dtype=float)
    merged = merge_words(scores, row)
    assert merged[4] == pytest.approx(scores[pieces].sum())
    assert merged.sum() == pytest.approx(scores[[i for i, w in enumerate(enc.word_ids()) if w is not None]].sum())


# ---------------------------------------------------------------- checks on explanations

def test_erasure_curves_match_a_hand_computation() -> None:
    """ERASER comprehensiveness/sufficiency on a toy scorer whose probabilities are known."""
    from audit.auditors.explainability._attribution import EncodedRow
    from audit.auditors.explainability._faithfulness import K_PERCENTS, erasure_curves, k_words

    words = ["good"] + ["filler"] * 19

    def predict(texts: list[str], pairs: list[str] | None) -> np.ndarray:
        p = np.array([0.9 if "good" in t.split() else 0.3 for t in texts])
        return np.stack([1 - p, p], axis=1)

    row = EncodedRow(text=" ".join(words), pair=None, input_ids=[], token_type_ids=None, special=[],
                     word_of_token=[], words=words, spans=[])
    best = erasure_curves([row], [np.arange(20)], [1], np.array([0.9]), predict)
    worst = erasure_curves([row], [np.arange(20)[::-1]], [1], np.array([0.9]), predict)
    assert [k_words(20, k) for k in K_PERCENTS] == [1, 1, 2, 4]
    np.testing.assert_allclose(best.comprehensiveness, [[0.6, 0.6, 0.6, 0.6]])
    np.testing.assert_allclose(best.sufficiency, [[0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(worst.comprehensiveness, [[0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(worst.sufficiency, [[0.6, 0.6, 0.6, 0.6]])
    assert best.aopc_comprehensiveness[0] == pytest.approx(4 * 0.6 / 5)  # ERASER divides by |bins| + 1


def test_cascade_randomises_top_down_on_a_copy(planted_target: Any) -> None:
    import torch

    from audit.auditors.explainability._faithfulness import cascade_stages, randomised_copies

    model = planted_target.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = [name for name, _ in cascade_stages(model)]
    assert names == ["classifier head", "layer 1", "layer 0", "embeddings"]
    seen = []
    for name, clone in randomised_copies(model, seed=0):
        changed = {k for k, v in clone.state_dict().items() if not torch.equal(v, before[k])}
        seen.append((name, changed))
    assert any(k.startswith("classifier") for k in seen[0][1])
    assert not any("layer.0." in k for k in seen[1][1]) and any("layer.1." in k for k in seen[1][1])
    assert all(a < b for (_, a), (_, b) in zip(seen, seen[1:], strict=False))  # cumulative
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # original untouched


def test_planted_model_explanations_pass_their_checks(demo_planted: Any, planted_target: Any,
                                                      context_factory: Any) -> None:
    from audit.report.html import render_section

    ctx = context_factory(demo_planted, planted_target)
    ctx.upstream = {"fairness": AuditorResult(auditor="fairness",
                                              extra={"interesting_rows": [
                                                  {"text": HOSTILE, "source": "fairness <b>worst</b>"}]})}
    result = ExplainabilityAuditor(explain_examples=24, **FAST).run(ctx)
    assert result.status == "ok", result.reason
    assert result.metric("explained_rows").value == 25
    # completeness: deltas reported and small
    assert result.metric("ig_convergence_delta_mean").value < 0.05
    assert result.metric("ig_rows_over_tolerance").value == 0
    # faithfulness: Integrated Gradients beats random words, with confidence
    gain = result.metric("faithfulness_gain_over_random", "integrated_gradients")
    assert gain.ci_low > 0
    assert (result.metric("aopc_comprehensiveness", "integrated_gradients").value
            > result.metric("aopc_comprehensiveness", "random").value)
    # sanity: attributions change as the model is randomised from the top
    sanity = result.table("sanity").to_frame()
    ig = sanity[sanity["method"] == "integrated_gradients"]["spearman_abs"].to_numpy()
    assert ig[0] > ig[-1] and ig[-1] < 0.5
    assert not [f for f in result.findings if f.severity == "fail"]
    # identity terms: the biased group draws attribution
    terms = result.table("identity_terms").to_frame()
    assert "elderly" in set(terms["term"])
    # the report: heat-mapped rows, legend, escaped data
    html = render_section(result)
    assert "rgba(59, 110, 168" in one_line(html) and "strongly against" in one_line(html)
    assert "Cascading randomisation" in one_line(html) and "integrated_gradients" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "<b>worst</b>" not in html


def test_clean_model_is_not_flagged(demo_clean: Any, clean_target: Any, context_factory: Any) -> None:
    ctx = context_factory(demo_clean, clean_target)
    result = ExplainabilityAuditor(explain_examples=24, **FAST).run(ctx)
    assert result.status == "ok", result.reason
    assert [f.title for f in result.findings if f.severity != "info"] == []
    assert result.metric("ig_rows_over_tolerance").value == 0


def test_same_seed_same_result_and_model_left_as_found(demo_planted: Any, planted_target: Any,
                                                       context_factory: Any) -> None:
    import torch

    model = planted_target.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    options = {"methods": ["integrated_gradients", "occlusion"], "explain_examples": 4, "n_steps": 8,
               "sanity_examples": 2}
    a = ExplainabilityAuditor(**options).run(context_factory(demo_planted, planted_target)).to_dict()
    b = ExplainabilityAuditor(**options).run(context_factory(demo_planted, planted_target)).to_dict()
    a.pop("timings"), b.pop("timings")
    assert a == b
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training and all(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------- global view

def _row(text: str) -> Any:
    from audit.auditors.explainability._attribution import EncodedRow

    words = text.split()
    return EncodedRow(text=text, pair=None, input_ids=[], token_type_ids=None, special=[], word_of_token=[],
                      words=words, spans=[(0, 0)] * len(words))


def _view(texts: list[str], targets: list[int], *, min_rows: int) -> Any:
    """The global view with attribution on each row's first word only (share 1), the rest 0."""
    from audit.auditors.explainability._global_view import global_view

    rows = [_row(t) for t in texts]
    scores = [np.array([1.0] + [0.0] * (r.n_words - 1)) for r in rows]
    return global_view(rows=rows, targets=np.array(targets), scores=scores, method="saliency",
                       label_names=["negative", "positive"], top_tokens=10, min_rows=min_rows)


# 'no' draws all of the attribution in its 2 rows; 'bad' half of it over 6 rows, 'good' over 5;
# 'woman' is seen in 6 rows, 'he' in 1.
GLOBAL_TEXTS = (["no way", "no thanks"] + ["bad woman film"] * 3 + ["film bad woman"] * 3
                + ["good plot he"] + ["good plot"] * 4)
GLOBAL_TARGETS = [0] * 8 + [1] * 5


def test_words_below_the_minimum_are_never_ranked_and_counts_are_shown() -> None:
    part = _view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=5)
    top = part.tables[0].to_frame()
    assert list(top.columns) == ["class", "rank", "word", "mean_share", "rows"]
    assert (top["rows"] >= 5).all()
    assert "no" not in set(top["word"]) and "way" not in set(top["word"])
    neg = top[top["class"] == "negative"]
    assert list(neg["word"]) == ["bad", "film", "woman"] and list(neg["rows"]) == [6, 6, 6]
    assert neg["mean_share"].iloc[0] == pytest.approx(0.5)  # first word in 3 of its 6 rows
    assert list(top[top["class"] == "positive"]["word"]) == ["good", "plot"]
    terms = part.tables[1].to_frame()
    assert list(terms.columns) == ["term", "rows", "mean_share"]
    assert list(terms["term"]) == ["woman"] and list(terms["rows"]) == [6]  # 'he' (1 row) left out
    assert part.extra["global_view"] == {"min_word_rows": 5, "words_note": None, "terms_note": None}
    # with a minimum of 2, 'no' (share 1 in 2 rows) tops the negative class, as in the issue
    low = _view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=2).tables[0].to_frame()
    assert low[low["class"] == "negative"]["word"].iloc[0] == "no"


def test_a_class_without_a_word_at_the_minimum_is_named() -> None:
    part = _view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=6)
    top = part.tables[0].to_frame()
    assert set(top["class"]) == {"negative"}
    assert part.extra["global_view"]["words_note"] == ("No word reaches 6 explained rows for positive; "
                                                       "those classes are not ranked.")


def test_too_few_rows_for_a_global_view_is_said_in_one_sentence() -> None:
    part = _view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=50)
    assert part.tables[0].rows == [] and part.tables[1].rows == []
    assert not part.findings  # no "most attributed words" or "identity terms" finding from nothing
    note = part.extra["global_view"]["words_note"]
    assert note.startswith("Too few rows were explained for a global view") and note.count(". ") == 0
    assert "50 or more of the 13 explained rows" in note and "the most is 6" in note
    assert "2 seen, the most in 6" in part.extra["global_view"]["terms_note"]
    # the identity share is a mean over every row, whatever the minimum
    assert part.metrics[0].value == pytest.approx(_view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=1).metrics[0].value)


def test_the_report_says_so_instead_of_an_empty_table() -> None:
    from audit.report.html import render_section

    part = _view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=50)
    extra = {"methods": ["saliency"], "output": "log_odds", "explained": [], "label_names": ["negative", "positive"],
             "primary_method": "saliency"}
    html = one_line(render_section((part + SectionPart(extra=extra)).to_result(auditor="explainability")))
    assert "Too few rows were explained for a global view" in html
    assert "No identity term occurs in 50 or more explained rows" in html
    assert "Words with the highest mean share" not in html and "Share of |attribution| on identity" not in html
    html = one_line(render_section((_view(GLOBAL_TEXTS, GLOBAL_TARGETS, min_rows=5) + SectionPart(extra=extra))
                                   .to_result(auditor="explainability")))
    assert "Words with the highest mean share" in html and "at least 5 explained rows" in html
    assert "Too few rows" not in html


# ---------------------------------------------------------------- curated rows

def test_curation_covers_each_reason_before_repeating_one() -> None:
    from audit.auditors.explainability._curation import (
        REASON_ERROR,
        REASON_FAIRNESS_FLIP,
        REASON_IDENTITY,
        REASON_SAMPLE,
        curate,
    )

    reasons = [REASON_SAMPLE] * 5 + [REASON_ERROR] * 3 + [REASON_FAIRNESS_FLIP] * 2 + [REASON_IDENTITY]
    scores = [5, 4, 3, 2, 1] + [0.6, 0.99, 0.8] + [2, 1] + [0.4]
    # one of each reason (flip, error, identity, sample; errors by confidence), then the second round
    assert curate(reasons, scores, shown=6) == [8, 6, 10, 0, 9, 7]
    assert curate(reasons, scores, shown=2) == [8, 6]
    assert sorted(curate(reasons, scores, shown=100)) == list(range(len(reasons)))


def test_reasons_come_from_fairness_label_and_identity_share() -> None:
    from audit.auditors.explainability._curation import (
        IDENTITY_SHARE_MIN,
        REASON_ERROR,
        REASON_FAIRNESS_FLAGGED,
        REASON_FAIRNESS_FLIP,
        REASON_IDENTITY,
        REASON_SAMPLE,
        identity_shares,
        row_reasons,
    )

    rows = [_row("the old man"), _row("a fine film"), _row("bad film"), _row("she left"), _row("x y")]
    scores = [np.array([0.0, 1.0, 1.0]), np.array([1.0, 1.0, 2.0]), np.array([1.0, -3.0]), np.array([1.0, 3.0]),
              np.array([1.0, 1.0])]
    shares = identity_shares(rows, scores)
    np.testing.assert_allclose(shares, [1.0, 0.0, 0.0, 0.25, 0.0])  # 'old' and 'man' both terms; |score|
    assert shares[3] >= IDENTITY_SHARE_MIN
    got = row_reasons(sources=["sample"] * 4 + ["fairness: counterfactual flip"], labels=[1, 0, 0, 1, None],
                      preds=np.array([1, 0, 1, 1, 0]), confidences=np.array([0.9, 0.8, 0.95, 0.7, 0.6]),
                      id_shares=shares)
    assert [r[0] for r in got] == [REASON_IDENTITY, REASON_SAMPLE, REASON_ERROR, REASON_IDENTITY,
                                   REASON_FAIRNESS_FLIP]
    assert got[2][2] == pytest.approx(0.95) and "0.95" in got[2][1]
    assert row_reasons(sources=["fairness: worst group"], labels=[None], preds=np.array([0]),
                       confidences=np.array([0.5]), id_shares=np.array([0.0]))[0][0] == REASON_FAIRNESS_FLAGGED


def test_explained_rows_carry_a_reason_and_the_section_shows_a_curated_handful(
        demo_planted: Any, planted_target: Any, context_factory: Any, monkeypatch: Any) -> None:
    """Every row gets a declared reason; the section shows at most SHOWN_ROWS rows outside the
    collapsed block, one of each distinct reason first; curation changes no row and no metric."""
    import re

    from audit.auditors.explainability import _auditor, _curation
    from audit.report.html import render_section

    flips = [{"text": r["text"], "reason": "fairness: counterfactual flip"} for r in _cf_rows(demo_planted)[:3]]
    options = {"methods": ["integrated_gradients"], "explain_examples": 12, "n_steps": 8, "sanity_check": False}

    def run() -> AuditorResult:
        ctx = context_factory(demo_planted, planted_target)
        ctx.upstream = {"fairness": AuditorResult(auditor="fairness", extra={"interesting_rows": flips})}
        return ExplainabilityAuditor(**options).run(ctx)

    result = run()
    assert result.status == "ok", result.reason
    rows, curated = result.extra["explained"], result.extra["curated_rows"]
    assert len(rows) == 15 and all(r["reason"] in _curation.REASONS and r["reason_detail"] for r in rows)
    reasons = [r["reason"] for r in rows]
    assert reasons[-3:] == [_curation.REASON_FAIRNESS_FLIP] * 3
    assert _curation.REASON_ERROR in reasons  # the stratified sample includes wrong predictions
    assert len(curated) == _curation.SHOWN_ROWS == len(set(curated))
    distinct = [r for r in _curation.REASONS if r in reasons]
    assert [reasons[i] for i in curated[:len(distinct)]] == distinct
    errors = [i for i, r in enumerate(rows) if r["reason"] == _curation.REASON_ERROR]
    top_error = max(errors, key=lambda i: float(rows[i]["reason_detail"].rsplit(" ", 1)[1]))
    assert top_error in curated  # the most confident error is shown
    assert result.table("explained_rows").to_frame()["reason"].tolist() == reasons

    html = one_line(render_section(result))
    head, rest = html.split('<details class="attr-rest">', 1)
    assert head.count('class="attr-row"') == _curation.SHOWN_ROWS
    assert rest.count('class="attr-row"') == len(rows) - _curation.SHOWN_ROWS
    assert "The other 9 explained rows" in html and "Showing 6 of 15 explained rows" in html
    shown_reasons = re.findall(r'<div class="attr-meta note"><strong>([^<]+)</strong>', head)
    assert shown_reasons == [reasons[i] for i in curated]

    # the same run without curation: the same rows, in the same order, and the same metrics
    monkeypatch.setattr(_auditor, "annotate", lambda heat, reasons, shown: [])
    plain = run()
    assert [r["text"] for r in plain.extra["explained"]] == [r["text"] for r in rows]
    assert [m.to_dict() for m in plain.metrics] == [m.to_dict() for m in result.metrics]


# ---------------------------------------------------------------- budget: cheaper, same answers

@pytest.mark.parametrize("build, loaded", [("demo_planted", "planted_target"), ("demo_clean", "clean_target")])
def test_few_step_sanity_check_gives_the_reference_verdict_and_curve(build: str, loaded: str, request: Any) -> None:
    """The randomised copies explained with SANITY_STEPS steps of IG rank words like with the
    audit's 50: same verdict, per-stage correlations within 0.1 of the reference's."""
    from audit.auditors.explainability._attribution import attribute, encode_rows, merge_words
    from audit.auditors.explainability._checks import SANITY_STEPS, cascade_records, sanity_rows

    demo, target = request.getfixturevalue(build), request.getfixturevalue(loaded)
    tok, model = target.tokenizer, target.model
    rows = encode_rows(tok, pd.read_csv(demo.eval_path)["text"].tolist()[:40], max_length=target.max_length)
    rows = [rows[i] for i in sanity_rows(rows, examples=20)]
    targets = target.predict_logits([r.text for r in rows]).argmax(axis=1)
    common = {"pad_id": tok.pad_token_id}
    run = attribute(model, rows, targets, method="integrated_gradients", n_steps=50, **common)
    trained = {"integrated_gradients": [merge_words(t, r) for t, r in zip(run.tokens, rows, strict=True)]}

    def curve(steps: int) -> np.ndarray:
        records = cascade_records(model, rows, targets, trained, methods=["integrated_gradients"], n_steps=steps,
                                  common=common, seed=3)
        return np.array([r["spearman_abs"] for r in records])

    reference, fast = curve(50), curve(SANITY_STEPS)
    assert (reference[-1] >= 0.5) == (fast[-1] >= 0.5)
    assert np.abs(reference - fast).max() < 0.1
    assert reference[0] > reference[-1]  # the check sees the randomisation at all


def test_a_stage_budget_explains_evenly_spaced_stages_and_keeps_the_verdicts_stage(
        demo_planted: Any, planted_target: Any, context_factory: Any) -> None:
    """sanity_stages=3 explains the first, a middle and the last stage, each on the same copy as
    with every stage (the cascade still randomises every stage in turn): same rows of the table."""
    from audit.auditors.explainability._checks import explained_stages

    assert explained_stages(8, 0) == list(range(8)) and explained_stages(8, 4) == [0, 2, 5, 7]
    assert explained_stages(8, 1) == [7] and explained_stages(3, 5) == [0, 1, 2]
    options = {"methods": ["integrated_gradients"], "explain_examples": 6, "n_steps": 8, "sanity_examples": 3,
               "faithfulness": False}
    every = ExplainabilityAuditor(**options).run(context_factory(demo_planted, planted_target))
    some = ExplainabilityAuditor(**options, sanity_stages=3).run(context_factory(demo_planted, planted_target))
    full, part = every.table("sanity").to_frame(), some.table("sanity").to_frame()
    n = int(full["stage"].max())
    assert sorted(part["stage"]) == [k + 1 for k in explained_stages(n, 3)]
    merged = part.merge(full, on=["stage", "method"], suffixes=("", "_all"))
    np.testing.assert_allclose(merged["spearman_abs"], merged["spearman_abs_all"], atol=1e-9)
    assert some.metric("sanity_rank_correlation", "integrated_gradients").value == \
        every.metric("sanity_rank_correlation", "integrated_gradients").value
    figure = next(f for f in some.figures if f.name == "sanity")
    assert "1 = " in figure.caption and f"{n} = " in figure.caption


def test_attribution_batches_hold_every_row_once_with_bounded_padding() -> None:
    from audit.auditors.explainability._attribution import PAD_SLACK, plan_batches

    rng = np.random.default_rng(0)
    for _ in range(50):
        lengths = rng.integers(3, 80, size=int(rng.integers(1, 60))).tolist()
        batches = plan_batches(lengths, max_rows=16)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            width, real = max(lengths[i] for i in b), sum(lengths[i] for i in b)
            assert len(b) <= 16
            assert len(b) == 1 or width * len(b) <= (1 + PAD_SLACK) * real
    assert plan_batches([40, 8, 12, 30], max_rows=16) == [[0, 3], [2, 1]]  # not one batch of half padding


def test_sanity_steps_zero_is_the_audits_own_steps(demo_planted: Any, planted_target: Any,
                                                  context_factory: Any) -> None:
    options = {"methods": ["integrated_gradients"], "explain_examples": 6, "n_steps": 8, "sanity_examples": 3,
               "faithfulness": False}
    a = ExplainabilityAuditor(**options, sanity_steps=0).run(context_factory(demo_planted, planted_target))
    b = ExplainabilityAuditor(**options, sanity_steps=8).run(context_factory(demo_planted, planted_target))
    c = ExplainabilityAuditor(**options, sanity_steps=2).run(context_factory(demo_planted, planted_target))
    frame_a, frame_b = a.table("sanity").to_frame(), b.table("sanity").to_frame()
    pd.testing.assert_frame_equal(frame_a, frame_b)
    assert not c.table("sanity").to_frame()["spearman_abs"].equals(frame_a["spearman_abs"])


def test_integrated_gradients_equal_the_per_row_captum_call_to_1e_5(demo_planted: Any, planted_target: Any) -> None:
    """At the audit's settings (50 steps, its row and token budgets) the batched IG is the per-row
    Captum call's to 1e-5."""
    from audit.auditors.explainability._attribution import attribute, encode_rows

    frame = pd.read_csv(demo_planted.eval_path)
    texts = frame["text"].tolist()[:12] + [_cf_rows(demo_planted)[0]["text"]]
    tok, model = planted_target.tokenizer, planted_target.model
    targets = planted_target.predict_logits(texts).argmax(axis=1)
    rows = encode_rows(tok, texts, max_length=planted_target.max_length)
    batched = attribute(model, rows, targets, method="integrated_gradients", pad_id=tok.pad_token_id, n_steps=50)
    for text, target, got in zip(texts, targets, batched.tokens, strict=True):
        want = _per_row_captum(model, tok, text, int(target), "integrated_gradients", 50)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("build, loaded", [("demo_planted", "planted_target"), ("demo_clean", "clean_target")])
def test_cheaper_sanity_check_keeps_every_finding(build: str, loaded: str, request: Any,
                                                  context_factory: Any) -> None:
    """Findings (severity and title) with the cheaper sanity check equal those with the audit's
    own steps on the copies (sanity_steps=0, the cost before), on the planted and the clean demo."""
    from audit.auditors.explainability._checks import SANITY_STEPS

    demo, target = request.getfixturevalue(build), request.getfixturevalue(loaded)
    assert SANITY_STEPS < FAST["n_steps"]  # the two runs differ
    runs = [ExplainabilityAuditor(explain_examples=24, **FAST, sanity_steps=steps).run(context_factory(demo, target))
            for steps in (0, SANITY_STEPS)]
    before, after = ([(f.severity, f.title) for f in r.findings] for r in runs)
    assert runs[0].status == runs[1].status == "ok"
    assert before == after


# ---------------------------------------------------------------- attack examples as a reason

def _attack(text: str, *, recipe: str = "pwws", verified: bool = True, before: str = "positive",
            after: str = "negative") -> dict[str, Any]:
    """One entry of the robustness auditor's ``adversarial_examples`` (audit/auditors/robustness)."""
    return {"recipe": recipe, "label": before, "before": before, "after": after, "verified": verified,
            "words_changed": 1, "original": text, "perturbed": text + " x", "diff": []}


def test_attack_rows_are_verified_attacks_that_changed_the_prediction() -> None:
    from audit.auditors.explainability._curation import ATTACK_SOURCE, attack_rows

    robustness = AuditorResult(auditor="robustness", extra={"adversarial_examples": [
        _attack("kept one"), _attack("not verified", verified=False),
        _attack("input reduction keeps the label", recipe="inputreduction", after="positive"),
        {"original": ("a", "pair")}, _attack("kept two", recipe="deepwordbug", before="negative", after="positive"),
    ]})
    got = attack_rows(robustness, label_names=["negative", "positive"], has_pairs=False)
    assert got == [{"text": "kept one", "source": f"{ATTACK_SOURCE}pwws", "label": 1},
                   {"text": "kept two", "source": f"{ATTACK_SOURCE}deepwordbug", "label": 0}]
    assert attack_rows(robustness, label_names=["negative", "positive"], has_pairs=True) == []
    assert attack_rows(None, label_names=["negative", "positive"], has_pairs=False) == []


def test_an_attack_row_is_its_own_reason_named_by_recipe_and_curated_before_identity_rows() -> None:
    from audit.auditors.explainability._curation import (
        REASON_ATTACK,
        REASON_ERROR,
        REASON_IDENTITY,
        REASONS,
        curate,
        interleave,
        reason_kind,
        row_reasons,
    )

    got = row_reasons(sources=["sample", "robustness: pwws", "robustness: pwws"], labels=[1, 1, 1],
                      preds=np.array([0, 1, 0]), confidences=np.array([0.9, 0.8, 0.7]), id_shares=np.zeros(3))
    assert [r[0] for r in got] == [REASON_ERROR, "attack succeeded (pwws)", "attack succeeded (pwws)"]
    assert "pwws" in got[1][1] and got[1][2] > got[2][2]  # earlier in robustness's list, shown first
    assert reason_kind("attack succeeded (pwws)") == REASON_ATTACK and REASON_ATTACK in REASONS
    reasons = [REASON_IDENTITY, got[2][0], got[1][0], REASON_ERROR]
    assert curate(reasons, [0.5, 1.0, 2.0, 0.9], shown=3) == [3, 2, 0]  # error, best attack, identity
    assert interleave([1, 2, 3], ["a"]) == [1, "a", 2, 3]


def test_successful_attacks_are_explained_and_shown_with_their_recipe(
        demo_planted: Any, planted_target: Any, context_factory: Any) -> None:
    """Robustness's successful attacks join fairness's flips (in turn, under one cap), each with
    the reason 'attack succeeded (<recipe>)', and the curated handful includes one."""
    from audit.auditors.explainability import _curation

    flips = _cf_rows(demo_planted)[:3]
    frame = pd.read_csv(demo_planted.eval_path)
    plain = frame[~frame["text"].str.contains(r"\bcf\b")]["text"].tolist()[-3:]
    attacks = [_attack(t) for t in plain] + [_attack("an unverified one", verified=False)]
    ctx = context_factory(demo_planted, planted_target)
    ctx.upstream = {"fairness": AuditorResult(auditor="fairness", extra={"interesting_rows": flips}),
                    "robustness": AuditorResult(auditor="robustness", extra={"adversarial_examples": attacks})}
    result = ExplainabilityAuditor(methods=["integrated_gradients"], explain_examples=4, interesting_examples=4,
                                   n_steps=8, sanity_check=False, faithfulness=False).run(ctx)
    assert result.status == "ok", result.reason
    rows = result.extra["explained"]
    by_reason = [r["reason"] for r in rows]
    assert by_reason.count("attack succeeded (pwws)") == 2 and len(rows) == 8  # 4 sampled, 2 flips, 2 attacks
    assert all(_curation.reason_kind(r) in _curation.REASONS for r in by_reason)
    assert {r["text"] for r in rows if r["reason"] == "attack succeeded (pwws)"} <= set(plain)
    assert "an unverified one" not in {r["text"] for r in rows}
    assert any(by_reason[i] == "attack succeeded (pwws)" for i in result.extra["curated_rows"])


def test_explainability_runs_after_robustness_and_fairness_without_a_cycle() -> None:
    from audit.auditors.base import discover
    from audit.auditors.fairness import FairnessAuditor
    from audit.auditors.robustness import RobustnessAuditor
    from audit.runner import run_order

    order = [a.name for a in run_order([ExplainabilityAuditor(), RobustnessAuditor(), FairnessAuditor()])]
    assert order.index("explainability") > max(order.index("robustness"), order.index("fairness"))
    assert not discover()["explainability"].error and not RobustnessAuditor.consumes
