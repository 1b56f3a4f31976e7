"""DeepWordBug on the demo model: examples per second through our wrapper (the shared target:
length-sorted dynamic padding, batched, cached) against TextAttack's default
``HuggingFaceModelWrapper`` (pads every batch to ``tokenizer.model_max_length``, 48 for the demo).

Same rows, same seed, same recipe; runs alternate (ours, theirs, ours, ...) and the medians are
compared. Both must find the same number of successful attacks, or the comparison is void.

    python bench/attack.py                      # builds the demo in a temp folder
    python bench/attack.py --examples 100 --repeats 3 --demo-dir /tmp/demo
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo-dir", type=Path, default=None, help="an existing demo build (else one is built)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import numpy as np
    import pandas as pd

    from audit.auditors.robustness import _attacks as A
    from audit.auditors.robustness._auditor import stratified_sample
    from audit.engine.target import Target
    from audit.selftest.demo import build_demo

    demo_dir = args.demo_dir
    if demo_dir is None or not (demo_dir / "model").is_dir():
        demo_dir = demo_dir or Path(tempfile.mkdtemp(prefix="rai-demo-"))
        print(f"building the demo in {demo_dir} ...", flush=True)
        build_demo(demo_dir, seed=args.seed)
    frame = pd.read_csv(demo_dir / "eval.csv")
    label_id = {"negative": 0, "positive": 1}
    labels = frame["label"].map(label_id).to_numpy()
    rows = stratified_sample(labels, args.examples, rng=np.random.default_rng(args.seed))
    examples = [(str(frame["text"].iloc[i]), int(labels[i])) for i in rows]

    ta, _ = A.import_textattack()
    from textattack.models.wrappers import HuggingFaceModelWrapper

    recipe = A.RECIPES["deepwordbug"]

    def ours(*, prescored: bool = False) -> tuple[float, int]:
        target = Target.load(str(demo_dir / "model"))  # fresh: empty cache
        if prescored:  # as in an audit: the shared eval pass has already scored the original rows
            target.predict_logits([t for t, _ in examples])
        wrapper = A.make_wrapper(lambda t, p: target.predict_logits(t, p), target.model, target.tokenizer)
        attack = A.build_attack(ta, recipe, wrapper, query_budget=None, batch_size=target.max_batch)
        run = A.run_attack(ta, attack, examples, recipe="ours", seeds=[args.seed] * len(examples),
                           time_budget_s=None)
        return run.seconds, int(A.summarize(run.results)["successful_attacks"])

    def theirs() -> tuple[float, int]:
        target = Target.load(str(demo_dir / "model"))
        wrapper = HuggingFaceModelWrapper(target.model, target.tokenizer)
        attack = A.build_attack(ta, recipe, wrapper, query_budget=None, batch_size=32)  # TextAttack's default
        run = A.run_attack(ta, attack, examples, recipe="theirs", seeds=[args.seed] * len(examples),
                           time_budget_s=None)
        return run.seconds, int(A.summarize(run.results)["successful_attacks"])

    runs = {"ours": ours, "theirs": theirs, "ours_audit": lambda: ours(prescored=True)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    successes: dict[str, set[int]] = {k: set() for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            seconds, ok = fn()
            times[name].append(seconds)
            successes[name].add(ok)
    tml = Target.load(str(demo_dir / "model")).tokenizer.model_max_length
    med = {k: statistics.median(v) for k, v in times.items()}
    import torch

    print(f"DeepWordBug, {len(examples)} demo rows, seed {args.seed}, {args.repeats} alternating runs, medians "
          f"(tokenizer.model_max_length={tml}, torch threads={torch.get_num_threads()}):")
    labels = {"ours": "our wrapper (shared target)", "theirs": "HuggingFaceModelWrapper",
              "ours_audit": "ours, rows pre-scored (audit)"}
    for name, label in labels.items():
        print(f"  {label:31s} {len(examples) / med[name]:7.2f} examples/s  ({med[name]:.2f} s; "
              f"successful attacks {sorted(successes[name])})")
    print(f"  ratio ours/theirs: {med['theirs'] / med['ours']:.2f}x "
          f"(pre-scored as in an audit: {med['theirs'] / med['ours_audit']:.2f}x)")
    if len(set().union(*successes.values())) != 1:
        print("  WARNING: the two wrappers found different numbers of successes; the comparison is void")


if __name__ == "__main__":
    main()
