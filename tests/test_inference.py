"""The engine predicts exactly what transformers.pipeline predicts, and runs on GPU when present."""

from __future__ import annotations

import numpy as np
import pytest

from audit.engine.target import Target
from tests._tiny import CORPUS, save_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return Target.load(str(save_tiny_model(tmp_path_factory.mktemp("t") / "m", num_labels=3, seed=5)))


def test_predictions_equal_the_pipelines(tiny):
    from transformers import pipeline

    texts = CORPUS + [t.upper() + " and more words after it" for t in CORPUS] + ["x"]
    pipe = pipeline("text-classification", model=tiny.model, tokenizer=tiny.tokenizer, device=-1, top_k=None)
    out = pipe(texts, batch_size=4)
    label2id = tiny.model.config.label2id
    expected = np.zeros((len(texts), 3))
    for i, scores in enumerate(out):
        for d in scores:
            expected[i, label2id[d["label"]]] = d["score"]
    logits = tiny.predict_logits(texts)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert (probs.argmax(1) == expected.argmax(1)).all()


def test_oom_halves_the_batch_and_retries(tiny, monkeypatch):
    """An out-of-memory error splits the batch instead of crashing, and is counted."""
    from audit.engine import inference

    real = tiny.model.forward
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            calls["n"] += 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny.model, "forward", flaky)
    texts = [f"{t} {i}" for i, t in enumerate(CORPUS)]
    logits, _ = inference.predict_logits(tiny.model, tiny.tokenizer, texts, max_length=32, max_batch=8,
                                         stats=(stats := inference.PassStats()))
    monkeypatch.setattr(tiny.model, "forward", real)
    reference, _ = inference.predict_logits(tiny.model, tiny.tokenizer, texts, max_length=32, max_batch=1)
    np.testing.assert_allclose(logits, reference, atol=1e-5)
    assert stats.oom_backoffs >= 1 and calls["n"] >= 1


@pytest.mark.gpu
def test_bfloat16_on_gpu_agrees_with_float32(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    folder = save_tiny_model(tmp_path / "m", num_labels=2)
    fp32 = Target.load(str(folder), device="cuda", dtype="float32").predict_logits(CORPUS * 4)
    bf16 = Target.load(str(folder), device="cuda", dtype="bfloat16").predict_logits(CORPUS * 4)
    p32 = np.exp(fp32) / np.exp(fp32).sum(1, keepdims=True)
    p16 = np.exp(bf16) / np.exp(bf16).sum(1, keepdims=True)
    assert np.abs(p32 - p16).max() < 0.02
