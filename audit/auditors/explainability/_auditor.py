"""Explainability: token attributions through Captum, then checks on the attributions themselves.

An explanation nobody verified is decoration. This auditor explains a seeded, stratified sample
of predictions (plus the rows earlier auditors marked as interesting) with one or more Captum
methods, merges word pieces back into words, and then tests the explanations:

* completeness of Integrated Gradients (Sundararajan et al. 2017): the attributions must sum to
  f(x) - f(baseline); rows whose convergence delta exceeds ``ig_tolerance`` are recomputed with
  more interpolation steps, and those still over it are reported;
* faithfulness (DeYoung et al. 2020, ERASER): comprehensiveness, sufficiency and their AOPC
  against a random choice of words; a method that does not beat random is not faithful here;
* sanity (Adebayo et al. 2018): cascading randomisation of the model from the top; attributions
  that barely change under it fail.

A global view lists the words with the highest mean share of attribution per predicted class and
the share landing on identity terms (a cross-link to the fairness section).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.auditors.explainability._attribution import METHODS, OUTPUTS  # numpy only: torch and captum load in _run
from audit.core.options import Option
from audit.core.results import AuditorResult, Figure, Finding, Metric, Table
from audit.errors import OPTION_INVALID, AuditInputError

if TYPE_CHECKING:
    from audit.auditors.explainability._attribution import EncodedRow
    from audit.core.context import AuditContext

# Cheap and complementary: path gradients, plain gradients, perturbation. Input x Gradient is
# available but not a default: on the clean demo model it ranks words worse than random.
DEFAULT_METHODS = ("integrated_gradients", "saliency", "occlusion")
# The identity terms whose share of the attribution is reported.
DEFAULT_IDENTITY_TERMS = ("young", "elderly", "teenage", "middle-aged", "old", "man", "woman", "men",
                          "women", "male", "female", "boy", "girl", "he", "she", "black", "white",
                          "asian", "hispanic", "gay", "lesbian", "christian", "muslim", "jewish")
RANDOM = "random"
RANDOM_DRAWS = 3
STEP_GROWTH = 4

TARGET_UNKNOWN = "target_class {value!r} is not a class of the model; classes are {known}"


class ExplainabilityAuditor(Auditor):
    """Captum token attributions, checked for completeness, faithfulness and sanity.

    Options: ``methods`` (any of ``METHODS``); ``explain_examples`` sampled rows plus up to
    ``interesting_examples`` rows that the fairness auditor flagged (its result's
    ``interesting_rows``, when fairness runs in the same audit); ``target_class``
    (index or name; default the predicted class); ``output`` (score explained: log_odds,
    log_prob, prob); ``n_steps`` of Integrated Gradients, raised x4 up to ``ig_max_steps`` for
    rows whose |delta| exceeds ``ig_tolerance`` (in units of ``output``); ``n_samples`` for
    LIME / Kernel SHAP; ``faithfulness`` and ``sanity_check`` switch the checks, the latter on
    the first ``sanity_examples`` rows, failing at a final rank correlation >=
    ``sanity_threshold``; ``top_tokens`` per class; ``batch_rows`` rows per Captum call and
    ``max_tokens`` padded tokens per forward pass.
    """

    name: ClassVar[str] = "explainability"
    title: ClassVar[str] = "Explanations"
    description: ClassVar[str] = ("Token attributions (Integrated Gradients and others) on sampled rows, "
                                  "checked for faithfulness (ERASER) and against cascading randomisation.")
    requires: ClassVar[frozenset[str]] = frozenset({"model"})
    consumes: ClassVar[frozenset[str]] = frozenset({"fairness"})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "aopc_comprehensiveness", "aopc_sufficiency", "comprehensiveness_gain_over_random", "explained_rows",
        "faithfulness_gain_over_random", "identity_attribution_share", "ig_convergence_delta_max",
        "ig_convergence_delta_mean", "ig_rows_over_tolerance", "ig_rows_recomputed", "sanity_rank_correlation",
        "sufficiency_gain_over_random",
    })
    params: ClassVar[dict[str, Option]] = {
        "methods": Option(kind="str_list", split=True, non_empty=True, choices=METHODS, default=DEFAULT_METHODS,
                          help="attribution methods"),
        "explain_examples": Option(kind="int", min=0, default=50, help="sampled rows to explain"),
        "interesting_examples": Option(kind="int", min=0, default=20, help="rows flagged by fairness to explain too"),
        "target_class": Option(kind="label", nullable=True, help="class to explain (default: the predicted one)"),
        "output": Option(kind="str", choices=OUTPUTS, default="log_odds", help="score explained"),
        "n_steps": Option(kind="int", min=1, max=100_000, default=50, help="Integrated Gradients steps"),
        "ig_tolerance": Option(kind="float", min=0, min_exclusive=True, default=0.05,
                               help="|convergence delta| above which IG steps are raised"),
        "ig_max_steps": Option(kind="int", min=1, max=100_000, default=800, help="most IG steps per row"),
        "n_samples": Option(kind="int", min=1, max=100_000, default=200, help="LIME / Kernel SHAP samples"),
        "faithfulness": Option(kind="bool", default=True, help="comprehensiveness and sufficiency checks"),
        "sanity_check": Option(kind="bool", default=True, help="cascading model-randomisation check"),
        "sanity_examples": Option(kind="int", min=0, default=10, help="rows in the sanity check"),
        "sanity_threshold": Option(kind="float", min=0, max=1, default=0.5,
                                   help="final rank correlation at or above which the check fails"),
        "top_tokens": Option(kind="int", min=1, max=10_000, default=10, help="words shown per class"),
        "batch_rows": Option(kind="int", min=1, max=100_000, default=16, help="rows per Captum call"),
        "max_tokens": Option(kind="int", min=1, max=1_000_000_000, default=16384, help="padded tokens per pass"),
    }
    # ------------------------------------------------------------------ run
    def _run(self, ctx: AuditContext) -> AuditorResult:
        from audit.auditors.explainability import _attribution as attr

        o = self.options
        target = ctx.target
        assert target is not None  # guaranteed by requires={"model"}
        label_names = list(target.label_names)
        forced = self._target_class(label_names)
        multi = bool(target.multi_label)

        texts, pairs, labels, preds, sources = self._select_rows(ctx)
        rows = attr.encode_rows(target.tokenizer, texts, pairs, max_length=target.max_length)
        targets = np.full(len(rows), forced, dtype=int) if forced is not None else preds.copy()
        pad_id = _pad_id(target.tokenizer)
        common = {"pad_id": pad_id, "device": target.device, "output": o["output"], "multi_label": multi,
                  "n_samples": o["n_samples"], "max_rows": o["batch_rows"], "max_tokens": o["max_tokens"],
                  "seed": ctx.seed_for("explainability.attribution")}

        word_scores: dict[str, list[np.ndarray]] = {}
        ig_info: dict[str, Any] = {}
        timings: dict[str, float] = {}
        for method in o["methods"]:
            start = time.perf_counter()
            if method == "integrated_gradients":
                tokens, ig_info = self._integrated_gradients(ctx, rows, targets, common)
            else:
                run = attr.attribute(target.model, rows, targets, method=method, n_steps=o["n_steps"],
                                     progress=ctx.progress, **common)
                tokens = run.tokens
            how = "first" if method in attr.WORD_FEATURE_METHODS else "sum"
            word_scores[method] = [attr.merge_words(t, r, how=how) for t, r in zip(tokens, rows, strict=True)]
            timings[f"attribute_{method}"] = time.perf_counter() - start

        metrics: list[Metric] = [Metric("explained_rows", float(len(rows)), description="rows explained")]
        tables: list[Table] = []
        figures: list[Figure] = []
        findings: list[Finding] = []
        extra: dict[str, Any] = {"methods": list(o["methods"]), "output": o["output"], "label_names": label_names}

        if ig_info:
            self._report_ig(ig_info, metrics, findings)
        if o["faithfulness"] and rows:
            start = time.perf_counter()
            self._faithfulness(ctx, rows, targets, word_scores, metrics, tables, figures, findings)
            timings["faithfulness"] = time.perf_counter() - start
        if o["sanity_check"] and rows and o["sanity_examples"] > 0:
            start = time.perf_counter()
            self._sanity(ctx, rows, targets, word_scores, common, metrics, tables, figures, findings)
            timings["sanity"] = time.perf_counter() - start
        primary = "integrated_gradients" if "integrated_gradients" in word_scores else o["methods"][0]
        self._global_view(ctx, rows, targets, word_scores[primary], primary, label_names, metrics, tables, findings)

        row_frame = self._rows_table(rows, labels, preds, targets, sources, word_scores, ig_info, label_names)
        tables.insert(0, Table.from_frame("explained_rows", row_frame, title="Explained rows"))
        extra["explained"] = _heatmap_rows(rows, labels, preds, targets, sources, word_scores, label_names)
        extra["primary_method"] = primary
        return AuditorResult(auditor=self.name, metrics=tuple(metrics), tables=tuple(tables),
                             figures=tuple(figures), findings=tuple(findings), timings=timings, extra=extra)

    # ------------------------------------------------------------------ rows
    def _target_class(self, label_names: list[str]) -> int | None:
        value = self.options["target_class"]
        if value is None:
            return None
        if _is_int(value) and 0 <= value < len(label_names):
            return int(value)
        if isinstance(value, str) and value in label_names:
            return label_names.index(value)
        raise AuditInputError(OPTION_INVALID.format(
            option="target_class", problem=TARGET_UNKNOWN.format(value=value, known=", ".join(label_names))))

    def _select_rows(self, ctx: AuditContext) -> tuple[list[str], list[str | None] | None, list[int | None],
                                                       np.ndarray, list[str]]:
        """A seeded sample stratified over predicted class x correct/wrong (round-robin across
        strata, so rare strata such as wrong predictions are represented), then the rows that
        the fairness auditor flagged (declared: ``consumes = {"fairness"}``)."""
        o = self.options
        data = ctx.data
        n = len(data)
        preds_all = ctx.predictions.preds if n else np.zeros(0, dtype=int)
        if preds_all.ndim > 1:  # multi-label: stratify on the highest-scoring class
            preds_all = ctx.predictions.probs.argmax(axis=1)
        labels_all = data.labels if data.labels is not None and np.ndim(data.labels) == 1 else None
        correct = (preds_all == labels_all) if labels_all is not None else np.ones(n, dtype=bool)
        strata: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for i in range(n):
            strata[(int(preds_all[i]), bool(correct[i]))].append(i)
        rng = ctx.rng("explainability.sample")
        queues = [list(rng.permutation(strata[key])) for key in sorted(strata)]
        chosen: list[int] = []
        want = min(o["explain_examples"], n)
        while len(chosen) < want:
            for q in queues:
                if q and len(chosen) < want:
                    chosen.append(int(q.pop(0)))
        chosen.sort()
        texts = [data.texts[i] for i in chosen]
        pairs: list[str | None] | None = [data.pairs[i] for i in chosen] if data.pairs is not None else None
        labels: list[int | None] = ([int(labels_all[i]) for i in chosen] if labels_all is not None
                                    else [None] * len(chosen))
        preds = [int(preds_all[i]) for i in chosen]
        sources = ["sample"] * len(chosen)

        seen = set(texts)
        extra = []
        fairness = ctx.upstream.get("fairness")
        flagged = (fairness.extra.get("interesting_rows") if fairness is not None else None) or []
        for item in flagged:
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str) or not text or text in seen:
                continue
            seen.add(text)
            extra.append(item)
            if len(extra) >= o["interesting_examples"]:
                break
        if extra:
            e_texts = [item["text"] for item in extra]
            e_pairs = [item.get("pair") for item in extra]
            use_pairs = pairs is not None or any(p is not None for p in e_pairs)
            probs = ctx.predict(e_texts, [p or "" for p in e_pairs] if use_pairs else None,
                                desc="predict interesting rows").probs
            texts += e_texts
            if use_pairs:
                pairs = (pairs or [None] * len(chosen)) + e_pairs
            labels += [item.get("label") if _is_int(item.get("label")) else None for item in extra]
            preds += [int(p) for p in probs.argmax(axis=1)]
            sources += [str(item.get("source") or item.get("reason") or "interesting") for item in extra]
        return texts, pairs, labels, np.asarray(preds, dtype=int), sources

    # ------------------------------------------------------------------ integrated gradients
    def _integrated_gradients(self, ctx: AuditContext, rows: Sequence[EncodedRow], targets: np.ndarray,
                              common: dict[str, Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """IG for every row; rows whose |delta| exceeds the tolerance are recomputed with
        ``STEP_GROWTH`` times more steps until they pass or ``ig_max_steps`` is reached."""
        from audit.auditors.explainability import _attribution as attr

        o = self.options
        model = ctx.target.model  # type: ignore[union-attr]
        run = attr.attribute(model, rows, targets, method="integrated_gradients", n_steps=o["n_steps"],
                             progress=ctx.progress, **common)
        tokens = list(run.tokens)
        deltas = np.abs(np.asarray(run.deltas, dtype=float))
        first_deltas = deltas.copy()
        steps = np.full(len(rows), o["n_steps"], dtype=int)
        n_steps = o["n_steps"]
        while True:
            todo = [i for i in range(len(rows)) if deltas[i] > o["ig_tolerance"]]
            if not todo or n_steps >= o["ig_max_steps"]:
                break
            n_steps = min(n_steps * STEP_GROWTH, o["ig_max_steps"])
            again = attr.attribute(model, [rows[i] for i in todo], targets[todo], method="integrated_gradients",
                                   n_steps=n_steps, progress=ctx.progress, **common)
            for j, i in enumerate(todo):
                tokens[i] = again.tokens[j]
                deltas[i] = abs(float(again.deltas[j]))  # type: ignore[index]
                steps[i] = n_steps
        return tokens, {"deltas": deltas, "first_deltas": first_deltas, "steps": steps}

    def _report_ig(self, info: dict[str, Any], metrics: list[Metric], findings: list[Finding]) -> None:
        o = self.options
        deltas = info["deltas"]
        over = int((deltas > o["ig_tolerance"]).sum())
        recomputed = int((info["steps"] > o["n_steps"]).sum())
        desc = "|sum of IG attributions - (f(x) - f(baseline))| (Sundararajan et al. 2017, completeness)"
        metrics += [
            Metric("ig_convergence_delta_mean", float(deltas.mean()) if deltas.size else None,
                   higher_is_better=False, description=desc),
            Metric("ig_convergence_delta_max", float(deltas.max()) if deltas.size else None,
                   higher_is_better=False, description=desc),
            Metric("ig_rows_recomputed", float(recomputed), higher_is_better=False,
                   description=f"rows whose delta exceeded {o['ig_tolerance']} at n_steps={o['n_steps']}"),
            Metric("ig_rows_over_tolerance", float(over), higher_is_better=False,
                   description=f"rows still over the tolerance at {o['ig_max_steps']} steps"),
        ]
        if over:
            findings.append(Finding(
                "warn", f"Integrated Gradients did not converge on {over} of {len(deltas)} rows",
                f"The attributions of these rows do not sum to f(x) - f(baseline) within {o['ig_tolerance']} even at "
                f"{o['ig_max_steps']} steps; read their explanations with care.",
                {"rows_over_tolerance": over, "max_delta": float(deltas.max())}))

    # ------------------------------------------------------------------ faithfulness
    def _faithfulness(self, ctx: AuditContext, rows: Sequence[EncodedRow], targets: np.ndarray,
                      word_scores: dict[str, list[np.ndarray]], metrics: list[Metric], tables: list[Table],
                      figures: list[Figure], findings: list[Finding]) -> None:
        import pandas as pd

        from audit.auditors.explainability import _faithfulness as fx
        from audit.core.stats import bootstrap_ci

        def predict_probs(texts: list[str], pairs: list[str] | None) -> np.ndarray:
            return ctx.predict(texts, pairs, desc="faithfulness").probs

        has_pairs = any(r.pair is not None for r in rows)
        full = predict_probs([r.text for r in rows], [r.pair or "" for r in rows] if has_pairs else None)
        full_probs = full[np.arange(len(rows)), targets]
        curves = {m: fx.erasure_curves(rows, [fx.order_by_attribution(s) for s in scores], targets, full_probs,
                                       predict_probs)
                  for m, scores in word_scores.items()}
        rng = ctx.rng("explainability.random_words")
        curves[RANDOM] = fx.mean_curves([fx.erasure_curves(rows, fx.random_orders(rows, rng), targets, full_probs,
                                                           predict_probs) for _ in range(RANDOM_DRAWS)])
        seed = ctx.seed_for("explainability.aopc")  # one set of resamples for every method: paired intervals
        comp_desc = "ERASER comprehensiveness AOPC (DeYoung et al. 2020): p(y|x) - p(y|x without top words)"
        suff_desc = "ERASER sufficiency AOPC (DeYoung et al. 2020): p(y|x) - p(y|top words only)"
        rand = curves[RANDOM]
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
        tables.append(Table.from_frame("faithfulness", frame, title="Faithfulness by share of words removed (ERASER)"))
        ks = list(fx.K_PERCENTS)
        for col, label in (("comprehensiveness", "higher is better"), ("sufficiency", "lower is better")):
            series = [(m, ks, [float(v) for v in getattr(c, col).mean(axis=0)]) for m, c in curves.items()]
            figures.append(Figure.lines(
                f"faithfulness_{col}", series=series, title=col.capitalize(), xlabel="top words (% of the row)",
                ylabel="drop in p(target)", markers=True,
                caption=f"{col.capitalize()} against the share of words, per method and for random words ({label})."))

    # ------------------------------------------------------------------ sanity
    def _sanity(self, ctx: AuditContext, rows: Sequence[EncodedRow], targets: np.ndarray,
                word_scores: dict[str, list[np.ndarray]], common: dict[str, Any], metrics: list[Metric],
                tables: list[Table], figures: list[Figure], findings: list[Finding]) -> None:
        import pandas as pd

        from audit.auditors.explainability import _attribution as attr
        from audit.auditors.explainability import _faithfulness as fx

        o = self.options
        idx = [i for i in range(len(rows)) if rows[i].n_words >= 2][: o["sanity_examples"]]
        if not idx:
            return
        sub = [rows[i] for i in idx]
        sub_targets = targets[idx]
        records = []
        trained = ctx.target.model  # type: ignore[union-attr]
        cascade = ctx.progress(fx.randomised_copies(trained, seed=ctx.seed_for("explainability.cascade")),
                               total=len(fx.cascade_stages(trained)), desc="sanity: cascading randomisation")
        for s, (stage, model) in enumerate(cascade):
            for method in o["methods"]:
                steps = o["n_steps"]
                run = attr.attribute(model, sub, sub_targets, method=method, n_steps=steps, **common)
                how = "first" if method in attr.WORD_FEATURE_METHODS else "sum"
                rand = [attr.merge_words(t, r, how=how) for t, r in zip(run.tokens, sub, strict=True)]
                orig = [word_scores[method][i] for i in idx]
                rho_abs = [fx.rank_correlation(np.abs(a), np.abs(b)) for a, b in zip(orig, rand, strict=True)]
                rho = [fx.rank_correlation(a, b) for a, b in zip(orig, rand, strict=True)]
                records.append({"stage": s + 1, "randomised": stage, "method": method,
                                "spearman_abs": _nanmean(rho_abs), "spearman_signed": _nanmean(rho)})
        frame = pd.DataFrame(records)
        tables.append(Table.from_frame("sanity", frame, title="Cascading randomisation: rank correlation with the "
                                                              "trained model's attributions (Adebayo et al. 2018)"))
        last = frame["stage"].max()
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
        stage_names = list(dict.fromkeys(frame["randomised"]))
        series = [(m, list(range(1, len(stage_names) + 1)),
                   [float(v) for v in frame.loc[frame["method"] == m, "spearman_abs"]]) for m in o["methods"]]
        figures.append(Figure.lines(
            "sanity", series=series, title="Cascading randomisation", xlabel="stages randomised (top first)",
            ylabel="Spearman |attr| vs trained", markers=True, ylim=(-0.2, 1.05),
            caption="Stages: " + ", ".join(f"{i + 1} = {n}" for i, n in enumerate(stage_names))
                    + ". A faithful method falls toward 0."))

    # ------------------------------------------------------------------ global view
    def _global_view(self, ctx: AuditContext, rows: Sequence[EncodedRow], targets: np.ndarray,
                     scores: list[np.ndarray], method: str, label_names: list[str], metrics: list[Metric],
                     tables: list[Table], findings: list[Finding]) -> None:
        import pandas as pd

        o = self.options
        per_class: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        shares: list[np.ndarray] = []
        for row, s, t in zip(rows, scores, targets, strict=True):
            total = float(np.abs(s).sum())
            share = np.abs(s) / total if total > 0 else np.zeros_like(s)
            shares.append(share)
            for w, v in zip(row.words, share, strict=True):
                if re.search(r"\w", w):
                    per_class[int(t)][w.lower()].append(float(v))
        records = []
        for c in sorted(per_class):
            stats = [(w, float(np.mean(v)), len(v)) for w, v in per_class[c].items()]
            frequent = [x for x in stats if x[2] >= 2] or stats
            frequent.sort(key=lambda x: (-x[1], x[0]))
            for rank, (w, mean, count) in enumerate(frequent[: o["top_tokens"]], start=1):
                records.append({"class": label_names[c], "rank": rank, "word": w, "mean_share": mean, "rows": count})
        frame = pd.DataFrame(records, columns=["class", "rank", "word", "mean_share", "rows"])
        tables.append(Table.from_frame("top_tokens", frame, title=f"Words with the highest mean share of |attribution| "
                                                                  f"per predicted class ({method})"))
        if len(frame):
            tops = "; ".join(f"{c}: " + ", ".join(frame.loc[frame["class"] == c, "word"].head(3))
                             for c in dict.fromkeys(frame["class"]))
            findings.append(Finding("info", "Most attributed words per predicted class",
                                    f"{method}, mean share of |attribution| in the rows where the word occurs: {tops}.",
                                    {"method": method}))

        terms = list(dict.fromkeys(t.lower() for t in DEFAULT_IDENTITY_TERMS))
        term_share: dict[str, list[float]] = defaultdict(list)
        row_share = np.zeros(len(rows))
        for i, (row, share) in enumerate(zip(rows, shares, strict=True)):
            hit = np.zeros(row.n_words, dtype=bool)
            for term in terms:
                pos = _find_term(row.words, term)
                if pos:
                    term_share[term].append(float(share[pos].sum()))
                    hit[pos] = True
            row_share[i] = float(share[hit].sum())
        overall = float(row_share.mean()) if len(rows) else None
        metrics.append(Metric("identity_attribution_share", overall, higher_is_better=False, slice=method,
                              description="mean share of |attribution| per row on identity terms"))
        id_records = [{"term": t, "rows": len(v), "mean_share": float(np.mean(v))}
                      for t, v in sorted(term_share.items(), key=lambda kv: -float(np.mean(kv[1])))]
        tables.append(Table.from_frame("identity_terms",
                                       pd.DataFrame(id_records, columns=["term", "rows", "mean_share"]),
                                       title="Share of |attribution| on identity terms (see the fairness section)"))
        if id_records:
            top = id_records[0]
            findings.append(Finding(
                "info", f"{overall:.0%} of the attribution lands on identity terms",
                f"Largest: {top['term']!r} with a mean share of {top['mean_share']:.0%} in the {top['rows']} rows that "
                "mention it. Compare with the fairness section.",
                {"identity_attribution_share": overall, "terms": id_records[:5]}))

    # ------------------------------------------------------------------ tables
    def _rows_table(self, rows: Sequence[EncodedRow], labels: list[int | None], preds: np.ndarray, targets: np.ndarray,
                    sources: list[str], word_scores: dict[str, list[np.ndarray]], ig_info: dict[str, Any],
                    label_names: list[str]) -> Any:
        import pandas as pd

        records = []
        for i, row in enumerate(rows):
            rec: dict[str, Any] = {"text": row.text,
                                   "label": label_names[labels[i]] if labels[i] is not None else "",
                                   "prediction": label_names[int(preds[i])], "target": label_names[int(targets[i])],
                                   "source": sources[i]}
            for m, scores in word_scores.items():
                rec[f"top word ({m})"] = row.words[int(np.argmax(scores[i]))] if row.n_words else ""
            if ig_info:
                rec["ig_delta"] = float(ig_info["deltas"][i])
                rec["ig_steps"] = int(ig_info["steps"][i])
            records.append(rec)
        return pd.DataFrame(records)


# ---------------------------------------------------------------------- helpers
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")


def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


def _find_term(words: Sequence[str], term: str) -> list[int]:
    """Indices of the words making up every occurrence of ``term`` (multi-word and hyphenated
    terms match their word parts in sequence; punctuation between them is skipped)."""
    parts = re.findall(r"\w+", term.lower())
    if not parts:
        return []
    alnum = [(i, w.lower()) for i, w in enumerate(words) if re.search(r"\w", w)]
    found: list[int] = []
    for s in range(len(alnum) - len(parts) + 1):
        if all(alnum[s + j][1] == parts[j] for j in range(len(parts))):
            found += [alnum[s + j][0] for j in range(len(parts))]
    return found


def _heatmap_rows(rows: Sequence[EncodedRow], labels: list[int | None], preds: np.ndarray, targets: np.ndarray,
                  sources: list[str], word_scores: dict[str, list[np.ndarray]], label_names: list[str]
                  ) -> list[dict[str, Any]]:
    """Each explained row with every method's per-word scores; the report colours the words
    (audit.report.heat), so results.json holds the scores and no CSS."""
    out = []
    for i, row in enumerate(rows):
        methods = []
        for m, scores in word_scores.items():
            methods.append({"method": m, "words": [{"word": w, "score": float(v)}
                                                   for w, v in zip(row.words, scores[i], strict=True)]})
        out.append({"text": row.text, "label": label_names[labels[i]] if labels[i] is not None else None,
                    "prediction": label_names[int(preds[i])], "target": label_names[int(targets[i])],
                    "source": sources[i], "methods": methods})
    return out
