"""Counterfactual token fairness (Garg et al. 2019, "Counterfactual Fairness in Text
Classification through Robustness"): each identity term of a row swapped for the other terms of
its category, the variants re-scored through the shared target.

Per category: the share of swaps that flip the prediction and the mean and largest change of
P(positive). Per term: its effect, P(positive) with the term minus the mean over the category's
terms on the same texts, with a seeded bootstrap interval Bonferroni-adjusted over the
category's terms; an effect past ``cf_effect_max`` is a finding. The flipped rows are declared
as ``interesting_rows`` for the auditors that consume fairness (explainability explains them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.fairness._inputs import FairnessInputs, unclear
from audit.core.results import Figure, Finding, Metric, SectionPart, Table
from audit.core.stats import family_confidence

if TYPE_CHECKING:
    import pandas as pd

NO_SWAP = "No row mentions an identity term with another term to swap to."


@dataclass(frozen=True, kw_only=True, eq=False)
class _Scored:
    """Every swap (``records``: category, row, source and target term, variant text and its
    spans) and the model's probabilities and predictions on its variant."""

    records: list[dict[str, Any]]
    probs: np.ndarray
    preds: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        return np.array([rec["row"] for rec in self.records])


def counterfactuals(inputs: FairnessInputs) -> SectionPart:
    """The three tables, the term-effect chart, the metrics and findings of every judged class,
    and the worst swaps as examples (a note instead when there is nothing to swap)."""
    import pandas as pd

    plan = _plan(inputs)
    if not plan:
        return SectionPart(extra={"counterfactual_note": NO_SWAP})
    scored = _score(inputs, plan)
    flips = scored.preds != inputs.preds[scored.rows]
    cat_rows: list[dict[str, Any]] = []
    pair_rows: list[dict[str, Any]] = []
    term_rows: list[dict[str, Any]] = []
    parts = []
    for c in inputs.classes:
        part, rows = _class_effects(inputs, scored, flips, c)
        parts.append(part)
        cat_rows += rows["categories"]
        pair_rows += rows["pairs"]
        term_rows += rows["terms"]
    tables = [
        Table.from_frame("counterfactual_categories", pd.DataFrame(cat_rows),
                         title="Counterfactual term swaps per category"),
        Table.from_frame("counterfactual_terms", pd.DataFrame(term_rows),
                         title="Term effect on P(positive): with the term minus the category mean"),
        Table.from_frame("counterfactual_pairs", pd.DataFrame(pair_rows), title="Counterfactual swaps per term pair"),
    ]
    figures = [_effects_figure(term_rows)] if term_rows else []
    examples = _examples(inputs, scored, flips)
    return SectionPart.merge(*parts, SectionPart(tables=tables, figures=figures, extra=examples))


def _plan(inputs: FairnessInputs) -> list[tuple[str, int, str, list[str]]]:
    """(category, row, source term, target terms) of every swap: rows that mention exactly one
    term of a category, at most ``max_counterfactual_rows`` per category (a seeded sample)."""
    o = inputs.options
    rng = inputs.rng("counterfactual")
    plan: list[tuple[str, int, str, list[str]]] = []
    for category, terms in inputs.lexicon.categories.items():
        usable = [t.name for t in terms if o["swap_to"] == "lexicon"
                  or inputs.mentions[(category, t.name)].sum() >= o["min_term_rows"]]
        if len(usable) < 2:
            continue
        hits = np.column_stack([inputs.mentions[(category, t.name)] for t in terms])
        # A row with several terms of a category is ambiguous; a row whose term is too rare to swap
        # in elsewhere cannot be compared on the same set of terms as the others.
        source_ok = np.isin(np.array([t.name for t in terms], dtype=object)[hits.argmax(axis=1)], usable)
        rows = np.flatnonzero((hits.sum(axis=1) == 1) & source_ok)
        if rows.size > o["max_counterfactual_rows"]:
            rows = np.sort(rng.choice(rows, o["max_counterfactual_rows"], replace=False))
        for r in rows:
            source = terms[int(hits[r].argmax())].name
            plan.append((category, int(r), source, [t for t in usable if t != source]))
    return plan


