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

A token classifier (NER) is explained one predicted entity or tag at a time, with words masked
instead of deleted (:mod:`._token_section`).

This module selects the rows and computes the attributions; the checks (:mod:`._checks`) and the
global view (:mod:`._global_view`) each return a :class:`~audit.core.results.SectionPart`, merged
in :meth:`ExplainabilityAuditor._run`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.auditors.explainability._attribution import METHODS, OUTPUTS  # numpy only: torch and captum load in _run
from audit.auditors.explainability._checks import (
    SANITY_STEPS,
    faithfulness,
    faithfulness_curves,
    random_word_rngs,
    sanity,
    sanity_rows,
)
from audit.auditors.explainability._curation import (
    SHOWN_ROWS,
    annotate,
    identity_shares,
    row_reasons,
)
from audit.auditors.explainability._global_view import DEFAULT_MIN_WORD_ROWS, global_view
from audit.auditors.explainability._rows import Explained, Picked, flagged_rows, is_int, sampled_rows
from audit.core.options import Option
from audit.core.results import AuditorResult, Finding, Metric, SectionPart, Table
from audit.errors import OPTION_INVALID, AuditInputError
from audit.tasks import SEQUENCE, TOKEN

if TYPE_CHECKING:
    from audit.auditors.explainability._attribution import EncodedRow
    from audit.core.context import AuditContext

# Cheap and complementary: path gradients, plain gradients, perturbation. Input x Gradient is
# available but not a default: on the clean demo model it ranks words worse than random.
DEFAULT_METHODS = ("integrated_gradients", "saliency", "occlusion")
# Integrated Gradients steps are multiplied by this for rows over the tolerance, until they pass
# or reach ig_max_steps: few rounds, each on the rows still over it.
STEP_GROWTH = 4

TARGET_UNKNOWN = "target_class {value!r} is not a class of the model; classes are {known}"


