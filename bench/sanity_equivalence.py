"""Which Integrated Gradients is enough on the sanity check's randomised copies?

The cascading-randomisation check (Adebayo et al. 2018) compares the trained model's attributions
with those of copies randomised from the top, by Spearman rank correlation of |attributions|; only
the ranks matter, not completeness. This runs the check on the same rows with the reference setting
(IG at the audit's 50 steps on every copy) and with cheaper ones: IG at fewer Gauss-Legendre steps,
and gradient x input (Adebayo et al.'s gradient family, one pass) on the copies against the trained
model's IG. Prints per-stage mean correlations, the largest gap to the reference, the correlation of
the stage curves, the verdict at the audit's threshold (0.5) and the time of each setting.

    python bench/sanity_equivalence.py --model DIR --data eval.csv [--rows 10] [--text-col text]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

THRESHOLD = 0.5  # the audit's sanity_threshold default
REFERENCE_STEPS = 50  # the audit's n_steps default


def main() -> None:
    import pandas as pd
    import torch
    from scipy.stats import spearmanr

    from audit.auditors.explainability import _attribution as attr
    from audit.auditors.explainability._checks import cascade_records, sanity_rows
    from audit.engine.target import Target

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--text-col", default="text")
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--steps", default="16,8,4,2,1")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sep = "\t" if args.data.endswith(".tsv") else ","
    texts = pd.read_csv(args.data, sep=sep, quoting=3 if sep == "\t" else 0)[args.text_col].astype(str).tolist()
    target = Target.load(args.model)
    tok, model = target.tokenizer, target.model
    rows = attr.encode_rows(tok, texts[: args.rows * 3], max_length=target.max_length)
    rows = [rows[i] for i in sanity_rows(rows, examples=args.rows)]
    targets = target.predict_logits([r.text for r in rows]).argmax(axis=1)
    common = {"pad_id": tok.pad_token_id, "device": target.device, "max_rows": 16, "max_tokens": 16384}
    ig = attr.attribute(model, rows, targets, method="integrated_gradients", n_steps=REFERENCE_STEPS, **common)
    trained = [attr.merge_words(t, r) for t, r in zip(ig.tokens, rows, strict=True)]

    def curve(method: str, steps: int) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        rec = cascade_records(model, rows, targets, {method: trained}, methods=[method], n_steps=steps,
                              common=common, seed=0)
        return np.array([r["spearman_abs"] for r in rec]), time.perf_counter() - start

    ref, ref_s = curve("integrated_gradients", REFERENCE_STEPS)
    print(f"model {args.model}: {len(rows)} rows, {len(ref)} stages; reference IG {REFERENCE_STEPS} steps "
          f"{ref_s:.1f} s, final {ref[-1]:.3f} -> {'fail' if ref[-1] >= THRESHOLD else 'pass'}")
    print("| on the copies | seconds | × faster | final ρ | verdict | max |Δρ| vs reference | ρ of stage curves |")
    print("|---|---|---|---|---|---|---|")
    print(f"| IG {REFERENCE_STEPS} steps (reference) | {ref_s:.1f} | 1.0 | {ref[-1]:.3f} | "
          f"{'fail' if ref[-1] >= THRESHOLD else 'pass'} | 0 | 1 |")
    settings = [("integrated_gradients", int(k), f"IG {k} steps") for k in args.steps.split(",")]
    settings.append(("input_x_gradient", 1, "gradient x input"))
    for method, steps, label in settings:
        got, secs = curve(method, steps)
        verdict = "fail" if got[-1] >= THRESHOLD else "pass"
        print(f"| {label} | {secs:.1f} | {ref_s / secs:.1f} | {got[-1]:.3f} | {verdict} | "
              f"{np.nanmax(np.abs(got - ref)):.3f} | {spearmanr(got, ref).statistic:.3f} |")
    print("stage curve (reference):", " ".join(f"{v:.2f}" for v in ref))


if __name__ == "__main__":
    main()
