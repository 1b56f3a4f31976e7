"""The forward passes the NER auditors multiply (name swaps, entity switching, perturbations, masked
words), batched through the shared engine against the obvious per-sentence loop.

    python bench/ner_passes.py [--model DIR --data eval.jsonl] [--loop-sentences 400] [--repeats 3]

Without ``--model`` the NER demo tagger is built (about 20-40 s). The fairness and robustness
auditors run once on it with a recording target, which keeps every sentence they sent to
``ctx.predict_words``; then those sentences are predicted (a) in one call through a fresh
``Target`` (length-sorted, token-budget batches, as the auditors do) and (b) one sentence per call,
the loop an auditor without the shared engine would write (on the first ``--loop-sentences`` of
them, scaled to rows/s). Medians of ``--repeats`` alternating runs; word predictions must agree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def recorded_sentences(model: Path, data: Path, auditors: list[str]) -> dict[str, list[list[str]]]:
    """{auditor: every sentence it asked the target to tag}, from one real run of each."""
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.engine.target import Target
    from audit.tasks.token_data import read_token_data

    out: dict[str, list[list[str]]] = {}
    for name in auditors:
        target = Target.load(str(model))
        seen: list[list[str]] = []
        real = target.predict_words

        def record(sentences, *a, _real=real, _seen=seen, **k):  # noqa: ANN001, ANN202
            _seen.extend(list(s) for s in sentences)
            return _real(sentences, *a, **k)

        target.predict_words = record  # type: ignore[method-assign]
        cfg = AuditConfig(model=str(model), data=str(data), auditors=[name])
        ctx = AuditContext(config=cfg, target=target, data=read_token_data(data, tag_names=target.label_names),
                           progress_enabled=False)
        from audit.auditors.base import discover

        result = discover()[name].cls().run(ctx)
        print(f"{name}: status {result.status}, {len(seen)} sentences tagged", flush=True)
        out[name] = seen
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--loop-sentences", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--auditors", default="fairness,robustness")
    args = parser.parse_args()
    if args.model is None:
        from audit.selftest.ner_demo import build_ner_demo

        build = build_ner_demo(Path(tempfile.mkdtemp(prefix="rai-bench-ner-")) / "demo", seed=0)
        args.model, args.data = build.model_dir, build.eval_path
    from audit.engine.target import Target

    sentences = recorded_sentences(args.model, args.data, args.auditors.split(","))
    print("\n| auditor | sentences | batched s | batched sentences/s | per-sentence loop sentences/s | "
          "batched is x faster | same tags |\n|---|---|---|---|---|---|---|")
    for name, sents in sentences.items():
        loop_part = sents[: args.loop_sentences]
        batched, looped = [], []
        for _ in range(args.repeats):
            target = Target.load(str(args.model))
            t0 = time.perf_counter()
            words = target.predict_words(sents)
            batched.append(time.perf_counter() - t0)
            target = Target.load(str(args.model))
            t0 = time.perf_counter()
            single = [target.predict_words([s]).preds[0] for s in loop_part]
            looped.append(time.perf_counter() - t0)
        same = np.mean([np.array_equal(a, b) for a, b in zip(words.preds[: len(single)], single, strict=True)])
        b, lp = statistics.median(batched), statistics.median(looped)
        rate_b, rate_l = len(sents) / b, len(loop_part) / lp
        print(f"| {name} | {len(sents):,} | {b:.2f} | {rate_b:,.0f} | {rate_l:,.0f} | {rate_b / rate_l:.1f} | "
              f"{same:.3f} |", flush=True)


if __name__ == "__main__":
    main()
