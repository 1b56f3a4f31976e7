"""The checks on the attributions themselves, each a part of the explainability section.

* :func:`faithfulness`: ERASER comprehensiveness and sufficiency (DeYoung et al. 2020) of each
  method against a random choice of words, with paired bootstrap intervals of the gain over
  random; a method that does not beat random is not faithful here.
* :func:`sanity`: cascading randomisation of the model from the top (Adebayo et al. 2018);
  attributions that still rank words like the trained model's fail.

The erasure curves and the randomised copies are the engine in :mod:`._faithfulness`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import Figure, Finding, Metric, SectionPart, Table

if TYPE_CHECKING:
    from audit.auditors.explainability._attribution import EncodedRow
    from audit.core.context import AuditContext

RANDOM = "random"
# Random word orders averaged into the random baseline: more draws, a smoother baseline and more
# forward passes (each draw re-scores every row at every share of words).
RANDOM_DRAWS = 3
# Integrated Gradients steps on the randomised copies of the sanity check (Gauss-Legendre, Captum's
# default). Only ranks are compared there, not completeness; measured in bench/sanity_equivalence.py.
SANITY_STEPS = 8


def random_word_rngs(ctx: AuditContext) -> list[np.random.Generator]:
    """One generator per draw of random word orders: each row's orders come from its draw's
    generator in row order, so curves computed for rows in turn (the sampled rows, later the
    flagged ones) equal those computed for all rows at once."""
    return [ctx.rng(f"explainability.random_words:{d}") for d in range(RANDOM_DRAWS)]


def faithfulness_curves(ctx: AuditContext, *, rows: Sequence[EncodedRow], targets: np.ndarray,
                        word_scores: Mapping[str, list[np.ndarray]],
                        rngs: Sequence[np.random.Generator]) -> dict[str, Any]:
    """Per method and for random words (drawn from ``rngs``, :func:`random_word_rngs`, which
    advance), the ERASER erasure curves of ``rows``: per row, so those of rows in turn concatenate
    (:func:`concat_curves`)."""
    from audit.auditors.explainability import _faithfulness as fx

    def predict_probs(texts: list[str], pairs: list[str] | None) -> np.ndarray:
        return ctx.predict(texts, pairs, desc="faithfulness").probs

    has_pairs = any(r.pair is not None for r in rows)
    full = predict_probs([r.text for r in rows], [r.pair or "" for r in rows] if has_pairs else None)
    full_probs = full[np.arange(len(rows)), targets]
    curves = {m: fx.erasure_curves(rows, [fx.order_by_attribution(s) for s in scores], targets, full_probs,
                                   predict_probs)
              for m, scores in word_scores.items()}
    curves[RANDOM] = fx.mean_curves([fx.erasure_curves(rows, fx.random_orders(rows, rng), targets, full_probs,
                                                       predict_probs) for rng in rngs])
    return curves


def concat_curves(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """The curves of two sets of rows, the first's rows first."""
    from audit.auditors.explainability import _faithfulness as fx

    return {m: fx.ErasureCurves(comprehensiveness=np.concatenate([c.comprehensiveness, then[m].comprehensiveness]),
                                sufficiency=np.concatenate([c.sufficiency, then[m].sufficiency]))
            for m, c in first.items()}


