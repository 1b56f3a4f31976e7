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


def _plan_cost(batches, lengths, batch_cost):
    return sum(len(b) * max(int(lengths[b].max()), 1) + batch_cost for b in batches)


def _best_contiguous_cost(width, *, max_tokens, max_batch, batch_cost):
    """Brute force over every cut of the sorted rows into batches that fit."""
    import itertools

    n = len(width)
    best = float("inf")
    for mask in itertools.product([False, True], repeat=n - 1):
        starts = [0] + [i + 1 for i, cut in enumerate(mask) if cut]
        bounds = list(zip(starts, starts[1:] + [n], strict=True))
        if all(hi - lo == 1 or ((hi - lo) <= max_batch and (hi - lo) * width[lo] <= max_tokens) for lo, hi in bounds):
            best = min(best, sum((hi - lo) * width[lo] + batch_cost for lo, hi in bounds))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_the_batch_plan_is_the_cheapest_cut(seed):
    """The planner's batches cover every row once, longest first, within the token budget and the
    row cap, and cost exactly what the best of all cuts of the sorted rows costs (brute force)."""
    from audit.engine.inference import plan_batches

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 11))
    lengths = rng.integers(1, 60, n)
    max_tokens, max_batch, cost = int(rng.integers(40, 300)), int(rng.integers(1, 6)), int(rng.integers(0, 80))
    batches = plan_batches(lengths, max_tokens=max_tokens, max_batch=max_batch, batch_cost=cost)
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    flat = np.concatenate(batches)
    assert list(lengths[flat]) == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) == 1 or (len(b) <= max_batch and len(b) * lengths[b].max() <= max_tokens)
    width = np.sort(lengths)[::-1]
    assert _plan_cost(batches, lengths, cost) == _best_contiguous_cost(width, max_tokens=max_tokens,
                                                                       max_batch=max_batch, batch_cost=cost)


def test_a_call_of_short_and_long_rows_is_not_padded_to_its_longest():
    """Faithfulness scores each row without its top words (long) and with only them (short) in one
    call: filling 64-row batches padded this one by 30% (57% in a real faithfulness pass); the plan pads
    it by under 15%."""
    from audit.engine.inference import plan_batches

    rng = np.random.default_rng(0)
    long_rows = rng.integers(20, 60, 68)
    lengths = np.concatenate([long_rows, rng.integers(3, 8, 68)])
    batches = plan_batches(lengths, max_tokens=8192, max_batch=64)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded <= 1.15 * lengths.sum()
    filled = plan_batches(lengths, max_tokens=8192, max_batch=64, batch_cost=10**9)  # fewest batches
    assert sum(len(b) * lengths[b].max() for b in filled) > 1.25 * lengths.sum()


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_never_costs_more_than_filling_every_batch(seed):
    """On larger calls too (no chunk edges: 12,388 rows of one length fill 13 batches of 1,000, as
    filling does), and with a batch dearer than a whole budget the plan is the filled one."""
    from audit.engine.inference import plan_batches

    same = plan_batches(np.full(12388, 20), max_tokens=10**6, max_batch=1000)
    assert sorted(len(b) for b in same) == [388] + [1000] * 12
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 130, int(rng.integers(2000, 4000)))
    max_tokens, max_batch = int(rng.choice([4096, 16384])), int(rng.choice([64, 256]))
    filled = plan_batches(lengths, max_tokens=max_tokens, max_batch=max_batch, batch_cost=max_tokens)
    for cost in (0, 32, 500):
        planned = plan_batches(lengths, max_tokens=max_tokens, max_batch=max_batch, batch_cost=cost)
        assert sorted(np.concatenate(planned).tolist()) == list(range(len(lengths)))
        assert _plan_cost(planned, lengths, cost) <= _plan_cost(filled, lengths, cost)
    assert len(filled) == min(len(b) for b in (filled, plan_batches(lengths, max_tokens=max_tokens,
                                                                     max_batch=max_batch, batch_cost=0)))
