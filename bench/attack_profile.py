"""Where PWWS and DeepWordBug spend their time through our wrapper, and what batching changes.

For each recipe, on the same rows with the same seed: the total attack time split into the model's
forward passes (timed by hooks on the model), the rest of our engine (tokenising, sorting, caching:
time inside the wrapper minus the forward passes) and TextAttack's own Python search (the rest);
plus the ten functions with the most own time (cProfile). Then the goal function's batch size at
the engine's row limit (today) against one big enough for a whole search step (the engine cuts it
at its token budget), alternating, checking the adversarial texts are identical.

    python bench/attack_profile.py --model DIR --data eval.csv [--examples 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import numpy as np
    import pandas as pd
    import torch

    from audit.auditors.robustness import _attacks as A
    from audit.engine.target import Target

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--recipes", default="pwws,deepwordbug")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--big-batch", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frame = pd.read_csv(args.data)
    names = Target.load(args.model).label_names
    examples = [(str(t), names.index(y) if isinstance(y, str) else int(y))
                for t, y in zip(frame["text"][: args.examples], frame["label"][: args.examples], strict=True)]
    ta, _ = A.import_textattack()
    clock = {"forward": 0.0, "engine": 0.0}
    started: list[float] = []

    def fresh_target() -> Any:
        target = Target.load(args.model)
        target.model.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
        target.model.register_forward_hook(lambda *_: clock.__setitem__(
            "forward", clock["forward"] + time.perf_counter() - started.pop()))
        return target

    def predict_probs(target: Any) -> Any:
        def run(texts: list[str], pairs: list[str] | None) -> np.ndarray:
            start = time.perf_counter()
            z = target.predict_logits(texts, pairs)
            out = np.exp(z - z.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
            clock["engine"] += time.perf_counter() - start
            return out
        return run

    def attack_once(recipe: str, batch: int, profile: bool = False) -> tuple[float, list[str], str]:
        target = fresh_target()  # a cold cache each time: the same work for every contender
        wrapper = A.make_wrapper(predict_probs(target), target.model, target.tokenizer)
        attack = A.build_attack(ta, A.RECIPES[recipe], wrapper, query_budget=None, batch_size=batch)
        clock.update(forward=0.0, engine=0.0)
        profiler = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        run = A.run_attack(ta, attack, examples, recipe=recipe, seeds=[0] * len(examples), time_budget_s=None)
        if profiler:
            profiler.disable()
        total = time.perf_counter() - start
        texts = [r.perturbed_result.attacked_text.text for r in run.results]
        top = ""
        if profiler:
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(10)
            top = buf.getvalue()
        return total, texts, top

    for recipe in args.recipes.split(","):
        total, _, top = attack_once(recipe, Target.load(args.model).max_batch, profile=True)
        forward, engine = clock["forward"], clock["engine"]
        print(f"\n### {recipe}: {len(examples)} rows, {total:.1f} s under cProfile "
              f"({len(examples) / total:.2f} examples/s)\n")
        print(f"- model forward passes {forward:.1f} s ({100 * forward / total:.0f}%)")
        print(f"- our engine around them {engine - forward:.1f} s ({100 * (engine - forward) / total:.0f}%)")
        print(f"- TextAttack's search and constraints {total - engine:.1f} s ({100 * (total - engine) / total:.0f}%)")
        print("\n```\n" + "\n".join(top.strip().splitlines()[-14:]) + "\n```")
        small = Target.load(args.model).max_batch
        times: dict[int, list[float]] = {small: [], args.big_batch: []}
        outputs: dict[int, list[str]] = {}
        for _ in range(args.repeats):
            for batch in times:
                secs, texts, _ = attack_once(recipe, batch)
                times[batch].append(secs)
                outputs[batch] = texts
        same = outputs[small] == outputs[args.big_batch]
        print(f"\n- goal-function batch {small}: median {statistics.median(times[small]):.1f} s; "
              f"batch {args.big_batch}: median {statistics.median(times[args.big_batch]):.1f} s; "
              f"ratio {statistics.median(times[small]) / statistics.median(times[args.big_batch]):.2f}x; "
              f"identical adversarial texts: {same}")


if __name__ == "__main__":
    main()
