"""The fairness auditor's groups step: vectorised bootstrap against the per-resample loop it replaced.

Both compute the same intervals from the same seeded resamples (the run checks every number of
the two results is identical); the old way draws one resample at a time (one ``rng.integers``
call per stratum) and evaluates the statistic once per resample, the new way draws every resample
at once and computes each statistic from counts per group. The old way also called fairlearn's
five headline functions per grouping, where the new one reads the same values off one
MetricFrame. The old code is the reference kept in ``tests/_bootstrap_reference.py``, patched into
the auditor for the "old" runs.

The case: N rows (default 4,000) that each mention one of 49 identity terms of the built-in
lexicon (7 categories, so 7 identity groupings of 5 to 10 groups), binary labels, and a stand-in
model (keyword scores plus a fixed per-text noise, a little biased against some terms) so the
timings are the auditor's own work, not inference. With ``--grouping column`` the 49 groups are
one sensitive column instead, judged as one grouping (49 strata per resample, 147 group-vs-rest
intervals over all rows: the worst case of the per-resample loop). Every step of the auditor
runs at its defaults (``n_bootstrap=1000``); step times are the auditor's own, measured as CPU
time of the process (``--clock wall`` for wall time), which other load on a shared machine
disturbs far less; the time inside the bootstrap intervals is CPU time too. Alternating repeats,
medians.

    python bench/fairness_bootstrap.py [--rows 4000] [--repeats 3] [--grouping identity|column] [--clock cpu|wall]

``--coverage N`` instead prints how often each candidate 95% interval of the demographic-parity
gap covers the true gap on N simulated sets (tests/_coverage_sim.py) with three groups tied for
the highest rate and with one, and its mean width, then the same for all five headline metrics
of the reported intervals: the figures that chose the method of audit.core.gap_bounds.

    python bench/fairness_bootstrap.py --coverage 200
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout: this checkout's audit and tests
    sys.path.insert(0, str(ROOT))

TERMS = {  # 49 terms of the built-in lexicon, chosen so no text mentions two of them
    "gender": ["man", "woman", "boy", "girl", "male", "female", "gentleman", "lady", "nonbinary", "transgender"],
    "religion": ["christian", "muslim", "jewish", "hindu", "buddhist", "sikh", "catholic", "atheist"],
    "race_ethnicity": ["asian", "latino", "latina", "hispanic", "arab"],
    "nationality": ["british", "canadian", "mexican", "chinese", "japanese", "nigerian", "german", "french",
                    "russian"],
    "sexual_orientation": ["gay", "lesbian", "bisexual", "heterosexual", "queer", "asexual"],
    "disability": ["deaf", "disabled", "autistic", "paralyzed", "blind"],
    "age": ["young", "elderly", "teenage", "middle-aged", "millennial", "old"],
}
PUSHED_DOWN = {"muslim", "elderly", "nigerian", "gay", "deaf"}  # the stand-in model's bias
NOUNS = ("neighbour", "student", "driver", "writer", "nurse", "farmer", "cook", "pilot")


class _StandIn:
    """Logits from keywords plus a fixed per-text noise: instant and deterministic."""

    label_names = ["negative", "positive"]
    multi_label = False

    def predict_logits(self, texts: Any, pairs: Any = None, *, progress: bool = False, desc: str = "") -> np.ndarray:
        out = np.zeros((len(texts), 2))
        for i, t in enumerate(texts):
            noise = (zlib.crc32(t.encode()) % 1000) / 1000 - 0.5
            score = (1.5 if "good" in t else -1.5) + 2.5 * noise
            if any(f" {term} " in t for term in PUSHED_DOWN):
                score -= 1.0
            out[i, 1] = score
        return out


def write_case(path: Path, rows: int, seed: int = 0) -> None:
    import pandas as pd

    rng = np.random.default_rng(seed)
    terms = [t for ts in TERMS.values() for t in ts]
    assert len(terms) == 49
    data = []
    for _ in range(rows):
        term = terms[rng.integers(len(terms))]
        positive = rng.random() < 0.5
        noun = NOUNS[rng.integers(len(NOUNS))]
        data.append({"text": f"the {term} {noun} said it was {'good' if positive else 'bad'} today",
                     "label": "positive" if positive else "negative", "identity": term})
    pd.DataFrame(data).to_csv(path, index=False)


def context(path: Path, grouping: str) -> Any:
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.engine.data import load_evalset

    target = _StandIn()
    cfg = AuditConfig(model="stand-in", data=str(path), sensitive=["identity"] if grouping == "column" else [])
    data = load_evalset(path, label_names=target.label_names, sensitive=cfg.sensitive)
    return AuditContext(config=cfg, target=target, data=data, progress_enabled=False)


def run(ctx: Any, *, old: bool, clock: str) -> tuple[dict[str, float], float, dict[str, Any]]:
    """One audit, the old code patched in when ``old``: (the auditor's step timings, by ``clock``,
    CPU seconds spent inside the bootstrap intervals, the result without timings)."""
    from audit.auditors import base
    from audit.auditors.fairness import FairnessAuditor
    from audit.auditors.fairness import _auditor as fairness
    from audit.auditors.fairness import _groups as groups
    from audit.auditors.fairness import _metrics as fm
    from tests import _bootstrap_reference as ref

    spent = [0.0]

    def timed(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - start
        return call

    saved = {name: getattr(fm, name) for name in ref.REPLACES}
    saved_auditor = {name: getattr(groups, name) for name in ref.AUDITOR_REPLACES}
    for name in ref.REPLACES:
        setattr(fm, name, timed(getattr(ref if old else fm, name)))
    if old:
        for name in ref.AUDITOR_REPLACES:
            setattr(groups, name, getattr(ref, name))
    modules = (fairness, base)  # they time the steps and the total with time.perf_counter
    if clock == "cpu":  # ... which becomes CPU time of this process
        for module in modules:
            module.time = SimpleNamespace(perf_counter=time.process_time)
    try:
        result = FairnessAuditor().run(ctx)
    finally:
        for module in modules:
            module.time = time
        for name, fn in saved.items():
            setattr(fm, name, fn)
        for name, fn in saved_auditor.items():
            setattr(groups, name, fn)
    assert result.status == "ok", result.reason
    out = result.to_dict()
    timings = out.pop("timings")
    return timings, spent[0], out


def _candidates(y: np.ndarray, p: np.ndarray, codes: np.ndarray, k: int, seed: int,
                n_resamples: int) -> dict[str, tuple[float, float]]:
    """Candidate 95% intervals of the demographic-parity difference on one simulated set."""
    from scipy.special import ndtri

    from audit.auditors.fairness import _metrics as fm
    from audit.core.gap_bounds import wilson_limits
    from audit.core.stats import percentile_interval

    name = "demographic_parity_difference"
    counts = fm.group_counts(y, p, codes, k)
    estimate = float(fm.headline_from_counts(counts)[name])
    dist = fm.headline_from_counts(fm.resampled_counts(y, p, codes, k, n_resamples=n_resamples, seed=seed,
                                                       strata=codes))[name]
    q_low, q_high = np.quantile(dist, [0.025, 0.975])
    # m-out-of-n bootstrap (Bickel & Sakov 2008), m = n^(2/3) per group, multinomial from counts
    flat, n = counts.reshape(k, 4), counts.sum(axis=(1, 2))
    m = np.maximum(2, np.round(n ** (2 / 3))).astype(int)
    rng = np.random.default_rng(seed)
    small = np.stack([rng.multinomial(m[g], flat[g] / n[g], size=n_resamples) for g in range(k)], axis=1)
    root = fm.headline_from_counts(small.reshape(n_resamples, k, 2, 2))[name] - estimate
    r_low, r_high = np.sqrt(np.mean(m / n)) * np.quantile(root, [0.025, 0.975])
    # every group's Wilson interval at once (Bonferroni over k), gap between the extreme limits
    sel = counts[:, :, 1].sum(axis=1)
    low, high = wilson_limits(sel, n, z=float(ndtri(1 - 0.05 / (2 * k))))
    return {
        "percentile": percentile_interval(dist),
        "basic (reflected percentile)": (2 * estimate - q_high, 2 * estimate - q_low),
        "BCa": fm.headline_bca_intervals(y, p, codes, k, n_resamples=n_resamples, seed=seed)[name],
        "m-out-of-n, m = n^(2/3)": (estimate - r_high, estimate - r_low),
        "simultaneous Wilson, both ends": (max(0.0, low.max() - high.min()), high.max() - low.min()),
        "reported: BCa + gap_bounds": fm.headline_intervals(y, p, codes, k, n_resamples=n_resamples, seed=seed)[name],
    }


def coverage(n_sets: int, n_resamples: int = 400) -> None:
    """Print the coverage tables (see the module docstring)."""
    from audit.auditors.fairness import _metrics as fm
    from tests import _coverage_sim as sim

    truth = sim.TRUTH["demographic_parity_difference"]
    table: dict[str, list[str]] = {}
    for tied in (True, False):
        hits: dict[str, list[float]] = {}
        for seed, s in enumerate(sim.simulated_sets(n_sets, tied=tied)):
            for label, (low, high) in _candidates(s.y, s.p, s.codes, s.k, seed, n_resamples).items():
                hits.setdefault(label, []).append(float(low <= truth <= high))
                hits.setdefault(label + " width", []).append(high - low)
        for label in [h for h in hits if not h.endswith(" width")]:
            width = hits[label + " width"]
            table.setdefault(label, []).extend([f"{np.mean(hits[label]):.3f}", f"{np.mean(width):.3f}"])
    print(f"demographic-parity difference, {n_sets} simulated sets per scenario, {n_resamples} resamples, nominal 95%")
    print("| interval | tied: coverage | tied: width | one max: coverage | one max: width |\n|---|---|---|---|---|")
    for label, cells in table.items():
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nreported intervals, every headline metric (coverage, mean width)")
    print("| metric | tied | one max |\n|---|---|---|")
    both = [sim.coverage(fm.headline_intervals, n_sets, tied=t, n_resamples=n_resamples) for t in (True, False)]
    for name in sim.TRUTH:
        print(f"| {name} | " + " | ".join(f"{c.covered[name]:.3f}, {c.width[name]:.3f}" for c in both) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grouping", choices=("identity", "column"), default="identity",
                        help="identity: 7 identity-term groupings of 49 terms (no sensitive column); "
                             "column: one sensitive column holding the 49 groups")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: step times are CPU time of this process, which other load on the machine "
                             "disturbs far less than wall time (default); wall: as the auditor reports them")
    parser.add_argument("--coverage", type=int, default=0, metavar="N",
                        help="print the interval coverage tables on N simulated sets instead of timing")
    args = parser.parse_args()
    if args.coverage:
        coverage(args.coverage)
        return

    path = Path(tempfile.mkdtemp(prefix="rai-bench-fairness-")) / "eval.csv"
    write_case(path, args.rows)
    ctx = context(path, args.grouping)
    steps: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    boot: dict[str, list[float]] = {"old": [], "new": []}
    results: dict[str, str] = {}
    for _ in range(args.repeats):
        for mode in ("old", "new"):  # alternating, so load changes hit both alike
            timings, cpu, result = run(ctx, old=mode == "old", clock=args.clock)
            for step, seconds in timings.items():
                steps[mode].setdefault(step, []).append(seconds)
            boot[mode].append(cpu)
            results.setdefault(mode, json.dumps(result, sort_keys=True))
    metrics = json.loads(results["new"])["metrics"]
    groups = sum(1 for m in metrics if m["name"] == "selection_rate")
    groupings = len({m["slice"].rsplit("=", 1)[0] for m in metrics if m["name"] == "selection_rate"})
    print(f"fairness auditor at its defaults (n_bootstrap=1000): {args.rows} rows, {groups} groups in {groupings} "
          f"grouping(s) ({args.grouping}); medians of {args.repeats} alternating repeats; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{f'step ({args.clock} s)':<28} {'old':>9} {'new':>9} {'old/new':>8}")
    for step in steps["new"]:
        old, new = statistics.median(steps["old"][step]), statistics.median(steps["new"][step])
        print(f"{step:<28} {old:9.2f} {new:9.2f} {old / new if new else float('nan'):8.1f}")
    old, new = statistics.median(boot["old"]), statistics.median(boot["new"])
    print(f"{'bootstrap intervals (CPU s)':<28} {old:9.2f} {new:9.2f} {old / new:8.1f}")
    same = results["old"] == results["new"]
    print(f"results identical (every metric, interval, table, figure and finding): {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