def _score(inputs: FairnessInputs, plan: list[tuple[str, int, str, list[str]]]) -> _Scored:
    """Build every variant and score each distinct one (with its row's pair text) once."""
    from audit.auditors.fairness._identity import swap_term

    lexicon, pairs = inputs.lexicon, inputs.ctx.data.pairs
    records: list[dict[str, Any]] = []
    variants: list[str] = []
    variant_pairs: list[str] = []
    for category, r, source, targets in plan:
        src = lexicon.term(category, source)
        for target in targets:
            s = swap_term(inputs.texts[r], src, lexicon.term(category, target))
            records.append({"category": category, "row": r, "source": source, "target": target,
                            "variant": s.text, "spans": s.spans, "index": len(variants)})
            variants.append(s.text)
            if pairs is not None:
                variant_pairs.append(pairs[r])
    unique = list(dict.fromkeys(zip(variants, variant_pairs or [None] * len(variants), strict=True)))
    where = {v: i for i, v in enumerate(unique)}
    scored = inputs.ctx.predict([u[0] for u in unique], [u[1] for u in unique] if pairs is not None else None,
                                desc="fairness: counterfactual variants")
    at = [where[(v, variant_pairs[i] if pairs is not None else None)] for i, v in enumerate(variants)]
    return _Scored(records=records, probs=scored.probs[at], preds=scored.preds[at])


def _class_effects(inputs: FairnessInputs, scored: _Scored, flips: np.ndarray,
                   c: int) -> tuple[SectionPart, dict[str, list[dict[str, Any]]]]:
    """Class ``c``: the metrics and findings per category and term, and the table rows."""
    import pandas as pd

    from audit.auditors.fairness._metrics import severity

    o = inputs.options
    suffix = inputs.suffix(c)
    positive = inputs.label_names[c]
    records, rows_idx = scored.records, scored.rows
    delta = scored.probs[:, c] - inputs.probs[rows_idx, c]
    frame = pd.DataFrame({"category": [r["category"] for r in records], "row": rows_idx,
                          "source": [r["source"] for r in records], "target": [r["target"] for r in records],
                          "delta": delta, "flip": flips})
    metrics, findings = [], []
    out: dict[str, list[dict[str, Any]]] = {"categories": [], "pairs": [], "terms": []}
    for category, part in frame.groupby("category", sort=False):
        flip_rate = float(part["flip"].mean())
        mean_abs, max_abs = float(part["delta"].abs().mean()), float(part["delta"].abs().max())
        out["categories"].append({"category": category + suffix, "rows": int(part["row"].nunique()),
                                  "variants": len(part), "flip_rate": flip_rate, "mean_abs_delta": mean_abs,
                                  "max_abs_delta": max_abs})
        sl = category + suffix
        metrics += [
            Metric("counterfactual_flip_rate", flip_rate, None, None, False, sl,
                   "share of term swaps that change the predicted class (Garg et al. 2019)"),
            Metric("counterfactual_mean_abs_delta", mean_abs, None, None, False, sl,
                   f"mean |change| of P({positive}) over term swaps"),
            Metric("counterfactual_max_abs_delta", max_abs, None, None, False, sl,
                   f"largest |change| of P({positive}) over term swaps"),
        ]
        for (src, tgt), pp in part.groupby(["source", "target"], sort=True):
            out["pairs"].append({"category": category + suffix, "from": src, "to": tgt, "variants": len(pp),
                                 "flip_rate": float(pp["flip"].mean()), "mean_delta": float(pp["delta"].mean()),
                                 "max_abs_delta": float(pp["delta"].abs().max())})
        # Term effect: per row, P(positive) with the term minus the mean over the category's terms.
        wide = _term_matrix(inputs, part, c)
        terms = list(wide.columns)
        confidence = family_confidence(len(terms))  # Bonferroni over the category's terms
        level = f"95% CI adjusted for {len(terms)} terms"
        for t in terms:
            effect = (wide[t] - wide.mean(axis=1)).to_numpy()
            value = float(effect.mean())
            ci = inputs.ci(np.mean, [effect], salt=f"cf:{category}:{t}{suffix}", confidence=confidence)
            out["terms"].append({"category": category + suffix, "term": t, "rows": len(effect),
                                 "effect": value, "ci_low": ci[0], "ci_high": ci[1]})
            metrics.append(Metric("counterfactual_term_effect", value, *ci, None, t + suffix,
                                  f"mean P({positive}) with this term minus the mean over the "
                                  f"{category} terms, same texts (Garg et al. 2019); interval: {level}"))
            sign = -1.0 if value < 0 else 1.0  # judge the size of the effect in its own direction
            mag_ci = sorted((sign * ci[0], sign * ci[1]))
            sev = severity(sign * value, *mag_ci, threshold=o["cf_effect_max"], parity=0.0, bad="above")
            if sev is None:
                continue
            direction = "less_positive" if value < 0 else "more_positive"
            verb = "lowers" if value < 0 else "raises"
            t_flip = float(part.loc[(part["target"] == t), "flip"].mean()) if (part["target"] == t).any() else 0.0
            findings.append(Finding(
                sev,
                f"Writing '{t}' instead of another {category.replace('_', ' ')} term {verb} P({positive}) "
                f"by {abs(value):.2f} on average ({level} {mag_ci[0]:.2f}–{mag_ci[1]:.2f}); "
                f"{t_flip:.0%} of swaps to '{t}' flip the prediction",
                f"Counterfactual token fairness (Garg et al. 2019) over {len(effect)} texts that mention a "
                f"{category.replace('_', ' ')} term, each re-scored with every other term of the category."
                + unclear(sev),
                {"check": "counterfactual_term_effect", "category": category, "term": t, "group": t,
                 "direction": direction, "value": value, "ci": list(ci), "flip_rate_to_term": t_flip,
                 "threshold": o["cf_effect_max"]}))
    return SectionPart(metrics=metrics, findings=findings), out


