"""A full audit of a real model, phase by phase, per profile; and the explainability ratios.

    python bench/audit_real.py --cache ~/.cache/rai-audit/bench                 # everything
    python bench/audit_real.py --cache DIR --part audit --profiles quick,standard
    python bench/audit_real.py --cache DIR --part sanity --repeats 2
    python bench/audit_real.py --cache DIR --part ig --ig-rows 64 --budgets 4096,16384,65536

Model: MiniLM-L6-H384 (22.7 M parameters) fine-tuned on the first 8,000 SST-2 training rows
(bench/_sst2_model.py: 1 epoch, batch 32, lr 5e-5, max length 64; cached under ``--cache``). Data:
the 872 SST-2 dev sentences (``../shared/data/sst2``), those 8,000 training rows as the members.

``--part audit`` runs every installed auditor at the profile's budgets (``run_audit``, nothing
written) and prints per phase: seconds, forward passes (model calls) with their rows, backward
passes, and the engine's cache hits; then the auditors' own sub-timings. Auditors run side by side
in forked processes as ``rai-audit run`` runs them (``--auditor-processes``, default 0: as the CLI
decides); their passes are then counted in those processes, so the table gives their seconds (with
the wait for another auditor's result) and the run's wall time for all of them, and
``--auditor-processes 1`` gives the passes auditor by auditor. ``--part sanity`` and ``--part ig`` measure,
alternating the contenders in one process (so the ratios survive a shared machine): the sanity
check with the audit's 50 IG steps on the randomised copies against SANITY_STEPS, and Integrated
Gradients' achieved FLOP/s against a plain batched forward+backward of the same shapes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._sst2_model import SST2, fine_tuned_sst2, read_sst2, write_csv  # noqa: E402

DEFAULT_CACHE = Path("~/.cache/rai-audit/bench").expanduser()
TRAIN_ROWS = 8000


class PassCounter:
    """Forward passes (calls of the model, rows, real tokens) and backward passes (gradients that
    flow back through the logits), counted by hooks on one model and on its deep copies."""

    def __init__(self) -> None:
        self.forward = self.rows = self.tokens = self.backward = 0

    def install(self, model: Any) -> None:
        def pre(_module: Any, args: Any, kwargs: Any) -> None:
            x = kwargs.get("input_ids")
            if x is None:
                x = kwargs.get("inputs_embeds")
            if x is None and args:
                x = args[0]
            mask = kwargs.get("attention_mask")
            self.forward += 1
            self.rows += int(x.shape[0]) if x is not None else 0
            self.tokens += int(mask.sum()) if mask is not None else 0

        def post(_module: Any, _args: Any, output: Any) -> None:
            logits = getattr(output, "logits", None)
            if logits is not None and logits.requires_grad:
                logits.register_hook(self._count_backward)

        model.register_forward_pre_hook(pre, with_kwargs=True)
        model.register_forward_hook(post)

    def _count_backward(self, grad: Any) -> None:
        self.backward += 1

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.forward, self.rows, self.tokens, self.backward


def prepare(cache: Path) -> tuple[Path, Path, Path]:
    """The fine-tuned model, and the dev (eval) and train (members) rows as CSV files under ``cache``."""
    model = fine_tuned_sst2(cache=cache)
    data = cache / "data"
    data.mkdir(parents=True, exist_ok=True)
    dev = write_csv(data / "sst2_dev.csv", *read_sst2(SST2 / "dev.tsv"))
    train = write_csv(data / "sst2_train8000.csv", *read_sst2(SST2 / "train.tsv", limit=TRAIN_ROWS))
    return model, dev, train


@contextlib.contextmanager
def counted_audit() -> Iterator[tuple[PassCounter, list[dict[str, Any]]]]:
    """Hooks the model the audit loads and times every auditor's ``run`` with the passes it made."""
    from audit.auditors import base
    from audit.engine import target as target_mod

    counter, phases = PassCounter(), []
    load, run = target_mod.Target.load.__func__, base.Auditor.run  # type: ignore[attr-defined]
    holder: dict[str, Any] = {}

    def hooked_load(cls: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        t = load(cls, *args, **kwargs)
        counter.install(t.model)
        holder["target"] = t
        phases.append({"phase": "model load", "seconds": time.perf_counter() - start, "forward": 0, "rows": 0,
                       "tokens": 0, "backward": 0, "cache_hits": 0, "timings": {}})
        return t

    def timed_run(self: Any, ctx: Any) -> Any:
        t = holder.get("target")
        before, hits = counter.snapshot(), (t.cache_hits if t is not None else 0)
        start = time.perf_counter()
        result = run(self, ctx)
        after = counter.snapshot()
        phases.append({"phase": self.name, "seconds": time.perf_counter() - start,
                       "forward": after[0] - before[0], "rows": after[1] - before[1],
                       "tokens": after[2] - before[2], "backward": after[3] - before[3],
                       "cache_hits": (t.cache_hits if t is not None else 0) - hits,
                       "timings": dict(result.timings or {})})
        return result

    target_mod.Target.load = classmethod(hooked_load)  # type: ignore[method-assign,assignment]
    base.Auditor.run = timed_run  # type: ignore[method-assign]
    try:
        yield counter, phases
    finally:
        target_mod.Target.load = classmethod(load)  # type: ignore[method-assign,assignment]
        base.Auditor.run = run  # type: ignore[method-assign]


def audit_part(model: Path, dev: Path, train: Path, profiles: list[str], processes: int = 0) -> None:
    from audit import AuditConfig, run_audit

    for profile in profiles:
        with tempfile.TemporaryDirectory() as out, counted_audit() as (counter, phases):
            config = AuditConfig(model=str(model), data=str(dev), train_data=str(train), out=out, profile=profile,
                                 auditor_processes=processes)
            start = time.perf_counter()
            report = run_audit(config, progress=False, write=False)
            total = time.perf_counter() - start
        used = report.metadata["engine"].get("auditor_processes", 1)
        print(f"\n### profile {profile}: {total:.1f} s in all, on {len(report.results)} auditors "
              f"({'one after another' if used == 1 else f'side by side in {used} processes'})\n")
        print("| phase | seconds | forward passes | rows | real tokens | backward passes | cache hits |")
        print("|---|---|---|---|---|---|---|")
        accounted = 0.0
        for p in phases:
            accounted += p["seconds"]
            print(f"| {p['phase']} | {p['seconds']:.1f} | {p['forward']:,} | {p['rows']:,} | {p['tokens']:,} | "
                  f"{p['backward']:,} | {p['cache_hits']:,} |")
        if used > 1:  # the auditors ran in forked processes: their own clocks, the run's wall time
            for r in report.results:
                phases.append({"phase": r.auditor, "timings": dict(r.timings or {})})
                print(f"| {r.auditor} (its process) | {r.timings.get('total', 0.0):.1f} | | | | | |")
            wall = report.metadata["timings"].get("auditors", 0.0)
            accounted += wall
            print(f"| all auditors, side by side | {wall:.1f} | | | | | |")
        print(f"| rest (data, predictions, report) | {total - accounted:.1f} | | | | | |")
        for p in phases:
            subs = ", ".join(f"{k} {v:.1f}" for k, v in p["timings"].items() if isinstance(v, (int, float)))
            if subs:
                print(f"- {p['phase']}: {subs}")
        findings = [(r.auditor, f.severity, f.title) for r in report.results for f in r.findings]
        print(f"- findings ({len(findings)}): " + "; ".join(f"{a}/{s}: {t}" for a, s, t in findings))


def encoder_flops_per_token(model: Any, width: int) -> float:
    """Forward FLOPs per token of a BERT-style encoder: 2 per weight of every matrix multiply
    (embedding tables excluded: they are look-ups) plus attention's QK^T and AV (2 x 2 x width x
    hidden per layer)."""
    emb = {id(p) for p in model.get_input_embeddings().parameters()}
    base = getattr(model, "base_model", model)
    emb |= {id(p) for p in base.embeddings.parameters()} if hasattr(base, "embeddings") else set()
    matmul = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in emb)
    cfg = model.config
    return 2.0 * matmul + 4.0 * cfg.num_hidden_layers * width * cfg.hidden_size


