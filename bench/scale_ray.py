"""Scale of the Ray engine against the local one (issue 17), measured on this machine.

    PYTHONPATH=. python bench/scale_ray.py --model DEMO_MODEL_DIR [--rows 1000,10000,100000]
        [--audit-rows 1000,10000] [--nodes 3] [--out bench/scale_ray.json]

For each row count: the shared prediction pass (``Target.predict_logits`` on fresh rows, so no
cache hit) with the local engine and with the Ray engine (a local Ray instance with this
machine's CPUs, every pass distributed: ``min_rows=1``), and, for ``--audit-rows``, a whole
audit (performance and fairness, counterfactual pass included) both ways. Then a simulated
multi-node cluster (``ray.cluster_utils.Cluster``, ``--nodes`` nodes of one CPU each on this
machine) scores the largest row count and reports how many rows each node scored.

Rows are SST-2 sentences (``../shared/data/sst2/train.tsv``) when present, else the demo's eval
texts; beyond the sentences available, each is reused with a row number appended, so every row
is a distinct input (the engine's cache would otherwise score a repeat once). Logits are
checked byte-equal between the engines at every size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"


def _texts(n: int, model_dir: Path) -> list[str]:
    import pandas as pd

    if SST2.exists():
        base = pd.read_csv(SST2, sep="\t", quoting=3)["sentence"].astype(str).tolist()
    else:
        base = pd.read_csv(model_dir.parent / "eval.csv")["text"].astype(str).tolist()
    base = list(dict.fromkeys(base))
    return [base[i % len(base)] + ("" if i < len(base) else f" {i}") for i in range(n)]


def _pass(model_dir: Path, texts: list[str], engine: Any) -> tuple[float, np.ndarray]:
    from audit.engine.target import Target

    target = Target.load(str(model_dir), device="cpu")
    target.engine = engine
    start = time.perf_counter()
    logits = target.predict_logits(texts)
    return time.perf_counter() - start, logits


def _audit(model_dir: Path, rows: int, out: Path, **engine: Any) -> float:
    import pandas as pd

    from audit import AuditConfig, run_audit

    data = out / f"eval-{rows}.csv"
    if not data.exists():
        src = pd.read_csv(model_dir.parent / "eval.csv")
        reps = -(-rows // len(src))
        big = pd.concat([src] * reps, ignore_index=True).iloc[:rows].copy()
        big["text"] = [t if i < len(src) else f"{t} {i}" for i, t in enumerate(big["text"].astype(str))]
        big.to_csv(data, index=False)
    config = AuditConfig(model=str(model_dir), data=str(data), out=str(out / f"report-{rows}-{engine.get('engine')}"),
                         overwrite=True, sensitive=["age_group"], auditors=["performance", "fairness"],
                         options={"performance": {"n_bootstrap": 200}, "fairness": {"n_bootstrap": 200}}, **engine)
    start = time.perf_counter()
    run_audit(config, progress=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path,
                        help="model folder (the demo's, which rai-audit demo builds, or any sequence classifier)")
    parser.add_argument("--rows", default="1000,10000,100000", help="row counts of the prediction pass ('' for none)")
    parser.add_argument("--audit-rows", default="1000,10000")
    parser.add_argument("--nodes", type=int, default=3, help="simulated cluster nodes (0: skip that part)")
    parser.add_argument("--cluster-rows", type=int, default=20000, help="rows scored on the simulated cluster")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "scale_ray.json")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    import ray

    from audit.engine.ray_engine import RayEngine

    work = args.out.parent / "scale_ray_work"
    work.mkdir(exist_ok=True)
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(),
                                          "platform": platform.platform(terse=True), "ray": ray.__version__},
                              "model": str(args.model), "passes": [], "audits": [], "cluster": {}}
    start = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    report["ray_init_s"] = time.perf_counter() - start
    engine = RayEngine.start(min_rows=1)
    for n in [int(x) for x in args.rows.split(",") if x]:
        texts = _texts(n, args.model)
        t_local, a = _pass(args.model, texts, None)
        before = engine.startup_s
        t_ray, b = _pass(args.model, texts, engine)
        row = {"rows": n, "local_s": round(t_local, 2), "ray_s": round(t_ray, 2),
               "ray_to_first_batch_s": round(engine.startup_s - before, 2),
               "local_rows_per_s": round(n / t_local), "ray_rows_per_s": round(n / t_ray),
               "byte_identical": bool(np.array_equal(a, b)), "load_avg": os.getloadavg()[0]}
        report["passes"].append(row)
        print(json.dumps(row), flush=True)
    audit_rows = [int(x) for x in args.audit_rows.split(",") if x]
    if audit_rows:  # warm-up: the first audit in a process pays the auditors' imports (fairlearn, aif360)
        _audit(args.model, 200, work, engine="local")
    for n in audit_rows:
        row = {"rows": n, "local_s": round(_audit(args.model, n, work, engine="local"), 2),
               "ray_s": round(_audit(args.model, n, work, engine="ray", ray_min_rows=1000), 2),
               "load_avg": os.getloadavg()[0]}
        report["audits"].append(row)
        print(json.dumps(row), flush=True)
    ray.shutdown()
    if args.nodes > 0:
        _simulated_cluster(args, report)
    report["machine"]["load_avg_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _simulated_cluster(args: Any, report: dict[str, Any]) -> None:
    """``--nodes`` Ray nodes of one CPU each on this machine score ``--cluster-rows`` rows."""
    import ray
    from ray.cluster_utils import Cluster

    from audit.engine.ray_engine import RayEngine

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(args.nodes - 1):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    cluster.wait_for_nodes()
    engine = RayEngine.start(min_rows=1, actors=args.nodes)
    texts = _texts(args.cluster_rows, args.model)
    t_ray, b = _pass(args.model, texts, engine)
    report["cluster"] = {"nodes": args.nodes, "rows": len(texts), "seconds": round(t_ray, 2),
                         "rows_per_node": sorted(engine.rows_per_node.values(), reverse=True)}
    print(json.dumps(report["cluster"]), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    raise SystemExit(main())