def faithfulness(ctx: AuditContext, *, rows: Sequence[EncodedRow], targets: np.ndarray,
                 word_scores: Mapping[str, list[np.ndarray]], curves: Mapping[str, Any] | None = None) -> SectionPart:
    """AOPC comprehensiveness and sufficiency per method and for random words, the gains over
    random with findings for methods that do not clearly beat it, the curves' table and charts.
    ``curves``: the rows' :func:`faithfulness_curves` when already computed."""
    import pandas as pd

    from audit.auditors.explainability import _faithfulness as fx
    from audit.core.stats import bootstrap_ci

    if curves is None:
        curves = faithfulness_curves(ctx, rows=rows, targets=targets, word_scores=word_scores,
                                     rngs=random_word_rngs(ctx))
    seed = ctx.seed_for("explainability.aopc")  # one set of resamples for every method: paired intervals
    comp_desc = "ERASER comprehensiveness AOPC (DeYoung et al. 2020): p(y|x) - p(y|x without top words)"
    suff_desc = "ERASER sufficiency AOPC (DeYoung et al. 2020): p(y|x) - p(y|top words only)"
    rand = curves[RANDOM]
    metrics, findings = [], []
    for m, c in curves.items():
        for name, values, hib, desc in (("aopc_comprehensiveness", c.aopc_comprehensiveness, True, comp_desc),
                                        ("aopc_sufficiency", c.aopc_sufficiency, False, suff_desc)):
            lo, hi = bootstrap_ci(np.mean, [values], seed=seed)
            metrics.append(Metric(name, float(values.mean()), lo, hi, higher_is_better=hib, slice=m,
                                  description=desc))
    for m, c in curves.items():
        if m == RANDOM:
            continue
        gain = c.aopc_comprehensiveness - rand.aopc_comprehensiveness
        glo, ghi = bootstrap_ci(np.mean, [gain], seed=seed)
        sgain = rand.aopc_sufficiency - c.aopc_sufficiency
        slo, shi = bootstrap_ci(np.mean, [sgain], seed=seed)
        metrics.append(Metric("comprehensiveness_gain_over_random", float(gain.mean()), glo, ghi,
                              higher_is_better=True, slice=m,
                              description="AOPC comprehensiveness of the method minus that of random words"))
        metrics.append(Metric("sufficiency_gain_over_random", float(sgain.mean()), slo, shi,
                              higher_is_better=True, slice=m,
                              description="AOPC sufficiency of random words minus that of the method"))
        # One paired statistic per row from both ERASER measures: more power than either alone.
        both = (gain + sgain) / 2
        blo, bhi = bootstrap_ci(np.mean, [both], seed=seed)
        metrics.append(Metric("faithfulness_gain_over_random", float(both.mean()), blo, bhi,
                              higher_is_better=True, slice=m,
                              description="mean of the comprehensiveness and sufficiency gains over random"))
        evidence = {"method": m, "gain": float(both.mean()), "ci_low": blo, "ci_high": bhi,
                    "comprehensiveness_gain": float(gain.mean()), "sufficiency_gain": float(sgain.mean())}
        if not both.mean() > 0:
            findings.append(Finding(
                "warn", f"{m} is not faithful for this model",
                f"Its top-ranked words matter no more than random words (gain over random {both.mean():.3f}, "
                f"95% CI {blo:.3f} to {bhi:.3f}; comprehensiveness {gain.mean():.3f}, sufficiency "
                f"{sgain.mean():.3f}; DeYoung et al. 2020). Its explanations should not be trusted here.",
                evidence))
        elif not (np.isfinite(blo) and blo > 0):
            findings.append(Finding(
                "info", f"{m} is not clearly more faithful than random words",
                f"Gain over random {both.mean():.3f}, 95% CI {blo:.3f} to {bhi:.3f} on {len(both)} rows; explain "
                "more rows (explain_examples) for a conclusive check.", evidence))
    records = [{"method": m, "k_percent": k, "comprehensiveness": float(c.comprehensiveness[:, j].mean()),
                "sufficiency": float(c.sufficiency[:, j].mean())}
               for m, c in curves.items() for j, k in enumerate(fx.K_PERCENTS)]
    frame = pd.DataFrame(records)
    table = Table.from_frame("faithfulness", frame, title="Faithfulness by share of words removed (ERASER)")
    ks = list(fx.K_PERCENTS)
    figures = []
    for col, label in (("comprehensiveness", "higher is better"), ("sufficiency", "lower is better")):
        series = [(m, ks, [float(v) for v in getattr(c, col).mean(axis=0)]) for m, c in curves.items()]
        figures.append(Figure.lines(
            f"faithfulness_{col}", series=series, title=col.capitalize(), xlabel="top words (% of the row)",
            ylabel="drop in p(target)", markers=True,
            caption=f"{col.capitalize()} against the share of words, per method and for random words ({label})."))
    return SectionPart(metrics=metrics, tables=[table], figures=figures, findings=findings)