def sanity_part(model_dir: Path, dev: Path, repeats: int, rows_n: int) -> None:
    import pandas as pd

    from audit.auditors.explainability import _attribution as attr
    from audit.auditors.explainability._checks import SANITY_STEPS, cascade_records, sanity_rows
    from audit.engine.target import Target

    target = Target.load(str(model_dir))
    tok, model = target.tokenizer, target.model
    texts = pd.read_csv(dev)["text"].astype(str).tolist()
    rows = attr.encode_rows(tok, texts[: rows_n * 2], max_length=target.max_length)
    rows = [rows[i] for i in sanity_rows(rows, examples=rows_n)]
    targets = target.predict_logits([r.text for r in rows]).argmax(axis=1)
    common = {"pad_id": tok.pad_token_id, "max_rows": 16, "max_tokens": 16384}
    methods = ["integrated_gradients", "saliency", "occlusion"]
    trained = {}
    for m in methods:
        run = attr.attribute(model, rows, targets, method=m, n_steps=50, **common)
        how = "first" if m in attr.WORD_FEATURE_METHODS else "sum"
        trained[m] = [attr.merge_words(t, r, how=how) for t, r in zip(run.tokens, rows, strict=True)]

    print(f"\n### sanity check, {len(rows)} rows, methods {', '.join(methods)}: alternating, {repeats} repeats\n")
    times: dict[int, list[float]] = {50: [], SANITY_STEPS: []}
    finals: dict[int, dict[str, float]] = {}
    for _ in range(repeats):
        for steps in (50, SANITY_STEPS):
            start = time.perf_counter()
            rec = cascade_records(model, rows, targets, trained, methods=methods, n_steps=steps, common=common, seed=0)
            times[steps].append(time.perf_counter() - start)
            last = max(r["stage"] for r in rec)
            finals[steps] = {r["method"]: round(r["spearman_abs"], 3) for r in rec if r["stage"] == last}
    for steps, ts in times.items():
        each = ", ".join(f"{t:.1f}" for t in ts)
        print(f"- IG {steps} steps on the copies: median {statistics.median(ts):.1f} s ({each}); "
              f"final Spearman {finals[steps]}")
    print(f"- ratio: {statistics.median(times[50]) / statistics.median(times[SANITY_STEPS]):.2f}x")



