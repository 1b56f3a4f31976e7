"""The checks on a token classifier's attributions, each a part of the explainability section.

The same checks as for text (:mod:`._checks`), with words **masked** instead of deleted: a hidden
word becomes one mask token per sub-word it had (:func:`._token_attribution.masked_words`), so the
target word and every other word keep their positions, and the target is still the word it was.

* :func:`token_faithfulness`: ERASER comprehensiveness and sufficiency (DeYoung et al. 2020) of
  each method against random words, on the probability of the explained tags (the mean over the
  target's words), with paired bootstrap intervals of the gain over random.
* :func:`token_sanity`: cascading randomisation (Adebayo et al. 2018); attributions that still rank
  words like the trained model's once the model is re-initialised fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.explainability import _faithfulness as fx
from audit.auditors.explainability._checks import RANDOM, RANDOM_DRAWS, _nanmean, explained_copies, sanity_figure
from audit.auditors.explainability._token_attribution import TokenRow, masked_words
from audit.core.results import Figure, Finding, Metric, SectionPart, Table

if TYPE_CHECKING:
    from audit.core.context import AuditContext

COMP_DESC = "ERASER comprehensiveness AOPC (DeYoung et al. 2020): p(tags|x) - p(tags|x, top words masked)"
SUFF_DESC = "ERASER sufficiency AOPC (DeYoung et al. 2020): p(tags|x) - p(tags|only the top words unmasked)"


def target_probs(ctx: AuditContext, rows: Sequence[TokenRow], sentences: Sequence[Sequence[str]], *,
                 per_row: int) -> np.ndarray:
    """The mean probability of each row's explained tags at its target words, for ``per_row``
    variants of each row (``sentences`` in row order), through the shared word-prediction pass."""
    probs = ctx.predict_words(sentences, desc="faithfulness (masked words)").probs
    out = np.zeros(len(sentences))
    for k, p in enumerate(probs):
        row = rows[k // per_row]
        out[k] = float(np.mean([p[w, t] for w, t in zip(row.target_words, row.target_tags, strict=True)]))
    return out


def masked_curves(ctx: AuditContext, rows: Sequence[TokenRow], orders: Sequence[np.ndarray], full: np.ndarray, *,
                  token: str) -> fx.ErasureCurves:
    """Comprehensiveness and sufficiency of the word ``orders`` (most important first), every
    masked sentence scored in one pass."""
    ks = fx.K_PERCENTS
    sentences: list[list[str]] = []
    for row, order in zip(rows, orders, strict=True):
        for k in ks:
            top = order[: fx.k_words(row.n_words, k)]
            rest = np.setdiff1d(np.arange(row.n_words), top)
            sentences += [masked_words(row, top, token=token), masked_words(row, rest, token=token)]
    probs = target_probs(ctx, rows, sentences, per_row=2 * len(ks)).reshape(len(rows), len(ks), 2)
    return fx.ErasureCurves(comprehensiveness=full[:, None] - probs[:, :, 0],
                            sufficiency=full[:, None] - probs[:, :, 1])


def token_faithfulness(ctx: AuditContext, *, rows: Sequence[TokenRow], word_scores: Mapping[str, Sequence[np.ndarray]],
                       token: str) -> SectionPart:
    """AOPC comprehensiveness and sufficiency per method and for random words, the gains over
    random (with findings for methods that do not clearly beat it), the curves' table and charts."""
    import pandas as pd

    from audit.core.stats import bootstrap_ci

    full = target_probs(ctx, rows, [list(r.words) for r in rows], per_row=1)
    curves = {m: masked_curves(ctx, rows, [fx.order_by_attribution(s) for s in scores], full, token=token)
              for m, scores in word_scores.items()}
    rng = ctx.rng("explainability.token_random_words")
    curves[RANDOM] = fx.mean_curves([masked_curves(ctx, rows, fx.random_orders(rows, rng), full, token=token)
                                     for _ in range(RANDOM_DRAWS)])
    seed = ctx.seed_for("explainability.token_aopc")  # the same resamples for every method: paired intervals
    rand = curves[RANDOM]
    metrics, findings = [], []
    for m, c in curves.items():
        for name, values, hib, desc in (("aopc_comprehensiveness", c.aopc_comprehensiveness, True, COMP_DESC),
                                        ("aopc_sufficiency", c.aopc_sufficiency, False, SUFF_DESC)):
            lo, hi = bootstrap_ci(np.mean, [values], seed=seed)
            metrics.append(Metric(name, float(values.mean()), lo, hi, higher_is_better=hib, slice=m, description=desc))
    for m, c in curves.items():
        if m == RANDOM:
            continue
        gain = c.aopc_comprehensiveness - rand.aopc_comprehensiveness
        sgain = rand.aopc_sufficiency - c.aopc_sufficiency
        both = (gain + sgain) / 2
        cis = {}
        for name, values, desc in (
                ("comprehensiveness_gain_over_random", gain, "AOPC comprehensiveness of the method minus random's"),
                ("sufficiency_gain_over_random", sgain, "AOPC sufficiency of random words minus the method's"),
                ("faithfulness_gain_over_random", both, "mean of the comprehensiveness and sufficiency gains")):
            cis[name] = bootstrap_ci(np.mean, [values], seed=seed)
            metrics.append(Metric(name, float(values.mean()), *cis[name], higher_is_better=True, slice=m,
                                  description=desc))
        blo, bhi = cis["faithfulness_gain_over_random"]
        evidence = {"method": m, "gain": float(both.mean()), "ci_low": blo, "ci_high": bhi}
        if not both.mean() > 0:
            findings.append(Finding(
                "warn", f"{m} is not faithful for this tagger",
                f"Masking its top-ranked words changes the explained tags no more than masking random words (gain "
                f"over random {both.mean():.3f}, 95% CI {blo:.3f} to {bhi:.3f}; DeYoung et al. 2020).", evidence))
        elif not (np.isfinite(blo) and blo > 0):
            findings.append(Finding(
                "info", f"{m} is not clearly more faithful than random words",
                f"Gain over random {both.mean():.3f}, 95% CI {blo:.3f} to {bhi:.3f} on {len(both)} targets; explain "
                "more sentences (explain_sentences) for a conclusive check.", evidence))
    frame = pd.DataFrame([{"method": m, "k_percent": k, "comprehensiveness": float(c.comprehensiveness[:, j].mean()),
                           "sufficiency": float(c.sufficiency[:, j].mean())}
                          for m, c in curves.items() for j, k in enumerate(fx.K_PERCENTS)])
    table = Table.from_frame("faithfulness", frame, title="Faithfulness by share of words masked (ERASER)")
    figures = []
    for col, label in (("comprehensiveness", "higher is better"), ("sufficiency", "lower is better")):
        series = [(m, list(fx.K_PERCENTS), [float(v) for v in getattr(c, col).mean(axis=0)]) for m, c in curves.items()]
        figures.append(Figure.lines(
            f"faithfulness_{col}", series=series, title=col.capitalize(), xlabel="top words masked (% of the row)",
            ylabel="drop in p(tags)", markers=True,
            caption=f"{col.capitalize()} against the share of words, per method and for random words ({label})."))
    return SectionPart(metrics=metrics, tables=[table], figures=figures, findings=findings)


