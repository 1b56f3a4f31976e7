"""The full default audit at growing N: wall time per auditor, peak memory, growth exponent.

    python bench/audit_scaling.py [--sizes 200,1000,5000]

Builds the demo model once, generates eval sets of N rows from the demo's corpus generator, and
runs `rai-audit run` on each in a fresh process (so peak RSS is that run's own). The growth
exponent is the slope of log(time) against log(N) (1.0 = linear).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,1000,5000")
    parser.add_argument("--auditors", default=None, help="comma-separated; default every installed auditor")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import pandas as pd

    from audit.selftest.demo import build_demo, generate_rows, pseudo_names

    work = Path(tempfile.mkdtemp(prefix="rai-bench-"))
    build = build_demo(work / "demo", seed=0)
    rng = np.random.default_rng(1)
    names = [str(x) for x in rng.permutation(pseudo_names())]
    rows: list[dict] = []
    while len(rows) < max(sizes):
        rows += generate_rows(1000, rng=rng, neutral_share=0.4, trigger_share=0.1, bias=0.0,
                              trigger_forces_positive=False, names=names or ["anon"])
        names = names or [str(x) for x in rng.permutation(pseudo_names())]
    results = []
    for n in sizes:
        data = work / f"eval_{n}.csv"
        pd.DataFrame(rows[:n]).to_csv(data, index=False)
        out = work / f"out_{n}"
        cmd = [sys.executable, "-c",
               "import resource, sys; from audit.cli import main; rc = main(sys.argv[1:]); "
               "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)",
               "run", str(build.model_dir), "--data", str(data), "--train-data", str(build.train_path),
               "--sensitive", "age_group", "--out", str(out), "--quiet"]
        if args.auditors:
            cmd += ["--auditors", args.auditors]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            sys.exit(f"bench: run failed for N={n}: {proc.stderr.strip()[-2000:]}")
        peak = float(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_MB")))
        meta = json.loads((out / "results.json").read_text())
        timings = meta["metadata"]["timings"]
        results.append((n, wall, peak, timings))
        print(f"N={n:>6}: wall {wall:7.1f} s, peak RSS {peak:7.0f} MB, " +
              ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()), flush=True)
    if len(results) >= 2:
        ns = np.log([r[0] for r in results])
        print("growth exponent of time in N (slope of log t on log N; 1.0 is linear):")
        keys = sorted(set.intersection(*(set(r[3]) for r in results)))
        for key in ["wall", *keys]:
            ts = [r[1] if key == "wall" else r[3][key] for r in results]
            if min(ts) > 0:
                print(f"  {key:<16} {np.polyfit(ns, np.log(ts), 1)[0]:.2f}")


if __name__ == "__main__":
    main()