def ig_part(model_dir: Path, dev: Path, repeats: int, ig_rows_n: int, budgets: list[int]) -> None:
    """Integrated Gradients against a plain forward+backward of the same padded shapes."""
    import pandas as pd
    import torch

    from audit.auditors.explainability import _attribution as attr
    from audit.engine.target import Target

    target = Target.load(str(model_dir))
    tok, model = target.tokenizer, target.model
    texts = pd.read_csv(dev)["text"].astype(str).tolist()
    common = {"pad_id": tok.pad_token_id, "max_rows": 16}
    ig_rows = attr.encode_rows(tok, texts[:ig_rows_n], max_length=target.max_length)
    ig_targets = target.predict_logits([r.text for r in ig_rows]).argmax(axis=1)
    print(f"\n### Integrated Gradients ({len(ig_rows)} rows, 50 steps): achieved FLOP/s against a plain "
          "forward+backward of the same shapes\n")
    print("| max_tokens | IG s | IG GFLOP/s | plain fwd+bwd s | plain GFLOP/s | IG / plain |")
    print("|---|---|---|---|---|---|")
    for budget in budgets:
        ig_t, plain_t, flops = [], [], 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            attr.attribute(model, ig_rows, ig_targets, method="integrated_gradients", n_steps=50,
                           max_tokens=budget, **common)
            ig_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            flops = _plain_forward_backward(model, ig_rows, pad_id=tok.pad_token_id, steps=50, max_rows=16,
                                            max_tokens=budget)
            plain_t.append(time.perf_counter() - start)
        ig_s, plain_s = statistics.median(ig_t), statistics.median(plain_t)
        print(f"| {budget} | {ig_s:.1f} | {flops / ig_s / 1e9:.0f} | {plain_s:.1f} | {flops / plain_s / 1e9:.0f} | "
              f"{ig_s / plain_s:.2f} |")
    print(f"\nFLOPs counted as 2 x forward (weights frozen: no weight gradients), forward per token = "
          f"{encoder_flops_per_token(model, 32) / 1e6:.1f} MFLOP at width 32; torch threads {torch.get_num_threads()}.")


