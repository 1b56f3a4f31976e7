"""Fairness auditor: group metrics with confidence intervals, identity-term bias AUCs and
counterfactual token swaps, plus advisory post-processing evidence.

This module holds the options and the order of the section; each part is a module that returns
a :class:`~audit.core.results.SectionPart` from the same read-only inputs
(:class:`~audit.auditors.fairness._inputs.FairnessInputs`), and the parts are merged here:

* :mod:`._groups`: group fairness over the sensitive columns (each alone and, with several,
  intersected), or over identity-term groups when no column is given: per-group rates
  (fairlearn's ``MetricFrame``), demographic parity (Calders & Verwer 2010; the four-fifths
  rule), equalized odds and equal opportunity (Hardt et al. 2016), and each group against the
  rest through AIF360 (disparate impact, statistical parity, average odds, Theil and generalized
  entropy indices, Speicher et al. 2018). Seeded bootstrap intervals are stratified by group; a
  group below ``min_group_size`` is listed as too small to judge and left out of the headline.
* :mod:`._bias_auc`: bias AUCs per identity subgroup (Borkan et al. 2019) and the Jigsaw final
  score.
* :mod:`._counterfactual`: counterfactual token fairness (Garg et al. 2019), each identity term
  swapped for the other terms of its category and re-scored through the shared target.
* :mod:`._mitigation`: fairlearn's ``ThresholdOptimizer`` (Hardt et al. 2016) fitted on a seeded
  half and scored on the other; advisory only.

A token classifier (NER) gets its own parts instead (:mod:`._token`): name-swap recognition by
group, entity-switched F1 by origin, and entity metrics by sensitive column.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.auditors.fairness._inputs import INTERSECTION, FairnessInputs, Slice
from audit.core.options import Option
from audit.core.results import AuditorResult, SectionPart
from audit.tasks import SEQUENCE, TOKEN

if TYPE_CHECKING:
    from audit.core.context import AuditContext

SKIP_MULTI_LABEL = "multi-label classifiers are not supported by the fairness auditor yet"
NO_GROUPS = "No sensitive column was given and the data mentions too few identity terms for groups."
_RANK = {"fail": 0, "warn": 1, "info": 2}  # findings worst first


class FairnessAuditor(Auditor):
    """Group fairness, bias AUCs and counterfactual token fairness of a text classifier; name-swap
    recognition, entity-switched F1 and entity metrics by group of a token classifier (NER)."""

    name: ClassVar[str] = "fairness"
    title: ClassVar[str] = "Fairness"
    description: ClassVar[str] = (
        "Group metrics with bootstrap intervals over sensitive columns or identity terms (fairlearn, AIF360), "
        "bias AUCs (Borkan et al. 2019), counterfactual identity-term swaps (Garg et al. 2019); for NER, name swaps "
        "by group (Mishra et al. 2020) and entity-switched F1 (Agarwal et al. 2020)."
    )
    requires: ClassVar[frozenset[str]] = frozenset({"labels"})
    template: ClassVar[str] = "section.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "average_odds_difference", "bnsp_auc", "bnsp_auc_gap", "bpsn_auc", "bpsn_auc_gap",
        "counterfactual_flip_rate", "counterfactual_max_abs_delta", "counterfactual_mean_abs_delta",
        "counterfactual_term_effect", "demographic_parity_difference", "demographic_parity_ratio",
        "disparate_impact", "equal_opportunity_difference", "equalized_odds_difference", "equalized_odds_ratio",
        "false_positive_rate_difference", "generalized_entropy_index", "jigsaw_final_score", "overall_auc",
        "power_mean_bnsp_auc", "power_mean_bpsn_auc", "power_mean_subgroup_auc", "selection_rate",
        "statistical_parity_difference", "subgroup_auc", "subgroup_auc_gap", "theil_index",
        "true_positive_rate_difference",
        # token classification (NER): name swaps, entity switching, entity F1 by sensitive column
        "name_recognition_rate", "name_other_type_rate", "name_missed_rate", "name_recognition_gap",
        "name_recognition_ratio", "entity_switched_f1", "entity_switched_f1_gap", "entity_switched_f1_ratio",
        "group_entity_f1", "group_entity_f1_gap", "group_entity_f1_ratio",
    })
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE, TOKEN})
    params: ClassVar[dict[str, Option]] = {
        "positive_label": Option(kind="label", nullable=True,
                                 help="label name or id; default class 1 when binary, one-vs-rest when multi-class"),
        "min_group_size": Option(kind="int", min=1, default=30, help="smaller groups are listed as too small to judge"),
        "dp_ratio_min": Option(kind="float", min=0, min_exclusive=True, max=1, default=0.8, help="four-fifths rule"),
        "eo_diff_max": Option(kind="float", min=0, max=0.999999, default=0.1, help="equalized-odds difference"),
        "bias_auc_gap_max": Option(kind="float", min=0, max=0.999999, default=0.05,
                                   help="overall AUC minus a subgroup's bias AUC"),
        "cf_effect_max": Option(kind="float", min=0, max=0.999999, default=0.1,
                                help="counterfactual term effect on the positive-class probability"),
        "n_bootstrap": Option(kind="int", min=1, max=1_000_000, default=1000, help="bootstrap resamples"),
        "lexicon": Option(kind="file", nullable=True, help="YAML file extending the built-in identity terms"),
        "identity_groups": Option(kind="str", choices=("auto", "always", "never"), default="auto",
                                  help="group metrics over identity terms"),
        "counterfactual": Option(kind="bool", default=True, help="counterfactual identity-term swaps"),
        "swap_to": Option(kind="str", choices=("observed", "lexicon"), default="observed",
                          help="swap in terms seen in the data, or every lexicon term"),
        "min_term_rows": Option(kind="int", min=1, default=5, help="with swap_to=observed: rows a term needs"),
        "max_counterfactual_rows": Option(kind="int", min=1, default=200, help="per category, seeded sample"),
        "n_examples": Option(kind="int", min=1, default=10, help="examples shown"),
        "mitigation": Option(kind="bool", default=True, help="advisory mitigation (fairlearn ThresholdOptimizer)"),
        # token classification (NER) only
        "name_lexicon": Option(kind="file", nullable=True,
                               help="JSON names and places by group (the shape of the built-in entity lexicon)"),
        "min_names": Option(kind="int", min=2, default=10, help="names a lexicon group needs to be judged"),
        "max_name_sentences": Option(kind="int", min=0, default=40,
                                     help="eval sentences with a person used as name-swap contexts, seeded sample"),
        "max_switch_sentences": Option(kind="int", min=1, default=200,
                                       help="eval sentences whose persons and places are switched, seeded sample"),
        "token_gap_max": Option(kind="float", min=0, max=0.999999, default=0.1,
                                help="NER: best group's rate (recognition, entity F1) minus a group's"),
        "token_ratio_min": Option(kind="float", min=0, min_exclusive=True, max=1, default=0.8,
                                  help="NER: a group's rate over the best group's"),
    }

    def _validate(self) -> None:
        """A user lexicon is read now, so a malformed one is an error before the model loads."""
        if self.options["lexicon"] is not None:
            from audit.auditors.fairness._identity import load_lexicon

            load_lexicon(self.options["lexicon"])
        if self.options["name_lexicon"] is not None:
            from audit.auditors.fairness._token_lexicon import load_name_lexicon

            load_name_lexicon(self.options["name_lexicon"])
    # ------------------------------------------------------------------ run

    def _run(self, ctx: AuditContext) -> AuditorResult:
        from audit.auditors.fairness._bias_auc import bias_aucs
        from audit.auditors.fairness._counterfactual import counterfactuals
        from audit.auditors.fairness._groups import group_fairness
        from audit.auditors.fairness._identity import load_lexicon
        from audit.auditors.fairness._mitigation import mitigation

        steps: list[tuple[str, bool, Callable[[], SectionPart]]]
        if ctx.task == TOKEN:  # NER: name swaps, entity switching, sensitive columns (._token)
            from audit.auditors.fairness._token import token_steps

            steps, no_groups = token_steps(ctx, self.options), False
        else:
            if ctx.data.multi_label:
                return AuditorResult(auditor=self.name, status="skipped", reason=SKIP_MULTI_LABEL)
            inputs = FairnessInputs.of(ctx=ctx, options=self.options, lexicon=load_lexicon(self.options["lexicon"]))
            found = slices(inputs)
            no_groups = not found
            steps = [
                ("groups", True, lambda: group_fairness(inputs, slices=found)),
                ("bias_auc", True, lambda: bias_aucs(inputs)),
                ("counterfactual", self.options["counterfactual"], lambda: counterfactuals(inputs)),
                ("mitigation", self.options["mitigation"], lambda: mitigation(inputs, slices=found)),
            ]
        parts, timings = [], {}
        for step, enabled, work in steps:
            if enabled:
                start = time.perf_counter()
                parts.append(work())
                timings[step] = time.perf_counter() - start
        if no_groups:
            parts.append(SectionPart(extra={"note": NO_GROUPS}))
        part = SectionPart.merge(*parts)
        worst_first = dataclasses.replace(part, findings=sorted(part.findings, key=lambda f: _RANK[f.severity]))
        return worst_first.to_result(auditor=self.name, timings=timings)


def slices(inputs: FairnessInputs) -> tuple[Slice, ...]:
    """Every grouping to judge: each sensitive column, their intersection when there are
    several, and (option ``identity_groups``: always, or auto without a column) each lexicon
    category with two or more terms in the data, a row in the group of the one term it mentions."""
    ctx = inputs.ctx
    out: list[Slice] = []
    cols = list(ctx.sensitive)
    values = {c: np.array([str(v) for v in ctx.data.column(c).to_numpy()], dtype=object) for c in cols}
    for c in cols:
        out.append(Slice(name=c, groups=values[c], kind="column"))
    if len(cols) > 1:
        joined = np.array([INTERSECTION.join(parts) for parts in zip(*(values[c] for c in cols), strict=True)],
                          dtype=object)
        out.append(Slice(name=INTERSECTION.join(cols), groups=joined, kind="intersection"))
    mode = inputs.options["identity_groups"]
    if mode == "always" or (mode == "auto" and not cols):
        for category, terms in inputs.lexicon.categories.items():
            names = [t.name for t in terms if (category, t.name) in inputs.observed]
            if len(names) < 2:
                continue
            hits = np.column_stack([inputs.mentions[(category, n)] for n in names])
            one = hits.sum(axis=1) == 1
            groups = np.full(len(inputs.texts), None, dtype=object)
            groups[one] = np.asarray(names, dtype=object)[hits[one].argmax(axis=1)]
            # A sensitive column may carry a category's name (``age``): the two slices stay apart.
            name = category if category not in {s.name for s in out} else f"{category} (identity terms)"
            out.append(Slice(name=name, groups=groups, kind="identity"))
    return tuple(out)
