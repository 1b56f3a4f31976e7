"""Auditors side by side against one after another, end to end, alternating in one run.

    python bench/side_by_side.py --model DIR --data dev.csv --train train.csv --profile quick --repeats 3

Each repeat runs ``rai-audit run`` twice in fresh processes, first with ``--auditor-processes 1``
(one after another, torch on every thread), then with ``--auditor-processes 0`` (the default: side
by side in one-thread processes when the CPUs are no more than the auditors), and prints both wall
times, the medians, their ratio and whether the two reports have the same findings. Alternating
keeps the ratio honest on a machine whose speed drifts. Also ``--contention``: the eval pass on
two torch threads and on one, alone and beside a busy process (why every process gets one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def audit_once(args: argparse.Namespace, processes: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "audit.cli", "run", str(args.model), "--data", str(args.data), "--profile",
           args.profile, "--out", str(out), "--quiet", "--auditor-processes", str(processes)]
    if args.train:
        cmd += ["--train-data", str(args.train)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"rai-audit exited with {done.returncode}: {done.stderr.strip()[-400:]}")
    return seconds


def findings(out: Path) -> list[tuple[str, str, str]]:
    data = json.loads((out / "results.json").read_text())
    return [(r["auditor"], f["severity"], f["title"]) for r in data["results"] for f in r["findings"]]


def contention(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from audit.engine.target import Target

    target = Target.load(str(args.model))
    texts = pd.read_csv(args.data)["text"].astype(str).tolist()

    def one(label: str, threads: int) -> None:
        target._cache.clear()
        torch.set_num_threads(threads)
        start = time.perf_counter()
        target.predict_logits(texts)
        print(f"- {label}, {threads} torch thread(s): {time.perf_counter() - start:.2f} s")

    print(f"\n### the eval pass ({len(texts)} rows), alone and beside one busy process\n")
    one("alone", 2)
    one("alone", 1)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        one("beside a busy process", 2)
        one("beside a busy process", 1)
    finally:
        busy.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--train", type=Path, default=None, help="members for the privacy auditor")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contention", action="store_true", help="also measure torch threads under contention")
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], 0: []}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            outs = {}
            for processes in (1, 0):
                outs[processes] = Path(tmp) / f"{processes}-{r}"
                times[processes].append(audit_once(args, processes, outs[processes]))
                print(f"repeat {r + 1}: --auditor-processes {processes}: {times[processes][-1]:.1f} s", flush=True)
            same = same and findings(outs[1]) == findings(outs[0])
    one, side = statistics.median(times[1]), statistics.median(times[0])
    print(f"\none after another: median {one:.1f} s ({', '.join(f'{t:.1f}' for t in times[1])})")
    print(f"side by side:      median {side:.1f} s ({', '.join(f'{t:.1f}' for t in times[0])})")
    print(f"ratio: {one / side:.2f}x; same findings in every repeat: {same}")
    if args.contention:
        contention(args)


if __name__ == "__main__":
    main()
