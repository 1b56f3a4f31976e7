"""Attacks in parallel local workers (``robustness.attack_workers``, issue 18 item 4): PWWS and
DeepWordBug in N forked worker processes of one torch thread each against one process, alternating,
on the same rows with the same per-example seeds; the results (outcome, adversarial text, queries)
are asserted identical across worker counts.

    python bench/attack_workers.py --model ~/.cache/rai-audit/bench/minilm-sst2-14ec372881d10f54 \\
        [--data eval.csv] [--examples 20] [--workers 1@2,1,2] [--repeats 2]

``--workers`` lists configurations: ``N`` is what the auditor does with ``attack_workers=N`` (1: this
process on one torch thread; N > 1: N workers forked once the recipe is built, one example at a
time); ``1@T`` is this process on T torch threads, the previous default (torch's two threads), whose
logits differ from one thread's by ~1e-6, so its results are compared, not asserted.

Without ``--data`` the first 872 SST-2 dev rows are written as CSV under ``--cache`` (as
bench/audit_real.py does). A configuration's seconds include forking its workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RECIPES = ("pwws", "deepwordbug")


def signature(result: Any) -> tuple[str, str, int]:
    from audit.auditors.robustness._attacks import outcome

    return outcome(result), result.perturbed_result.attacked_text.text, int(result.num_queries)


def main() -> None:
    import numpy as np
    import pandas as pd
    import torch

    from audit.auditors.robustness import _attack_chunks as C
    from audit.auditors.robustness import _attacks as A
    from audit.auditors.robustness._auditor import stratified_sample
    from audit.engine.target import Target

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default="")
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/rai-audit/bench").expanduser())
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--workers", default="1@2,1,2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = args.data
    if not data:
        from bench.audit_real import prepare_data

        data = str(prepare_data(args.cache)[0])
    target = Target.load(os.path.expanduser(args.model), device="cpu")
    frame = pd.read_csv(data)
    names = target.label_names
    labels = np.array([names.index(y) if isinstance(y, str) else int(y) for y in frame["label"]])
    rows = [int(i) for i in stratified_sample(labels, args.examples, rng=np.random.default_rng(args.seed))]
    texts = [str(frame["text"].iloc[i]) for i in rows]
    examples = [(t, int(labels[i])) for t, i in zip(texts, rows, strict=True)]
    originals = list(target.predict_logits(texts))  # the audit's shared pass has scored them
    ta, _ = A.import_textattack(need_wordnet=True)
    configs = args.workers.split(",")
    default_threads = torch.get_num_threads()
    seconds: dict[tuple[str, str], list[float]] = {}
    totals: dict[str, list[float]] = {c: [] for c in configs}
    reference: dict[str, list[tuple[str, str, int]]] = {}
    print(f"{args.examples} examples, torch threads on the driver: {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    import contextlib

    from audit.engine import forked

    one_thread = forked.one_torch_thread
    matched: dict[str, bool] = {}
    for rep in range(args.repeats):
        for config in configs if rep % 2 == 0 else configs[::-1]:
            workers, _, threads = config.partition("@")
            torch.set_num_threads(int(threads) if threads else default_threads)
            # 1@T: the attack on this process's T threads, as before every attack ran on one thread.
            C.one_torch_thread = forked.one_torch_thread = contextlib.nullcontext if threads else one_thread
            start = time.perf_counter()
            runner = C.ChunkRunner(target, workers=int(workers))
            for name in RECIPES:
                base = args.seed * 1_000_003 + RECIPES.index(name)
                run = runner.run(ta, A.RECIPES[name], examples=examples,
                                 seeds=[C.example_seed(base=base, row=i) for i in rows], originals=originals,
                                 query_budget=None, time_budget_s=None)
                seconds.setdefault((config, name), []).append(run.seconds)
                got = [signature(r) for r in run.results]
                if threads:
                    matched[config] = matched.get(config, True) and got == reference.get(name, got)
                else:
                    assert got == reference.setdefault(name, got), f"{name}: workers={config} changed the results"
                print(f"repeat {rep} workers {config} {name}: {run.seconds:.1f} s", flush=True)
            totals[config].append(time.perf_counter() - start)
    C.one_torch_thread = forked.one_torch_thread = one_thread
    for config, same in matched.items():
        print(f"{config}: results {'identical to' if same else 'differ from'} one thread's")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}; results identical across worker counts\n")
    print("| recipe | workers | seconds (median) | examples/s | runs |")
    print("|---|---|---|---|---|")
    for name in RECIPES:
        for config in configs:
            s = seconds[(config, name)]
            print(f"| {name} | {config} | {statistics.median(s):.1f} | {args.examples / statistics.median(s):.2f} | "
                  f"{', '.join(f'{x:.1f}' for x in s)} |")
    for config in configs:
        s = totals[config]
        print(f"| both | {config} | {statistics.median(s):.1f} | "
              f"{2 * args.examples / statistics.median(s):.2f} | {', '.join(f'{x:.1f}' for x in s)} |")


if __name__ == "__main__":
    main()
