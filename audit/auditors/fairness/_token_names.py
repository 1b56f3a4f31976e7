"""Name-swap recognition by group: does the tagger find a person's name whatever list it comes from?

Mishra, He & Belli 2020 ("Assessing Demographic Bias in Named Entity Recognition") fill neutral
sentences with names of different origins and count how often each name is tagged as a whole
person entity; CheckList's NER tests (Ribeiro et al. 2020) do the same with "I met with
{first_name} {last_name}". Here every name of the lexicon (a first name of each list, with a
seeded last name of its group) is put in the same contexts: a few neutral templates and a seeded
sample of the eval set's own sentences that hold a person entity (the first one replaced, the
gold tags re-aligned). All variants go through the shared target in one batched pass.

A name in a context is *recognised* when the prediction holds exactly its span with the person
type (strict spans, the data's scheme), *another type* when it is not recognised and a predicted
entity of another type overlaps it, *missed* otherwise (no entity on it, or a person span cut
short or running over). Per name, the share of contexts of each outcome; per group, the mean over
its names, with a percentile bootstrap interval over names (resampled within the group: the names
are the units drawn from a list, the contexts are shared by all). Each group is compared with the
best group of its slice (:mod:`._token_gaps`). Groups with fewer than ``min_names`` names are
listed as too small to judge, left out of the comparisons and of the chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.fairness._inputs import INTERSECTION, JUDGED, SALT_PREFIX, TOO_SMALL
from audit.auditors.fairness._token_lexicon import PERSON_TYPES, NameLexicon, entity_type
from audit.core.results import Figure, Metric, SectionPart, Table
from audit.tasks.tagging import Span, entity_spans

if TYPE_CHECKING:
    from audit.core.context import AuditContext

# Neutral contexts for a person's name (CheckList's "I met with {first_name} {last_name}" and
# sentences of the same kind): nothing in them says who the person is or where from.
NAME_TEMPLATES = (
    "I met with {PER} yesterday .",
    "{PER} sent me a letter .",
    "We talked to {PER} about the plan .",
    "This is a photo of {PER} .",
    "{PER} is coming to the meeting .",
    "Everyone thanked {PER} for the help .",
)
RECOGNISED, OTHER_TYPE, MISSED = 0, 1, 2
OUTCOMES = ("recognised", "other_type", "missed")
NO_PERSON_TYPE = ("Name-swap recognition was not judged: the model's tags {tags} have no person type "
                  "(one of {types}).")
NOTHING_JUDGED = ("Name-swap recognition: no group of {slices} has at least min_names = {min_n} names in the "
                  "lexicon; nothing was compared.")
# On screen; the interval bounds are in the full table beneath and on the chart.
COLUMNS_SHOWN = ("slice", "group", "status", "names", "recognised", "other_type", "missed")


@dataclass(frozen=True, kw_only=True)
class SwapName:
    """One name of the lexicon: its group (origin), the first-name list it came from, its words."""

    group: str
    gender: str
    text: str


def lexicon_names(lexicon: NameLexicon, *, rng: np.random.Generator) -> tuple[SwapName, ...]:
    """Every first name of every group and list, each with a last name of its group drawn from
    ``rng`` (first name alone when the group has no last names), in lexicon order."""
    out = []
    for group, names in lexicon.groups.items():
        for gender, firsts in names.first_names.items():
            for first in firsts:
                last = names.last_names[int(rng.integers(len(names.last_names)))] if names.last_names else ""
                out.append(SwapName(group=group, gender=gender, text=f"{first} {last}".strip()))
    return tuple(out)


def name_contexts(*, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], kind: str, scheme: str,
                  limit: int, rng: np.random.Generator) -> tuple[tuple[tuple[str, ...], tuple[str, ...], Span], ...]:
    """The contexts: (words, gold tags, the person slot) for each template, then for up to
    ``limit`` eval sentences (a seeded sample, in data order) holding a strict ``kind`` entity,
    the first such entity being the slot."""
    from audit.auditors.fairness._token_swap import insert_entity

    out = []
    for template in NAME_TEMPLATES:
        words = template.split()
        at = words.index("{PER}")
        made = insert_entity(before=words[:at], words=["_"], after=words[at + 1:], kind=kind, scheme=scheme)
        out.append((made.tokens, made.tags, made.spans[0]))
    found = []
    for i, (t, g) in enumerate(zip(tokens, tags, strict=True)):
        person = next((s for s in entity_spans(g, scheme=scheme) if s.type == kind), None)
        if person is not None:
            found.append((tuple(t), tuple(g), person, i))
    if len(found) > limit:
        keep = np.sort(rng.choice(len(found), size=limit, replace=False))
        found = [found[k] for k in keep]
    return (*out, *((t, g, s) for t, g, s, _ in found))


def outcomes(*, pred_tags: Sequence[Sequence[str]], spans: Sequence[Span], scheme: str, kind: str) -> np.ndarray:
    """Per variant, :data:`RECOGNISED` (a predicted ``kind`` entity exactly on the name's span),
    :data:`OTHER_TYPE` (not that, and a predicted entity of another type overlaps the name) or
    :data:`MISSED`."""
    out = np.full(len(spans), MISSED, dtype=np.int8)
    for i, (tags, span) in enumerate(zip(pred_tags, spans, strict=True)):
        predicted = entity_spans(tags, scheme=scheme)
        if Span(type=kind, start=span.start, end=span.end) in predicted:
            out[i] = RECOGNISED
        elif any(p.type != kind and p.start < span.end and span.start < p.end for p in predicted):
            out[i] = OTHER_TYPE
    return out


def name_swap(ctx: AuditContext, options: Mapping[str, Any], *, lexicon: NameLexicon) -> SectionPart:
    """The name-swap part of the token fairness section (see the module docstring)."""
    from audit.auditors.fairness._token_swap import swap_entities

    tag_names = [str(t) for t in ctx.target.label_names]
    kind = entity_type(tag_names, candidates=PERSON_TYPES)
    if kind is None:
        return SectionPart(extra={"notes": [NO_PERSON_TYPE.format(tags=tag_names, types=", ".join(PERSON_TYPES))]})
    scheme = ctx.data.scheme
    names = lexicon_names(lexicon, rng=ctx.rng(SALT_PREFIX + "names:last"))
    contexts = name_contexts(tokens=ctx.data.tokens, tags=ctx.data.tags, kind=kind, scheme=scheme,
                             limit=options["max_name_sentences"], rng=ctx.rng(SALT_PREFIX + "names:sentences"))
    variants = [swap_entities(tokens=t, tags=g, replacements=[(slot, name.text.split())], scheme=scheme)
                for name in names for t, g, slot in contexts]
    words = ctx.predict_words([list(v.tokens) for v in variants], desc="fairness: name swap")
    pred = [[tag_names[int(j)] for j in p] for p in words.preds]
    codes = outcomes(pred_tags=pred, spans=[v.spans[0] for v in variants], scheme=scheme, kind=kind)
    codes = codes.reshape(len(names), len(contexts))
    shares = np.stack([(codes == c).mean(axis=1) for c in range(len(OUTCOMES))], axis=1)  # names x outcomes
    slices = {"origin": [n.group for n in names], "first-name list": [n.gender for n in names],
              f"origin{INTERSECTION}first-name list": [f"{n.group}{INTERSECTION}{n.gender}" for n in names]}
    parts, rows = [], []
    for slice_name, groups in slices.items():
        part, slice_rows = _slice(ctx, options, slice_name=slice_name, groups=np.asarray(groups, dtype=object),
                                  shares=shares, kind=kind)
        parts.append(part)
        rows += slice_rows
    import pandas as pd

    judged_any = any(r["status"] == JUDGED for r in rows)
    extra: dict[str, Any] = {"name_swap": {
        "lexicon": lexicon.source, "lexicon_version": lexicon.version, "licence": lexicon.licence,
        "person_type": kind, "names": len(names), "contexts": len(contexts), "templates": len(NAME_TEMPLATES),
        "eval_sentences": len(contexts) - len(NAME_TEMPLATES), "variants": len(variants)}}
    if not judged_any:
        extra["notes"] = [NOTHING_JUDGED.format(slices=", ".join(slices), min_n=options["min_names"])]
    table = Table.from_frame("name_recognition", pd.DataFrame(rows),
                             title=f"Name-swap recognition as a whole {kind} span, by group of the name lexicon "
                                   "(95% bootstrap CIs over names)", shown=COLUMNS_SHOWN, chips=("status",))
    return SectionPart.merge(*parts, SectionPart(tables=[table], extra=extra))


def _slice(ctx: AuditContext, options: Mapping[str, Any], *, slice_name: str, groups: np.ndarray,
           shares: np.ndarray, kind: str) -> tuple[SectionPart, list[dict[str, Any]]]:
    """One slice: per-group rows and metrics, the chart of its judged groups, the comparisons."""
    from audit.auditors.fairness._token_gaps import gap_part, gaps_to_best
    from audit.core.stats import bootstrap_resamples, percentile_interval

    n_boot, min_n = options["n_bootstrap"], options["min_names"]
    rows, metrics, values, resamples = [], [], {}, {}
    for group in sorted(set(groups)):
        rates = shares[groups == group]
        seed = ctx.seed_for(f"{SALT_PREFIX}names:{slice_name}:{group}")
        idx = np.vstack(list(bootstrap_resamples(len(rates), n_resamples=n_boot, seed=seed)))
        res = rates[:, RECOGNISED][idx].mean(axis=1)
        ci = percentile_interval(res)
        point = rates.mean(axis=0)
        status = JUDGED if len(rates) >= min_n else TOO_SMALL
        rows.append({"slice": slice_name, "group": group, "status": status, "names": len(rates),
                     "recognised": float(point[RECOGNISED]), "recognised_ci_low": ci[0], "recognised_ci_high": ci[1],
                     "other_type": float(point[OTHER_TYPE]), "missed": float(point[MISSED])})
        where = f"{slice_name}={group}"
        metrics += [Metric("name_recognition_rate", float(point[RECOGNISED]), *ci, True, where,
                           f"share of name-in-context variants whose name is predicted as exactly one {kind} span"),
                    Metric("name_other_type_rate", float(point[OTHER_TYPE]), None, None, False, where,
                           "share of variants whose name is tagged (in part) with another entity type"),
                    Metric("name_missed_rate", float(point[MISSED]), None, None, False, where,
                           f"share of variants whose name is neither a whole {kind} span nor another type")]
        if status == JUDGED:
            values[group], resamples[group] = float(point[RECOGNISED]), res
    judged = [r for r in rows if r["status"] == JUDGED]
    figures = []
    if judged:
        figures.append(Figure.bar(
            f"name_recognition:{slice_name}", labels=[f"{r['group']} (n={r['names']})" for r in judged],
            values=[r["recognised"] for r in judged], ci_low=[r["recognised_ci_low"] for r in judged],
            ci_high=[r["recognised_ci_high"] for r in judged], title=f"Whole-name {kind} recognition by {slice_name}",
            xlabel=f"share recognised as one {kind} span",
            caption=f"Names of each group put in the same contexts; 95% bootstrap CIs over names. Groups with "
                    f"fewer than {min_n} names are not drawn."))
    gaps = gaps_to_best(values=values, resamples=resamples, judged=sorted(values),
                        gap_max=options["token_gap_max"], ratio_min=options["token_ratio_min"])
    compared = gap_part(gaps, slice_name=slice_name, metric="name_recognition",
                        what=f"whole-name {kind} recognition", check="name_recognition",
                        source="Name swaps in the same contexts (Mishra, He & Belli 2020); bootstrap over names.",
                        gap_max=options["token_gap_max"], ratio_min=options["token_ratio_min"])
    return SectionPart(metrics=metrics, figures=figures) + compared, rows
