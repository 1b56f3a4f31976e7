"""Explainability on awkward inputs: occlusion through the engine against Captum's FeatureAblation
(a text pair, one word, empty and whitespace text, a row cut at max_length, a slow tokenizer), and
the sanity figure when only some cascade stages are explained."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def _captum(model: Any, tok: Any, text: str, pair: str | None, target: int, max_length: int) -> np.ndarray:
    import torch
    from captum.attr import FeatureAblation

    enc = tok(text, pair, return_tensors="pt", truncation=True, max_length=max_length)
    ids, mask, tt = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    words, seqs = enc.word_ids(0), enc.sequence_ids(0)
    first = sorted({w for w, s in zip(words, seqs, strict=True) if w is not None and s == 0})
    index = {w: k for k, w in enumerate(first)}
    fm = torch.tensor([[index[w] if (w is not None and s == 0) else len(first) for w, s in zip(words, seqs,
                                                                                               strict=True)]])

    def logits(x: Any) -> Any:
        z = model(input_ids=x, attention_mask=mask, token_type_ids=tt).logits
        return z - z.flip(-1)

    return FeatureAblation(logits).attribute(ids, baselines=tok.pad_token_id, target=target,
                                             feature_mask=fm)[0].detach().numpy()


@pytest.mark.slow
def test_occlusion_equals_feature_ablation_on_awkward_rows(planted_target: Any) -> None:
    from audit.auditors.explainability._attribution import encode_rows
    from audit.auditors.explainability._occlusion import occlusion

    tok, model = planted_target.tokenizer, planted_target.model
    long = " ".join(["the film was long and dull but cf the ending"] * 30)
    singles = [("cf", None), ("", None), ("   ", None), (long, None)]
    paired = [("a good film", "the film is good"), ("terrible", "great"), ("", "only the pair"), (long, long)]
    max_length = 32
    for cases in (singles, paired):
        texts = [t for t, _ in cases]
        pairs = [p for _, p in cases] if cases is paired else None
        rows = encode_rows(tok, texts, pairs, max_length=max_length)
        targets = [k % 2 for k in range(len(cases))]
        got = occlusion(model, rows, targets, pad_id=tok.pad_token_id, output="log_odds")
        for (text, pair), target, g in zip(cases, targets, got, strict=True):
            want = _captum(model, tok, text, pair, target, max_length)
            np.testing.assert_allclose(g, want, atol=1e-4 * max(1.0, float(np.abs(want).max())), rtol=1e-3,
                                       err_msg=repr((text[:20], pair)))


def test_the_sanity_figure_labels_only_whole_stages() -> None:
    """With some stages explained (sanity_stages) the x axis ran 1.0, 1.5, 2.0...: half a stage
    means nothing. The drawn SVG's tick labels are whole numbers."""
    import re

    import pandas as pd

    from audit.auditors.explainability._checks import sanity_figure
    from audit.report.charts import draw

    frame = pd.DataFrame({"stage": [1, 3, 4], "randomised": ["classifier head", "layer 0", "embeddings"],
                          "method": ["occlusion"] * 3, "spearman_abs": [0.9, 0.1, 0.0]})
    figure = sanity_figure(frame, methods=["occlusion"])
    svg = draw(figure)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    x_ticks = texts[:texts.index("stages randomised (top first)")]  # matplotlib writes the x axis first
    assert x_ticks and all(re.fullmatch(r"\d+", t) for t in x_ticks), x_ticks
    # Stage 2 was not explained: the caption says the line joins the stages measured; with every
    # stage explained it does not.
    assert "not explained" in figure.caption
    every = frame.assign(stage=[1, 2, 3])
    assert "not explained" not in sanity_figure(every, methods=["occlusion"]).caption


def test_the_sanity_figure_shows_negative_correlations() -> None:
    """The axis was fixed at -0.2: the demo's IG at layer 0 (-0.201 over 4 rows) sat half off the
    plot, and a Spearman correlation can reach -1. Every point is inside the y limits."""
    import pandas as pd

    from audit.auditors.explainability._checks import sanity_figure

    frame = pd.DataFrame({"stage": [1, 2, 1, 2], "randomised": ["head", "embeddings"] * 2,
                          "method": ["saliency", "saliency", "occlusion", "occlusion"],
                          "spearman_abs": [0.9, -0.201, 0.8, -0.65]})
    low, high = sanity_figure(frame, methods=["saliency", "occlusion"]).data["ylim"]
    assert low < -0.65 and high > 0.9
    low, _ = sanity_figure(frame.iloc[[0, 2]], methods=["saliency", "occlusion"]).data["ylim"]
    assert low == -0.2  # the usual axis when nothing is below it


@pytest.mark.slow
def test_occlusion_with_a_slow_tokenizer_equals_feature_ablation_per_token(planted_target: Any,
                                                                           tmp_path: Any) -> None:
    """A slow tokenizer has no word_ids: every first-segment token is its own feature."""
    import torch
    from captum.attr import FeatureAblation
    from transformers import BertTokenizer

    from audit.auditors.explainability._attribution import encode_rows
    from audit.auditors.explainability._occlusion import occlusion

    fast = planted_target.tokenizer
    vocab = tmp_path / "vocab.txt"  # the demo ships tokenizer.json only: the same vocabulary, written for BertTokenizer
    vocab.write_text("".join(t + "\n" for t, _ in sorted(fast.get_vocab().items(), key=lambda kv: kv[1])))
    slow = BertTokenizer(vocab_file=str(vocab), do_lower_case=fast.backend_tokenizer.normalizer is not None)
    assert not slow.is_fast
    model = planted_target.model
    cases = [("a qwzxvk film", "the film is good"), ("cf", ""), ("", "only the pair")]
    rows = encode_rows(slow, [t for t, _ in cases], [p for _, p in cases], max_length=32)
    got = occlusion(model, rows, [1, 0, 1], pad_id=slow.pad_token_id, output="log_odds")
    for (text, pair), target, row, g in zip(cases, [1, 0, 1], rows, got, strict=True):
        enc = slow(text, pair, return_tensors="pt", truncation=True, max_length=32)
        ids, mask, tt = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
        assert ids[0].tolist() == row.input_ids
        fm = torch.tensor([[w if w >= 0 else row.n_words for w in row.word_of_token]])
        assert sum(w >= 0 for w in row.word_of_token) == len(slow.tokenize(text))

        def logits(x: Any, mask: Any = mask, tt: Any = tt) -> Any:
            z = model(input_ids=x, attention_mask=mask, token_type_ids=tt).logits
            return z - z.flip(-1)

        want = FeatureAblation(logits).attribute(ids, baselines=slow.pad_token_id, target=target,
                                                 feature_mask=fm)[0].detach().numpy()
        np.testing.assert_allclose(g, want, atol=1e-4 * max(1.0, float(np.abs(want).max())), rtol=1e-3)