def sanity_rows(rows: Sequence[EncodedRow], *, examples: int) -> list[int]:
    """The documented subset the sanity check randomises on: the first ``examples`` explained rows
    of two words or more (a one-word row has no ranking to compare)."""
    return [i for i in range(len(rows)) if rows[i].n_words >= 2][:examples]


def explained_stages(n: int, budget: int) -> list[int]:
    """Which of ``n`` cascade stages are explained under a ``budget`` (0: all): evenly spaced, the
    first and the last always (the verdict reads the last). Every stage is still randomised in
    turn, so an explained stage's copy is the same whatever the budget."""
    if budget <= 0 or budget >= n:
        return list(range(n))
    if budget == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (budget - 1)) for i in range(budget)})


def explained_copies(model: Any, *, seed: int, stages: int = 0, progress: Any = None) -> Iterator[tuple[int, str, Any]]:
    """``(stage index, stage name, randomised copy)`` for the stages :func:`explained_stages`
    keeps under ``stages``; every stage is randomised in turn (and ticks ``progress``), so a kept
    stage's copy is the one the full cascade has there. Shared by the text and token checks."""
    from audit.auditors.explainability import _faithfulness as fx

    n_stages = len(fx.cascade_stages(model))
    keep = set(explained_stages(n_stages, stages))
    cascade: Any = fx.randomised_copies(model, seed=seed)
    if progress is not None:
        cascade = progress(cascade, total=n_stages, desc="sanity: cascading randomisation")
    for s, (name, copy) in enumerate(cascade):
        if s in keep:
            yield s, name, copy


def cascade_records(model: Any, rows: Sequence[EncodedRow], targets: np.ndarray,
                    trained: Mapping[str, Sequence[np.ndarray]], *, methods: Sequence[str], n_steps: int,
                    common: Mapping[str, Any], seed: int, progress: Any = None,
                    stages: int = 0) -> list[dict[str, Any]]:
    """Per stage of cascading randomisation (top first) and method: the mean Spearman correlation
    between ``trained`` word scores (the trained model's, computed once by the audit and reused
    here) and the same method's scores on the randomised copy. Integrated Gradients runs with
    ``n_steps`` on the copies, without its completeness delta (only ranks are compared); the rows
    of a stage are batched by length (:func:`._attribution.plan_batches`).

    Forward-only methods stay in the model's dtype: occlusion on bfloat16 copies ran 1.9x faster
    on this CPU (AVX-512 BF16) but lowered the correlations (the demo's first stage 0.83 -> 0.71),
    a bias towards passing the check, so it was not used."""
    from audit.auditors.explainability import _attribution as attr
    from audit.auditors.explainability import _faithfulness as fx

    records = []
    batch = {**common, "max_rows": max(int(common.get("max_rows", 1)), len(rows))}
    for s, stage, copy in explained_copies(model, seed=seed, stages=stages, progress=progress):
        for method in methods:
            run = attr.attribute(copy, rows, targets, method=method, n_steps=n_steps, convergence_delta=False, **batch)
            how = "first" if method in attr.WORD_FEATURE_METHODS else "sum"
            rand = [attr.merge_words(t, r, how=how) for t, r in zip(run.tokens, rows, strict=True)]
            orig = trained[method]
            rho_abs = [fx.rank_correlation(np.abs(a), np.abs(b)) for a, b in zip(orig, rand, strict=True)]
            rho = [fx.rank_correlation(a, b) for a, b in zip(orig, rand, strict=True)]
            records.append({"stage": s + 1, "randomised": stage, "method": method,
                            "spearman_abs": _nanmean(rho_abs), "spearman_signed": _nanmean(rho)})
    return records