class ExplainabilityAuditor(Auditor):
    """Captum token attributions, checked for completeness, faithfulness and sanity.

    Options: ``methods`` (any of ``METHODS``); ``explain_examples`` sampled rows plus up to
    ``interesting_examples`` rows that the fairness auditor flagged (its result's
    ``interesting_rows``, when fairness runs in the same audit) or a robustness attack flipped
    (its ``adversarial_examples``, taken in turn with fairness's); ``target_class``
    (index or name; default the predicted class); ``output`` (score explained: log_odds,
    log_prob, prob); ``n_steps`` of Integrated Gradients, raised x4 up to ``ig_max_steps`` for
    rows whose |delta| exceeds ``ig_tolerance`` (in units of ``output``); ``n_samples`` for
    LIME / Kernel SHAP; ``faithfulness`` and ``sanity_check`` switch the checks, the latter on
    the first ``sanity_examples`` rows, failing at a final rank correlation >=
    ``sanity_threshold``; ``top_tokens`` per class, among the words seen in at least
    ``min_word_rows`` explained rows of the class (the same minimum applies to identity terms:
    a mean share over one or two rows is an anecdote, not a pattern); ``batch_rows`` rows per Captum call and
    ``max_tokens`` padded tokens per forward pass.

    On a token classifier, ``explain_sentences`` sentences (seeded, half with an error when
    there are enough) have their predicted entities and wrong words explained by
    ``integrated_gradients`` and ``occlusion`` (:mod:`._token_section`).
    """

    name: ClassVar[str] = "explainability"
    cost: ClassVar[float] = 4.0  # quick 20 s on one thread (bench/README.md, fourth round)
    title: ClassVar[str] = "Explanations"
    description: ClassVar[str] = ("Token attributions (Integrated Gradients and others) on sampled rows, "
                                  "checked for faithfulness (ERASER) and against cascading randomisation.")
    requires: ClassVar[frozenset[str]] = frozenset({"model"})
    consumes: ClassVar[frozenset[str]] = frozenset({"fairness", "robustness"})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "aopc_comprehensiveness", "aopc_sufficiency", "comprehensiveness_gain_over_random", "explained_rows",
        "faithfulness_gain_over_random", "identity_attribution_share", "ig_convergence_delta_max",
        "ig_convergence_delta_mean", "ig_rows_over_tolerance", "ig_rows_recomputed", "sanity_rank_correlation",
        "sufficiency_gain_over_random",
        # token classification (NER)
        "unexplained_targets", "context_word_share_max",
    })
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE, TOKEN})
    params: ClassVar[dict[str, Option]] = {
        "methods": Option(kind="str_list", split=True, non_empty=True, choices=METHODS, default=DEFAULT_METHODS,
                          help="attribution methods"),
        "explain_examples": Option(kind="int", min=0, default=50, help="sampled rows to explain"),
        "explain_sentences": Option(kind="int", min=0, default=24,
                                    help="token models: sentences whose predicted entities and errors are explained"),
        "interesting_examples": Option(kind="int", min=0, default=20,
                                       help="rows flagged by fairness or flipped by an attack to explain too"),
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
        "sanity_steps": Option(kind="int", min=0, max=100_000, default=SANITY_STEPS,
                               help="IG steps on the sanity check's randomised copies (0: n_steps)"),
        "sanity_stages": Option(kind="int", min=0, max=10_000, default=0,
                                help="cascade stages explained, evenly spaced, the last always (0: every stage)"),
        "sanity_threshold": Option(kind="float", min=0, max=1, default=0.5,
                                   help="final rank correlation at or above which the check fails"),
        "top_tokens": Option(kind="int", min=1, max=10_000, default=10, help="words shown per class"),
        "min_word_rows": Option(kind="int", min=1, max=1_000_000, default=DEFAULT_MIN_WORD_ROWS,
                                help="explained rows a word or identity term needs to be ranked in the global view"),
        "batch_rows": Option(kind="int", min=1, max=100_000, default=16, help="rows per Captum call"),
        # 8192, the engine's budget: IG on MiniLM/SST-2 ran 15-20% faster than at 16384 (bench/README.md).
        "max_tokens": Option(kind="int", min=1, max=1_000_000_000, default=8192, help="padded tokens per pass"),
    }
    # ------------------------------------------------------------------ run
    def _run(self, ctx: AuditContext) -> AuditorResult:
        o = self.options
        if ctx.task == TOKEN:
            from audit.auditors.explainability._token_section import token_section

            return token_section(ctx, o, name=self.name, ig_part=self._ig_part, step_growth=STEP_GROWTH)
        target = ctx.target
        assert target is not None  # guaranteed by requires={"model"}
        label_names = list(target.label_names)
        forced = self._target_class(label_names)
        multi = bool(target.multi_label)

        common = {"pad_id": _pad_id(target.tokenizer), "device": target.device, "output": o["output"],
                  "multi_label": multi, "n_samples": o["n_samples"], "max_rows": o["batch_rows"],
                  "max_tokens": o["max_tokens"], "seed": ctx.seed_for("explainability.attribution")}
        timings: dict[str, float] = {}
        rngs = random_word_rngs(ctx)

        # The sampled rows first, then (reading ctx.upstream only now) the rows fairness flagged and
        # the attacks flipped: run side by side, this auditor explains its sample while the
        # auditors it consumes still run (audit.core.side_by_side). Every per-row result is the
        # same as if all rows were explained at once (the random words' generators advance row by row).
        sampled = sampled_rows(ctx, examples=o["explain_examples"])
        first = self._explain(ctx, sampled, forced=forced, common=common, rngs=rngs)
        n_sanity = o["sanity_examples"] if o["sanity_check"] else 0
        sanity_part = None
        if n_sanity > 0 and len(sanity_rows(first.rows, examples=n_sanity)) == n_sanity:  # all among the sample
            sanity_part, timings["sanity"] = self._sanity(ctx, first, common=common)
        flagged = flagged_rows(ctx, seen=set(sampled.texts), examples=o["interesting_examples"])
        both = first.then(self._explain(ctx, flagged, forced=forced, common=common, rngs=rngs))
        timings.update(both.timings)
        rows, targets, word_scores, ig_info = both.rows, both.targets, both.word_scores, both.ig_info
        labels, preds, sources, confidences = both.picked.labels, both.picked.preds, both.picked.sources, \
            both.picked.confidences
        if n_sanity > 0 and sanity_part is None and rows:
            sanity_part, timings["sanity"] = self._sanity(ctx, both, common=common)

        head = SectionPart(metrics=[Metric("explained_rows", float(len(rows)), description="rows explained")])
        parts = [self._ig_part(ig_info)] if ig_info else []
        if o["faithfulness"] and rows:
            start = time.perf_counter()
            parts.append(faithfulness(ctx, rows=rows, targets=targets, word_scores=word_scores, curves=both.curves))
            timings["faithfulness"] = timings.get("faithfulness", 0.0) + time.perf_counter() - start
        if sanity_part is not None:
            parts.append(sanity_part)
        primary = "integrated_gradients" if "integrated_gradients" in word_scores else o["methods"][0]
        parts.append(global_view(rows=rows, targets=targets, scores=word_scores[primary], method=primary,
                                 label_names=label_names, top_tokens=o["top_tokens"],
                                 min_rows=o["min_word_rows"]))

        # Why each row is here (fairness's flag, or what its label, confidence and identity-term
        # attribution say) and the handful the report shows first: no row or metric changes.
        reasons = row_reasons(sources=sources, labels=labels, preds=preds, confidences=confidences,
                              id_shares=identity_shares(rows, word_scores[primary]))
        heat = _heatmap_rows(rows, labels, preds, targets, sources, word_scores, label_names)
        curated = annotate(heat, reasons, shown=SHOWN_ROWS)
        row_frame = self._rows_table(rows, labels, preds, targets, sources, word_scores, ig_info, label_names)
        row_frame["reason"] = [r[0] for r in reasons]
        explained = SectionPart(tables=[Table.from_frame("explained_rows", row_frame, title="Explained rows")], extra={
            "methods": list(o["methods"]), "output": o["output"], "label_names": label_names,
            "explained": heat, "curated_rows": curated, "primary_method": primary})
        # The explained rows come first in the section: the rows, then what the checks found on them.
        return SectionPart.merge(head, explained, *parts).to_result(auditor=self.name, timings=timings)

    # ------------------------------------------------------------------ rows
    def _target_class(self, label_names: list[str]) -> int | None:
        value = self.options["target_class"]
        if value is None:
            return None
        if is_int(value) and 0 <= value < len(label_names):
            return int(value)
        if isinstance(value, str) and value in label_names:
            return label_names.index(value)
        raise AuditInputError(OPTION_INVALID.format(
            option="target_class", problem=TARGET_UNKNOWN.format(value=value, known=", ".join(label_names))))

    # ------------------------------------------------------------------ attributions
    def _explain(self, ctx: AuditContext, picked: Picked, *, forced: int | None, common: dict[str, Any],
                 rngs: Sequence[Any]) -> Explained:
        """Every method's attributions of ``picked`` rows (IG raised until it converges) and their
        faithfulness curves (random words from ``rngs``, which advance)."""
        from audit.auditors.explainability import _attribution as attr

        o = self.options
        target = ctx.target
        assert target is not None
        rows = (attr.encode_rows(target.tokenizer, picked.texts, picked.pairs, max_length=target.max_length)
                if picked.texts else [])
        preds = np.asarray(picked.preds, dtype=int)
        targets = np.full(len(rows), forced, dtype=int) if forced is not None else preds.copy()
        word_scores: dict[str, list[np.ndarray]] = {}
        ig_info: dict[str, Any] = {}
        timings: dict[str, float] = {}
        for method in o["methods"]:
            start = time.perf_counter()
            if not rows:
                tokens: list[Any] = []
                if method == "integrated_gradients":
                    ig_info = {k: np.zeros(0, dtype=float if k != "steps" else int)
                               for k in ("deltas", "first_deltas", "steps")}
            elif method == "integrated_gradients":
                tokens, ig_info = self._integrated_gradients(ctx, rows, targets, common)
            else:
                tokens = attr.attribute(target.model, rows, targets, method=method, n_steps=o["n_steps"],
                                        progress=ctx.progress, **common).tokens
            how = "first" if method in attr.WORD_FEATURE_METHODS else "sum"
            word_scores[method] = [attr.merge_words(t, r, how=how) for t, r in zip(tokens, rows, strict=True)]
            timings[f"attribute_{method}"] = time.perf_counter() - start
        curves = None
        if o["faithfulness"] and rows:
            start = time.perf_counter()
            curves = faithfulness_curves(ctx, rows=rows, targets=targets, word_scores=word_scores, rngs=rngs)
            timings["faithfulness"] = time.perf_counter() - start
        return Explained(picked=picked, rows=list(rows), targets=targets, word_scores=word_scores, ig_info=ig_info,
                         curves=curves, timings=timings)

    def _sanity(self, ctx: AuditContext, done: Explained, *, common: dict[str, Any]) -> tuple[SectionPart, float]:
        """The sanity check on ``done``'s rows, and the seconds it took."""
        start = time.perf_counter()
        part = sanity(ctx, rows=done.rows, targets=done.targets, word_scores=done.word_scores, common=common,
                      options=self.options)
        return part, time.perf_counter() - start

    # ------------------------------------------------------------------ integrated gradients
    def _integrated_gradients(self, ctx: AuditContext, rows: Sequence[EncodedRow], targets: np.ndarray,
                              common: dict[str, Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """IG for every row; rows whose |delta| exceeds the tolerance are recomputed with
        ``STEP_GROWTH`` times more steps until they pass or ``ig_max_steps`` is reached."""
        from audit.auditors.explainability import _attribution as attr

        o = self.options
        model = ctx.target.model  # type: ignore[union-attr]

        def run(idx: list[int], n_steps: int) -> tuple[list[np.ndarray], Any]:
            out = attr.attribute(model, [rows[i] for i in idx], targets[idx], method="integrated_gradients",
                                 n_steps=n_steps, progress=ctx.progress, **common)
            return out.tokens, out.deltas

        return attr.until_converged(run, len(rows), n_steps=o["n_steps"], tolerance=o["ig_tolerance"],
                                    max_steps=o["ig_max_steps"], growth=STEP_GROWTH)

    def _ig_part(self, info: dict[str, Any]) -> SectionPart:
        """Completeness of Integrated Gradients (Sundararajan et al. 2017): the convergence deltas
        after the recomputation, and a finding when rows stay over the tolerance."""
        o = self.options
        deltas = info["deltas"]
        over = int((deltas > o["ig_tolerance"]).sum())
        recomputed = int((info["steps"] > o["n_steps"]).sum())
        desc = "|sum of IG attributions - (f(x) - f(baseline))| (Sundararajan et al. 2017, completeness)"
        metrics = [
            Metric("ig_convergence_delta_mean", float(deltas.mean()) if deltas.size else None,
                   higher_is_better=False, description=desc),
            Metric("ig_convergence_delta_max", float(deltas.max()) if deltas.size else None,
                   higher_is_better=False, description=desc),
            Metric("ig_rows_recomputed", float(recomputed), higher_is_better=False,
                   description=f"rows whose delta exceeded {o['ig_tolerance']} at n_steps={o['n_steps']}"),
            Metric("ig_rows_over_tolerance", float(over), higher_is_better=False,
                   description=f"rows still over the tolerance at {o['ig_max_steps']} steps"),
        ]
        findings = []
        if over:
            findings.append(Finding(
                "warn", f"Integrated Gradients did not converge on {over} of {len(deltas)} rows",
                f"The attributions of these rows do not sum to f(x) - f(baseline) within {o['ig_tolerance']} even at "
                f"{o['ig_max_steps']} steps; read their explanations with care.",
                {"rows_over_tolerance": over, "max_delta": float(deltas.max())}))
        return SectionPart(metrics=metrics, findings=findings)

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
def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0


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
