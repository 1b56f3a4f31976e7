"""Adversarial robustness: TextAttack recipes through the shared target, every success verified,
plus cheap CheckList invariance tests.

* Attacks (Morris et al. 2020, "TextAttack: A Framework for Adversarial Attacks, Data
  Augmentation, and Adversarial Training in NLP"): per recipe, TextAttack's summary numbers on a
  seeded, class-stratified sample of the eval set. Rows the model already gets wrong are
  *skipped* and do not count toward the success rate, as in TextAttack. Every successful
  adversarial text is re-scored by the model alone (no cache, no TextAttack); a success that does
  not change the prediction is a bug and fails the section. Each example is attacked on its own
  seed from a clean scorer cache (:mod:`._attack_chunks`), so the examples can be split into
  chunks over local processes (``attack_workers``) or Ray tasks (``--engine ray``), same results.
* Invariance (Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of NLP Models with
  CheckList"): typos, case, punctuation, whitespace, contractions, person names, numbers and
  emphatic exclamation marks should not change the prediction; the flip rate per perturbation
  with a Wilson interval. With ``invariance_tolerance`` (CheckList's ``Expect.inv(tolerance)``) a
  changed prediction counts only when the original class's probability moved by more than the
  tolerance, so a row the model is undecided on (P near 0.5) tipping over is not a failure.

A token classifier (NER) gets its own section (:mod:`._token_section`): perturbations with span
realignment and a RockNER-style context attack; the ``token_*`` and ``context_attack_*`` options.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.auditors.robustness._attacks import RECIPES  # names only: TextAttack loads in _run
from audit.auditors.robustness._token_perturb import PERTURBATIONS as TOKEN_PERTURBATIONS
from audit.core.options import Option
from audit.core.results import AuditorResult, Finding, Metric, SectionPart, Table
from audit.tasks import SEQUENCE, TOKEN

if TYPE_CHECKING:
    from audit.core.context import AuditContext

ATTACK_METRICS = {
    # name: (higher_is_better, description)
    "original_accuracy": (True, "accuracy on the attacked sample before any attack (TextAttack)"),
    "accuracy_under_attack": (True, "share of the sample still classified correctly after the attack"),
    "attack_success_rate": (False, "successful / (successful + failed): correctly classified rows the attack flipped"),
    "successful_attacks": (False, "attacks that changed the prediction"),
    "failed_attacks": (True, "attacks that found no prediction-changing perturbation within the budget"),
    "skipped_attacks": (None, "rows the model got wrong before the attack (not attacked)"),
    "avg_perturbed_word_pct": (True, "mean % of words changed in successful attacks"),
    "avg_num_queries": (True, "mean model queries per attacked row"),
    "avg_original_words": (None, "mean words per input"),
    "avg_perturbed_words": (None, "mean words per adversarial text (successful attacks)"),
    "verified_successes": (None, "successes whose adversarial text, re-scored by the model alone, changes the "
                                 "prediction"),
}
UNVERIFIED = ("{n} successful {recipe} attack(s) did not change the prediction when re-scored by the model "
              "alone: the attack numbers cannot be trusted")


class RobustnessAuditor(Auditor):
    """TextAttack recipes with verified successes, and CheckList invariance flip rates."""

    name: ClassVar[str] = "robustness"
    cost: ClassVar[float] = 5.0  # quick 26 s on one thread (bench/README.md, fourth round)
    title: ClassVar[str] = "Robustness"
    description: ClassVar[str] = ("Adversarial attacks (TextAttack: DeepWordBug, PWWS, ...) with every success "
                                  "verified, and CheckList invariance tests (typos, case, punctuation, names, numbers, "
                                  "exclamation marks)")
    requires: ClassVar[frozenset[str]] = frozenset({"labels", "model"})
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE, TOKEN})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "accuracy_under_attack", "attack_success_rate", "avg_num_queries", "avg_original_words",
        "avg_perturbed_word_pct", "avg_perturbed_words", "failed_attacks", "invariance_flip_rate",
        "original_accuracy", "skipped_attacks", "successful_attacks", "verified_successes",
        # token classification (NER)
        "context_attack_disagreements", "context_attack_entity_f1", "context_attack_f1_drop",
        "context_attack_pass_rate", "token_clean_entity_f1", "token_entity_f1_drop", "token_invariance_pass_rate",
        "token_perturbed_entity_f1", "token_unrealigned",
    })
    params: ClassVar[dict[str, Option]] = {
        "recipes": Option(kind="str_list", split=True, choices=tuple(RECIPES), default=("deepwordbug", "pwws"),
                          help="TextAttack recipes"),
        "attack_examples": Option(kind="int", min=0, default=100, help="rows attacked per recipe"),
        "query_budget": Option(kind="int", min=1, nullable=True, help="model queries per attacked row"),
        "time_budget_s": Option(kind="float", min=0, min_exclusive=True, nullable=True, default=300.0,
                                help="seconds of attacking per recipe, from its first example, the recipe's "
                                     "build not counted (per chunk of examples on Ray)"),
        "max_attack_success_rate": Option(kind="float", min=0, max=1, default=0.5,
                                          help="attack success rate above this is a finding"),
        "invariance_examples": Option(kind="int", min=0, default=500, help="rows perturbed by invariance tests"),
        "max_invariance_flip_rate": Option(kind="float", min=0, max=1, default=0.05,
                                           help="flip rate above this is a finding"),
        "invariance_tolerance": Option(kind="float", min=0, max=1, default=0.0,
                                       help="a changed prediction counts as a flip only when the original class's "
                                            "probability moved by more than this (CheckList's INV tolerance)"),
        "attack_workers": Option(kind="int", min=0, max=1024, default=0,
                                 help="local processes attacking examples in parallel, each on one torch thread "
                                      "(0: as many as torch's threads; 1: none, here); with --engine ray the "
                                      "cluster's CPUs decide; the results are the same for any number"),
        "examples_shown": Option(kind="int", min=0, default=5, help="adversarial examples shown"),
        "token_sentences": Option(kind="int", min=0, default=200,
                                  help="token classifiers: sentences perturbed (a seeded sample)"),
        "token_perturbations": Option(kind="str_list", split=True, choices=tuple(TOKEN_PERTURBATIONS),
                                      default=tuple(TOKEN_PERTURBATIONS),
                                      help="token classifiers: perturbation families"),
        "max_token_f1_drop": Option(kind="float", min=0, max=1, default=0.1,
                                    help="token classifiers: an entity F1 drop under a perturbation above this is a "
                                         "finding"),
        "context_attack_words": Option(kind="int", min=0, default=2,
                                       help="token classifiers: context words replaced by WordNet synonyms per "
                                            "sentence (0: no context attack)"),
    }

    def _run(self, ctx: AuditContext) -> AuditorResult:
        if ctx.task == TOKEN:
            from audit.auditors.robustness._token_section import token_robustness

            return token_robustness(ctx, self.options, name=self.name)
        start = time.perf_counter()
        parts = [self._invariance(ctx)]
        timings = {"invariance": time.perf_counter() - start}
        status, reason = "ok", ""
        if self.options["attack_examples"] and self.options["recipes"]:
            if ctx.target.multi_label:
                parts.append(SectionPart(findings=[Finding(
                    "info", "Adversarial attacks skipped: TextAttack's classification goal functions do not cover "
                            "multi-label models")]))
            else:
                att = self._attacks(ctx)
                parts.append(att.part)
                timings.update(att.timings)
                if att.unverified:
                    status, reason = "failed", "; ".join(att.unverified)
        return SectionPart.merge(*parts).to_result(auditor=self.name, status=status, reason=reason, timings=timings)

    # -- invariance -----------------------------------------------------------------------
    def _invariance(self, ctx: AuditContext) -> SectionPart:
        """CheckList invariance (Ribeiro et al. 2020): the flip rate per perturbation, with a Wilson
        interval and a finding past ``max_invariance_flip_rate``, and the worst failures."""
        import pandas as pd

        from audit.auditors.robustness._invariance import PERTURBATIONS, apply_all, wilson_interval

        n_rows = len(ctx.data)
        cap = self.options["invariance_examples"]
        rng = ctx.rng("robustness.invariance")
        rows = np.sort(rng.choice(n_rows, size=cap, replace=False)) if cap < n_rows else np.arange(n_rows)
        if len(rows) == 0:
            return SectionPart()
        texts = [ctx.data.texts[i] for i in rows]
        perturbed = apply_all(texts, rng=rng)
        base = ctx.predictions
        pairs = [ctx.data.pairs[rows[i]] for _, i, _ in perturbed] if ctx.data.pairs is not None else None
        new = ctx.predict([t for _, _, t in perturbed], pairs, desc="invariance")
        old_preds = base.preds[rows[[i for _, i, _ in perturbed]]] if perturbed else base.preds[:0]
        changed = np.asarray(new.preds != old_preds)
        top = np.asarray(old_preds if old_preds.ndim == 1 else old_preds.argmax(axis=1))
        old_probs = base.probs[rows[[i for _, i, _ in perturbed]]] if perturbed else base.probs[:0]
        drop = old_probs[np.arange(len(top)), top] - new.probs[np.arange(len(top)), top] if perturbed else np.zeros(0)
        tolerance = self.options["invariance_tolerance"]
        if changed.ndim == 2:  # multi-label: the largest move among the labels that changed
            moved = (np.where(changed, np.abs(np.asarray(new.probs) - old_probs), 0.0).max(axis=1)
                     if perturbed else np.zeros(0))
            changed = changed.any(axis=1)
        else:
            moved = drop
        flipped = changed & (moved > tolerance) if tolerance else changed

        metrics, summary, findings = [], [], []
        kinds = np.array([k for k, _, _ in perturbed])
        threshold = self.options["max_invariance_flip_rate"]
        for kind in PERTURBATIONS:
            mask = kinds == kind
            n, k = int(mask.sum()), int(flipped[mask].sum())
            if n == 0:
                summary.append([kind, 0, 0, None, None, None])
                continue
            lo, hi = wilson_interval(k, n)
            rate = k / n
            metrics.append(Metric("invariance_flip_rate", rate, lo, hi, higher_is_better=False, slice=kind,
                                  description="share of perturbed rows whose prediction changed (CheckList INV)"))
            summary.append([kind, n, k, rate, lo, hi])
            if rate > threshold:
                findings.append(Finding(
                    "warn", f"{kind} perturbations change {rate:.0%} of predictions",
                    detail=(f"{k} of {n} rows changed their predicted label under a {kind.replace('_', ' ')} "
                            f"perturbation that should not matter (threshold {threshold:.0%}; 95% CI {lo:.0%}-{hi:.0%})"
                            + (f"; changes of the original class's probability up to {tolerance:.2f} not counted."
                               if tolerance else ".")),
                    evidence={"perturbation": kind, "flips": k, "rows": n, "flip_rate": rate}))
        inv_table = Table.from_frame("invariance", pd.DataFrame(
            summary, columns=["perturbation", "rows", "flips", "flip_rate", "ci_low", "ci_high"]),
            title="Invariance tests (CheckList): predictions that changed under label-preserving edits")
        label_names = list(ctx.data.label_names)
        worst = [j for j in np.argsort(-drop, kind="stable") if flipped[j]][:10]
        ex_rows = [[perturbed[j][0], texts[perturbed[j][1]], perturbed[j][2], _name(label_names, old_preds[j]),
                    _name(label_names, new.preds[j]), float(drop[j])] for j in worst]
        ex_table = Table.from_frame("invariance_examples", pd.DataFrame(
            ex_rows, columns=["perturbation", "original", "perturbed", "prediction", "after", "prob_drop"]),
            title="Worst invariance failures (largest drop in the original class's probability)")
        return SectionPart(metrics=metrics, tables=[inv_table, ex_table], findings=findings)

    # -- attacks --------------------------------------------------------------------------
    def _attacks(self, ctx: AuditContext) -> _AttackOutcome:
        """Each available recipe on one seeded, class-stratified sample, every success re-scored by
        the model alone; TextAttack's numbers per recipe, the summary and example tables."""
        import pandas as pd

        from audit.auditors.robustness import _attack_chunks as C
        from audit.auditors.robustness import _attacks as A
        from audit.engine.inference import predict_logits

        timings: dict[str, float] = {}
        rates: dict[str, float] = {}
        metrics: list[Metric] = []
        findings: list[Finding] = []
        extra: dict[str, Any] = {}
        unverified: list[str] = []
        available = {name: (ok, why) for name, ok, why in A.recipe_availability()}
        chosen = []
        for name in self.options["recipes"]:
            ok, why = available[name]
            if ok:
                chosen.append(A.RECIPES[name])
            else:
                findings.append(Finding("info", A.RECIPE_UNAVAILABLE.format(name=name, why=why)))
        extra["skipped_recipes"] = {n: available[n][1] for n in self.options["recipes"] if not available[n][0]}
        if not chosen:
            return _AttackOutcome(part=SectionPart(findings=findings, extra=extra), timings=timings)
        need_wordnet = any(n.kind == "wordnet" for r in chosen for n in r.needs)
        start = time.perf_counter()
        ta, resources = A.import_textattack(need_wordnet=need_wordnet)
        timings["import_textattack"] = time.perf_counter() - start
        extra["resources"] = resources.to_dict()
        for sub in resources.substitutions:
            findings.append(Finding("info", "Resource substitution", detail=sub))
        if need_wordnet and not resources.has_wordnet:
            for r in [r for r in chosen if any(n.kind == "wordnet" for n in r.needs)]:
                chosen.remove(r)
                msg = next(p for p in resources.problems if "WordNet" in p)
                findings.append(Finding("info", A.RECIPE_UNAVAILABLE.format(name=r.name, why=msg)))
                extra["skipped_recipes"][r.name] = msg

        target = ctx.target
        rows = stratified_sample(np.asarray(ctx.data.labels), self.options["attack_examples"],
                                 rng=ctx.rng("robustness.attack"))
        examples = [(_example(ctx, i), int(ctx.data.labels[i])) for i in rows]
        row_pairs = [ctx.data.pairs[i] for i in rows] if ctx.data.pairs is not None else None
        runner = C.ChunkRunner(target, workers=self.options["attack_workers"], engine=getattr(target, "engine", None))

        def fresh(inputs: list[Any]) -> np.ndarray:
            texts = [x[0] if isinstance(x, tuple) else x for x in inputs]
            pairs = [x[1] for x in inputs] if inputs and isinstance(inputs[0], tuple) else None
            return predict_logits(target.model, target.tokenizer, texts, pairs, max_length=target.max_length,
                                  max_tokens=target.max_tokens, max_batch=target.max_batch, device=target.device,
                                  dtype=target.dtype)[0]

        summary_rows, shown = [], []
        recipe_runs: list[tuple[Any, Any]] = []
        threshold = self.options["max_attack_success_rate"]
        for recipe in chosen:
            # The originals' logits from the shared pass (cache hits): each example's attack starts from them.
            hits0 = target.cache_hits
            originals = list(target.predict_logits([ctx.data.texts[i] for i in rows], row_pairs))
            original_hits = target.cache_hits - hits0
            base = ctx.seed_for(f"robustness.attack.{recipe.name}")
            seeds = [C.example_seed(base=base, row=int(i)) for i in rows]
            run = runner.run(ta, recipe, examples=examples, seeds=seeds,
                             originals=originals, query_budget=self.options["query_budget"],
                             time_budget_s=self.options["time_budget_s"], progress=ctx.progress)
            run.cache_hits += original_hits
            recipe_runs.append((recipe, run))
        for recipe, run in recipe_runs:
            timings[f"attack_{recipe.name}"] = run.seconds
            stats = A.summarize(run.results)
            checked = A.verify(run, fresh_predict=fresh, maximizes=recipe.maximizes)
            n_verified = sum(e.verified for e in checked)
            stats["verified_successes"] = float(n_verified)
            for key, value in stats.items():
                hib, desc = ATTACK_METRICS[key]
                metrics.append(Metric(key, value, higher_is_better=hib, slice=recipe.name, description=desc))
            if n_verified < len(checked):
                unverified.append(UNVERIFIED.format(n=len(checked) - n_verified, recipe=recipe.name))
                findings.append(Finding("fail", f"{recipe.name}: unverified adversarial successes",
                                        detail=unverified[-1]))
            attacked = int(stats["successful_attacks"] + stats["failed_attacks"])
            rate = stats["attack_success_rate"]
            if not recipe.maximizes and attacked and rate > threshold:
                findings.append(Finding(
                    "warn", f"{recipe.name} flips {rate:.0%} of correctly classified examples",
                    detail=(f"{int(stats['successful_attacks'])} of {attacked} attacked rows changed label "
                            f"({recipe.paper}); accuracy under attack {stats['accuracy_under_attack']:.0%} "
                            f"against {stats['original_accuracy']:.0%} before (threshold {threshold:.0%})."),
                    evidence={"recipe": recipe.name, **{k: stats[k] for k in (
                        "attack_success_rate", "successful_attacks", "failed_attacks")}}))
            elif not recipe.maximizes and not attacked:
                findings.append(Finding("info", f"{recipe.name}: no row was attacked",
                                        detail="the model got every sampled row wrong, or the time budget ran out"))
            if run.not_attacked:
                findings.append(Finding("info", f"{recipe.name}: time budget reached",
                                        detail=f"{run.not_attacked} of {len(examples)} rows were not attacked "
                                               f"within time_budget_s={self.options['time_budget_s']}"))
            # Speed is a timing, not a result: it goes to timings so results.json stays reproducible.
            if run.seconds > 0:
                rates[f"attack_{recipe.name}_examples_per_s"] = len(run.results) / run.seconds
            summary_rows.append([recipe.name, len(run.results), int(stats["successful_attacks"]),
                                 int(stats["failed_attacks"]), int(stats["skipped_attacks"]),
                                 stats["original_accuracy"],
                                 stats["accuracy_under_attack"], stats["attack_success_rate"],
                                 stats["avg_perturbed_word_pct"], stats["avg_num_queries"], n_verified,
                                 run.not_attacked, run.wrapper_rows, run.cache_hits])
            label_names = list(ctx.data.label_names)
            for e in checked[: self.options["examples_shown"]]:
                shown.append({"recipe": e.recipe, "label": _name(label_names, e.label),
                              "before": _name(label_names, e.original_pred),
                              "after": _name(label_names, e.perturbed_pred),
                              "verified": e.verified, "words_changed": e.words_changed,
                              "original": e.original, "perturbed": e.perturbed,
                              "diff": [list(p) for p in A.word_diff(e.original, e.perturbed)]})
        tables = [
            Table.from_frame("attacks", pd.DataFrame(summary_rows, columns=[
                "recipe", "examples", "successful", "failed", "skipped", "original_accuracy", "accuracy_under_attack",
                "attack_success_rate", "avg_perturbed_word_pct", "avg_num_queries", "verified_successes",
                "not_attacked", "model_queries", "cache_hits"]),
                title="Adversarial attacks (TextAttack), one row per recipe",
                # On screen: what a reader weighs; the bookkeeping columns are in the full table.
                shown=("recipe", "examples", "accuracy_under_attack", "attack_success_rate", "avg_num_queries",
                       "successful", "verified_successes")),
            Table.from_frame("adversarial_examples", pd.DataFrame(
                [[s["recipe"], s["original"], s["perturbed"], s["before"], s["after"], s["verified"]] for s in shown],
                columns=["recipe", "original", "adversarial", "prediction", "after", "verified"]),
                title="Adversarial examples"),
        ]
        extra["adversarial_examples"] = shown
        extra["recipes"] = {r.name: r.paper for r in chosen}
        part = SectionPart(metrics=metrics, tables=tables, findings=findings, extra=extra)
        return _AttackOutcome(part=part, unverified=tuple(unverified), timings={**timings, **rates})


@dataclass(frozen=True, kw_only=True)
class _AttackOutcome:
    """The attacks' part of the section, the sentences of successes that did not verify (they
    fail the section), and the attacks' timings (TextAttack's import, each recipe, its speed)."""

    part: SectionPart
    unverified: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)


def stratified_sample(labels: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` row indices drawn without replacement, classes in proportion to their counts
    (largest-remainder rounding), in a seeded random order."""
    total = len(labels)
    if n >= total:
        return rng.permutation(total)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / total
    quota = np.floor(exact).astype(int)
    for j in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[j] += 1
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
              for c, q in zip(classes, quota, strict=True)]
    return rng.permutation(np.concatenate(picked))


def _example(ctx: AuditContext, i: int) -> Any:
    if ctx.data.pairs is None:
        return ctx.data.texts[i]
    return OrderedDict([("text", ctx.data.texts[i]), ("pair", ctx.data.pairs[i])])


def _name(label_names: list[str], value: Any) -> str:
    v = np.asarray(value)
    if v.ndim:  # multi-label indicator row
        return ",".join(label_names[j] for j in np.flatnonzero(v)) or "(none)"
    i = int(v)
    return label_names[i] if 0 <= i < len(label_names) else str(i)