def _term_matrix(inputs: FairnessInputs, part: pd.DataFrame, c: int) -> pd.DataFrame:
    """Rows x terms: P(class c) of each text with each term of the category (original included)."""
    import pandas as pd

    base = part.groupby("row")["source"].first()
    orig = pd.DataFrame({"row": base.index, "target": base.to_numpy(),
                         "p": inputs.probs[base.index.to_numpy(), c]})
    var = pd.DataFrame({"row": part["row"].to_numpy(), "target": part["target"].to_numpy(),
                        "p": inputs.probs[part["row"].to_numpy(), c] + part["delta"].to_numpy()})
    wide = pd.concat([orig, var]).pivot_table(index="row", columns="target", values="p", aggfunc="mean")
    return wide.dropna(axis=0)


def _effects_figure(term_rows: list[dict[str, Any]]) -> Figure:
    return Figure.bar(
        "counterfactual_effects", labels=[f"{r['category']}: {r['term']}" for r in term_rows],
        values=[r["effect"] for r in term_rows], ci_low=[r["ci_low"] for r in term_rows],
        ci_high=[r["ci_high"] for r in term_rows], title="Counterfactual term effect", reference=0.0,
        xlabel="change in P(positive class)",
        caption="Mean P(positive) with the term minus the category mean over the same texts, 95% bootstrap CI "
                "(Garg et al. 2019).")


def _examples(inputs: FairnessInputs, scored: _Scored, flips: np.ndarray) -> dict[str, Any]:
    """The worst swaps of the first judged class, one per row (flips first, then by size of the
    change), up to ``n_examples``; and the flipped ones as the declared ``interesting_rows``."""
    from audit.auditors.fairness._identity import split_spans, term_spans

    primary = inputs.classes[0]
    records, rows_idx = scored.records, scored.rows
    delta = scored.probs[:, primary] - inputs.probs[rows_idx, primary]
    order = sorted(range(len(records)), key=lambda i: (not flips[i], -abs(delta[i]), i))
    examples, seen_rows = [], set()
    for i in order:
        rec = records[i]
        if rec["row"] in seen_rows:
            continue
        seen_rows.add(rec["row"])
        original = inputs.texts[rec["row"]]
        src = inputs.lexicon.term(rec["category"], rec["source"])
        examples.append({
            "category": rec["category"], "from": rec["source"], "to": rec["target"],
            "original": original, "variant": rec["variant"],
            "original_parts": split_spans(original, term_spans(original, src)),
            "variant_parts": split_spans(rec["variant"], rec["spans"]),
            "p_original": float(inputs.probs[rec["row"], primary]), "p_variant": float(scored.probs[i, primary]),
            "delta": float(delta[i]), "flipped": bool(flips[i]),
            "pred_original": inputs.label_names[int(inputs.preds[rec["row"]])],
            "pred_variant": inputs.label_names[int(scored.preds[i])],
        })
        if len(examples) >= inputs.options["n_examples"]:
            break
    return {
        "counterfactual_examples": examples,
        "counterfactual_positive_label": inputs.label_names[primary],
        # Declared output for auditors that consume fairness (explainability explains these rows).
        "interesting_rows": [
            {"text": ex["original"], "reason": "fairness: counterfactual flip", "variant": ex["variant"],
             "swap": f"{ex['from']} -> {ex['to']}"} for ex in examples if ex["flipped"]],
    }