def token_sanity(ctx: AuditContext, *, rows: Sequence[TokenRow], word_scores: Mapping[str, Sequence[np.ndarray]],
                 attribute: Callable[[Any, Sequence[TokenRow], str], Sequence[np.ndarray]],
                 options: Mapping[str, Any]) -> SectionPart:
    """Rank correlation of |attributions| on the first ``sanity_examples`` rows (of two words or
    more) between the trained model and copies randomised stage by stage from the top
    (``attribute(model, rows, method)`` gives word scores); a final correlation at or above
    ``sanity_threshold`` fails the method."""
    import pandas as pd

    o = options
    idx = [i for i in range(len(rows)) if rows[i].n_words >= 2][: o["sanity_examples"]]
    if not idx:
        return SectionPart()
    sub = [rows[i] for i in idx]
    methods = list(word_scores)
    trained = ctx.target.model  # type: ignore[union-attr]
    records = []
    for s, stage, model in explained_copies(trained, seed=ctx.seed_for("explainability.token_cascade"),
                                            stages=o.get("sanity_stages", 0), progress=ctx.progress):
        for method in methods:
            rand = attribute(model, sub, method)
            orig = [word_scores[method][i] for i in idx]
            rho = [fx.rank_correlation(np.abs(a), np.abs(b)) for a, b in zip(orig, rand, strict=True)]
            records.append({"stage": s + 1, "randomised": stage, "method": method, "spearman_abs": _nanmean(rho)})
    frame = pd.DataFrame(records)
    table = Table.from_frame("sanity", frame, title="Cascading randomisation: rank correlation with the trained "
                                                    "model's attributions (Adebayo et al. 2018)")
    last = frame["stage"].max()
    metrics, findings = [], []
    for method in methods:
        mf = frame[frame["method"] == method]
        final = float(mf.loc[mf["stage"] == last, "spearman_abs"].iloc[0])
        metrics.append(Metric("sanity_rank_correlation", final, higher_is_better=False, slice=method,
                              description="mean Spearman correlation of |attributions| between the trained and "
                                          "the fully randomised tagger (Adebayo et al. 2018)"))
        if not (math.isfinite(final) and final < o["sanity_threshold"]):
            findings.append(Finding(
                "fail", f"{method} fails the sanity check",
                f"After re-initialising the whole tagger its attributions still rank words like the trained one's "
                f"(Spearman {final:.2f} >= {o['sanity_threshold']}): they reflect the input more than what the "
                "model learned (Adebayo et al. 2018).", {"method": method, "spearman_abs": final}))
    return SectionPart(metrics=metrics, tables=[table], figures=[sanity_figure(frame, methods=methods)],
                       findings=findings)