def sanity(ctx: AuditContext, *, rows: Sequence[EncodedRow], targets: np.ndarray,
           word_scores: Mapping[str, list[np.ndarray]], common: Mapping[str, Any],
           options: Mapping[str, Any]) -> SectionPart:
    """Rank correlation of each method's attributions on the first ``sanity_examples`` rows (of
    two words or more) between the trained model and copies randomised stage by stage from the
    top; a final correlation at or above ``sanity_threshold`` fails the method. The trained side
    reuses the audit's attributions; Integrated Gradients on the copies runs ``sanity_steps``
    steps (:data:`SANITY_STEPS` by default: same verdicts and curves as the audit's 50 on the demo
    and on MiniLM/SST-2 at a fraction of the cost; bench/sanity_equivalence.py)."""
    import pandas as pd

    o = options
    idx = sanity_rows(rows, examples=o["sanity_examples"])
    if not idx:
        return SectionPart()
    steps = o.get("sanity_steps") or o["n_steps"]
    records = cascade_records(ctx.target.model, [rows[i] for i in idx], targets[idx],  # type: ignore[union-attr]
                              {m: [word_scores[m][i] for i in idx] for m in o["methods"]},
                              methods=o["methods"], n_steps=min(steps, o["n_steps"]), common=common,
                              seed=ctx.seed_for("explainability.cascade"), progress=ctx.progress,
                              stages=o.get("sanity_stages", 0))
    frame = pd.DataFrame(records)
    table = Table.from_frame("sanity", frame, title="Cascading randomisation: rank correlation with the "
                                                    "trained model's attributions (Adebayo et al. 2018)")
    last = frame["stage"].max()
    metrics, findings = [], []
    for method in o["methods"]:
        mf = frame[frame["method"] == method]
        final = float(mf.loc[mf["stage"] == last, "spearman_abs"].iloc[0])
        metrics.append(Metric("sanity_rank_correlation", final, higher_is_better=False, slice=method,
                              description="mean Spearman correlation of |attributions| between the trained and "
                                          "the fully randomised model (Adebayo et al. 2018)"))
        if not (math.isfinite(final) and final < o["sanity_threshold"]):
            findings.append(Finding(
                "fail", f"{method} fails the sanity check",
                f"After re-initialising the whole model its attributions still rank words like the trained "
                f"model's (Spearman {final:.2f} >= {o['sanity_threshold']}): they reflect the input more than "
                "what the model learned (Adebayo et al. 2018).",
                {"method": method, "spearman_abs": final}))
    return SectionPart(metrics=metrics, tables=[table], figures=[sanity_figure(frame, methods=o["methods"])],
                       findings=findings)


def sanity_figure(frame: Any, *, methods: Sequence[str]) -> Figure:
    """The cascading-randomisation curve of each method (one record per stage and method in ``frame``,
    with ``randomised`` and ``spearman_abs``): shared by the text and the token sanity checks."""
    stages = list(dict.fromkeys(zip(frame["stage"], frame["randomised"], strict=True)))
    series = [(m, [int(k) for k, _ in stages],
               [float(v) for v in frame.loc[frame["method"] == m, "spearman_abs"]]) for m in methods]
    # A Spearman correlation can be negative down to -1: the axis reaches the lowest point.
    lowest = min((y for _, _, ys in series for y in ys if math.isfinite(y)), default=0.0)
    return Figure.lines(
        "sanity", series=series, title="Cascading randomisation", xlabel="stages randomised (top first)",
        ylabel="Spearman |attr| vs trained", markers=True, ylim=(min(-0.2, lowest - 0.05), 1.05), integer_x=True,
        caption="Stages: " + ", ".join(f"{int(k)} = {n}" for k, n in stages)
                + ". A faithful method falls toward 0."
                + (" The stages between were randomised in turn but not explained (sanity_stages): a line"
                   " joins the stages measured." if [int(k) for k, _ in stages] != list(range(1, len(stages) + 1))
                   else ""))


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")
