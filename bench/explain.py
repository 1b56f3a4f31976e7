"""Batched Integrated Gradients against the straightforward per-row Captum call.

Both explain the same rows of the demo model with Layer Integrated Gradients on the word
embeddings, the same [PAD] baseline, target, score (log odds) and ``n_steps``. The baseline is
the textbook usage: one ``LayerIntegratedGradients.attribute`` call per row, all steps in one
forward. Ours: rows sorted by length, several rows per Captum call, the steps of several rows
in one forward, no weight gradients kept. Prints the median time of alternating repeats, the
speed-up, and the largest difference between the two attributions.

    python bench/explain.py                    # builds the demo model in a temp dir (~30 s)
    python bench/explain.py --demo-dir DIR     # reuse a built demo (DIR/model, DIR/eval.csv)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def per_row_captum(model: Any, tokenizer: Any, texts: list[str], targets: list[int], *, n_steps: int) -> list[Any]:
    """The obvious usage: one Captum call per row."""
    import torch
    from captum.attr import LayerIntegratedGradients

    from audit.auditors.explainability._attribution import score_function

    fwd = score_function(model, output="log_odds", multi_label=False, takes_token_types=True)
    lig = LayerIntegratedGradients(fwd, model.get_input_embeddings())
    out = []
    for text, target in zip(texts, targets, strict=True):
        enc = tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
        ids = enc["input_ids"]
        baseline = torch.where(enc["special_tokens_mask"].bool(), ids, torch.full_like(ids, tokenizer.pad_token_id))
        attr = lig.attribute(ids, baselines=baseline, target=target, n_steps=n_steps,
                             additional_forward_args=(enc["attention_mask"], enc["token_type_ids"]))
        out.append(attr.sum(dim=-1)[0].detach().numpy())
    return out


def batched(model: Any, tokenizer: Any, texts: list[str], targets: list[int], *, n_steps: int) -> list[Any]:
    from audit.auditors.explainability._attribution import attribute, encode_rows

    rows = encode_rows(tokenizer, texts, max_length=tokenizer.model_max_length)
    return attribute(model, rows, targets, method="integrated_gradients", pad_id=tokenizer.pad_token_id,
                     n_steps=n_steps).tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-dir", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    from audit.engine.target import Target
    from audit.selftest.demo import build_demo

    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo_dir
        if demo is None:
            demo = Path(tmp)
            build_demo(demo, seed=0)
        target = Target.load(str(demo / "model"), device="cpu")
        texts = pd.read_csv(demo / "eval.csv")["text"].astype(str).tolist()[: args.rows]
        targets = [int(t) for t in target.predict_logits(texts).argmax(axis=1)]
        model, tok = target.model, target.tokenizer
        times: dict[str, list[float]] = {"per-row Captum": [], "batched": []}
        results: dict[str, Any] = {}
        for _ in range(args.repeats):  # alternate, so drift in machine load hits both alike
            for name, fn in (("per-row Captum", per_row_captum), ("batched", batched)):
                start = time.perf_counter()
                results[name] = fn(model, tok, texts, targets, n_steps=args.n_steps)
                times[name].append(time.perf_counter() - start)
        diff = max(float(np.abs(a - b).max())
                   for a, b in zip(results["per-row Captum"], results["batched"], strict=True))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"rows={len(texts)} n_steps={args.n_steps} repeats={args.repeats} threads={torch.get_num_threads()}")
        for name, t in med.items():
            print(f"{name:>15}: {t:.3f} s median ({len(texts) / t:.1f} rows/s)")
        print(f"speed-up: {med['per-row Captum'] / med['batched']:.2f}x; max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