def _plain_forward_backward(model: Any, rows: list[Any], *, pad_id: int, steps: int, max_rows: int,
                            max_tokens: int) -> float:
    """The same padded batches IG runs (steps x rows per pass, cut at ``max_tokens``): forward on
    embeddings, backward to the embeddings only. Returns the FLOPs counted."""
    import torch

    from audit.auditors.explainability._attribution import _collate, attribution_mode, plan_batches

    flops = 0.0
    with attribution_mode(model):
        for batch in plan_batches([len(r.input_ids) for r in rows], max_rows=max_rows):
            ids, mask, tt, _ = _collate([rows[i] for i in batch], pad_id, "cpu")
            width = ids.shape[1]
            per_pass = max(len(batch), max_tokens // max(width, 1)) // len(batch) * len(batch)
            total = steps * len(batch)
            emb = model.get_input_embeddings()(ids).detach()
            for s in range(0, total, per_pass):
                n = min(per_pass, total - s)
                reps = -(-n // len(batch))
                x = emb.repeat(reps, 1, 1)[:n].clone().requires_grad_(True)
                out = model(inputs_embeds=x, attention_mask=mask.repeat(reps, 1)[:n],
                            token_type_ids=tt.repeat(reps, 1)[:n]).logits
                torch.autograd.grad(out[:, 0].sum(), x)
                flops += 2 * n * width * encoder_flops_per_token(model, width)
    return flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--part", choices=("all", "audit", "sanity", "ig"), default="all")
    parser.add_argument("--budgets", default="4096,16384,65536", help="IG token budgets to compare")
    parser.add_argument("--profiles", default="quick,standard")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sanity-rows", type=int, default=10, help="the audit's sanity_examples default")
    parser.add_argument("--ig-rows", type=int, default=64, help="rows of the IG FLOP/s measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--model", type=Path, default=None, help="use this model folder instead of fine-tuning")
    parser.add_argument("--auditor-processes", type=int, default=0,
                        help="as rai-audit run's (0: side by side when the CPUs are no more than the auditors; "
                             "1: one after another, with the passes counted auditor by auditor)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model, dev, train = prepare(args.cache) if args.model is None else (args.model, *prepare_data(args.cache))
    print(f"model {model} ready in {time.perf_counter() - start:.0f} s")
    if args.part in ("all", "sanity"):
        sanity_part(model, dev, args.repeats, args.sanity_rows)
    if args.part in ("all", "ig"):
        ig_part(model, dev, args.repeats, args.ig_rows, [int(b) for b in args.budgets.split(",")])
    if args.part in ("all", "audit"):
        audit_part(model, dev, train, args.profiles.split(","), processes=args.auditor_processes)


def prepare_data(cache: Path) -> tuple[Path, Path]:
    data = cache / "data"
    data.mkdir(parents=True, exist_ok=True)
    return (write_csv(data / "sst2_dev.csv", *read_sst2(SST2 / "dev.tsv")),
            write_csv(data / "sst2_train8000.csv", *read_sst2(SST2 / "train.tsv", limit=TRAIN_ROWS)))


if __name__ == "__main__":
    main()
