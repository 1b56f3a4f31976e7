"""Entity-switched F1 by origin: the same eval sentences, their persons and places taken from
each group of the name lexicon in turn.

Agarwal, Yu, Ramakrishnan & Goldwasser 2020 ("Entity-Switched Datasets: An Approach to Auditing
the In-Domain Robustness of Named Entity Recognition Models") replace the gold entities of a test
set with same-type entities of one national origin and compare the F1 across origins. Here every
strict person entity of a seeded sample of the eval sentences becomes a name of the group (a
first name of any of its lists and one of its last names, drawn per entity) and every place
entity one of the group's places; the gold tags are re-aligned to the new word counts
(:mod:`._token_swap`). Every group's version of the sample goes through the shared target in one
batched pass.

Per group, the strict entity-level precision, recall and micro F1 (seqeval's strict mode, from
the performance auditor's per-sentence counts), with a percentile bootstrap interval over
sentences. All groups are resampled with the same sentence indices, so the comparison of each
group with the best one (:mod:`._token_gaps`) is a paired bootstrap: the sentences are the same,
only the names and places differ. The unswapped sentences' F1 is shown beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.fairness._inputs import SALT_PREFIX
from audit.auditors.fairness._token_lexicon import PERSON_TYPES, PLACE_TYPES, NameLexicon, entity_type
from audit.core.results import Figure, Metric, SectionPart, Table
from audit.tasks.tagging import entity_spans

if TYPE_CHECKING:
    from audit.auditors.fairness._token_swap import Swapped
    from audit.core.context import AuditContext

ORIGINAL = "(original)"
SLICE = "origin"
NO_TYPES = ("Entity switching was not judged: the model's tags {tags} have neither a person type ({persons}) "
            "nor a place type ({places}).")
NO_SENTENCES = "Entity switching was not judged: no eval sentence holds a {types} entity."
TOO_FEW = ("Entity switching: only {n} eval sentences hold a {types} entity, fewer than min_group_size = {min_n}; "
           "the groups are shown but not compared.")


def switch_variants(*, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], scheme: str,
                    person: str | None, place: str | None, lexicon: NameLexicon, group: str,
                    rng: np.random.Generator) -> list[Swapped]:
    """Each sentence with its strict ``person`` entities replaced by names of ``group`` and its
    ``place`` entities by places of ``group`` (drawn from ``rng``, sentence by sentence, entity by
    entity); a type the model lacks (None), or a group without places, leaves those entities."""
    from audit.auditors.fairness._token_swap import swap_entities

    names = lexicon.groups[group]
    firsts = [f for lst in names.first_names.values() for f in lst]
    out = []
    for words, gold in zip(tokens, tags, strict=True):
        replacements = []
        for span in entity_spans(gold, scheme=scheme):
            if span.type == person:
                first = firsts[int(rng.integers(len(firsts)))]
                last = names.last_names[int(rng.integers(len(names.last_names)))] if names.last_names else ""
                replacements.append((span, f"{first} {last}".split()))
            elif span.type == place and names.places:
                replacements.append((span, names.places[int(rng.integers(len(names.places)))].split()))
        out.append(swap_entities(tokens=words, tags=gold, replacements=replacements, scheme=scheme))
    return out


def entity_switch(ctx: AuditContext, options: Mapping[str, Any], *, lexicon: NameLexicon) -> SectionPart:
    """The entity-switching part of the token fairness section (see the module docstring)."""
    import pandas as pd

    from audit.auditors.fairness._token_gaps import gap_part, gaps_to_best

    tag_names = [str(t) for t in ctx.target.label_names]
    person = entity_type(tag_names, candidates=PERSON_TYPES)
    place = entity_type(tag_names, candidates=PLACE_TYPES)
    if person is None and place is None:
        return SectionPart(extra={"notes": [NO_TYPES.format(tags=tag_names, persons=", ".join(PERSON_TYPES),
                                                            places=", ".join(PLACE_TYPES))]})
    types = " or ".join(t for t in (person, place) if t)
    scheme, data = ctx.data.scheme, ctx.data
    chosen = [i for i, g in enumerate(data.tags) if any(s.type in (person, place)
                                                       for s in entity_spans(g, scheme=scheme))]
    if not chosen:
        return SectionPart(extra={"notes": [NO_SENTENCES.format(types=types)]})
    limit = options["max_switch_sentences"]
    if len(chosen) > limit:
        rng = ctx.rng(SALT_PREFIX + "switch:sentences")
        chosen = sorted(chosen[int(k)] for k in rng.choice(len(chosen), size=limit, replace=False))
    tokens, tags = [data.tokens[i] for i in chosen], [data.tags[i] for i in chosen]
    groups = list(lexicon.groups)
    variants = {g: switch_variants(tokens=tokens, tags=tags, scheme=scheme, person=person, place=place,
                                   lexicon=lexicon, group=g, rng=ctx.rng(f"{SALT_PREFIX}switch:{g}")) for g in groups}
    flat = [list(v.tokens) for g in groups for v in variants[g]]
    words = ctx.predict_words(flat, desc="fairness: entity switching")
    pred = [[tag_names[int(j)] for j in p] for p in words.preds]
    n = len(chosen)
    shared = ctx.word_predictions.preds
    sets = {ORIGINAL: (tags, [[tag_names[int(j)] for j in shared[i]] for i in chosen])}
    for k, g in enumerate(groups):
        sets[g] = ([list(v.tags) for v in variants[g]], pred[k * n:(k + 1) * n])
    seed = ctx.seed_for(SALT_PREFIX + "switch:bootstrap")  # one seed: the same resamples for every group
    rows, metrics, values, resamples = [], [], {}, {}
    for name, (gold, predicted) in sets.items():
        row, f1_resamples = _scores(gold, predicted, scheme=scheme, n_bootstrap=options["n_bootstrap"], seed=seed)
        rows.append({"group": name, **row})
        metrics.append(Metric("entity_switched_f1", row["f1"], row["f1_ci_low"], row["f1_ci_high"], True,
                              f"{SLICE}={name}" if name != ORIGINAL else "original",
                              "strict entity micro F1 on the sampled eval sentences"
                              + (f" with their {types} entities switched to this group's" if name != ORIGINAL
                                 else ", unswapped")))
        if name != ORIGINAL:
            values[name], resamples[name] = row["f1"], f1_resamples
    extra: dict[str, Any] = {"entity_switch": {"sentences": n, "person_type": person, "place_type": place,
                                               "variants": len(flat)}}
    min_n = options["min_group_size"]
    compared = SectionPart()
    if n >= min_n:
        gaps = gaps_to_best(values=values, resamples=resamples, judged=groups, gap_max=options["token_gap_max"],
                            ratio_min=options["token_ratio_min"])
        compared = gap_part(gaps, slice_name=SLICE, metric="entity_switched_f1",
                            what=f"entity F1 with {types} entities switched", check="entity_switched_f1",
                            source="Entity switching (Agarwal et al. 2020), paired bootstrap over the same "
                                   f"{n} sentences.", gap_max=options["token_gap_max"],
                            ratio_min=options["token_ratio_min"])
    else:
        extra["notes"] = [TOO_FEW.format(n=n, types=types, min_n=min_n)]
    table = Table.from_frame("entity_switched", pd.DataFrame(rows),
                             title=f"Entity-switched strict F1 by origin of the {types} entities "
                                   f"({n} eval sentences, 95% bootstrap CIs over sentences)")
    original = rows[0]["f1"]
    figure = Figure.bar("entity_switched:f1", labels=[r["group"] for r in rows[1:]], values=[r["f1"] for r in rows[1:]],
                        ci_low=[r["f1_ci_low"] for r in rows[1:]], ci_high=[r["f1_ci_high"] for r in rows[1:]],
                        title="Entity-switched F1 by origin", xlabel="strict entity micro F1", reference=original,
                        reference_label=f"unswapped {original:.3f}",
                        caption="The same sentences with their entities switched to each group's; 95% bootstrap "
                                "CIs over sentences; the dashed line is the unswapped F1.")
    return SectionPart(metrics=metrics, tables=[table], figures=[figure], extra=extra) + compared


def _scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, scheme: str, n_bootstrap: int,
            seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """Strict micro precision, recall, F1 and the F1's interval and resamples (the performance
    auditor's per-sentence counts and resamples)."""
    from audit.auditors.performance._token import resample_scores, scores_from_weights, sentence_counts
    from audit.core.stats import percentile_interval

    def spans(seqs: Sequence[Sequence[str]]) -> list[list[tuple[str, int, int]]]:
        return [[(s.type, s.start, s.end) for s in entity_spans(t, scheme=scheme)] for t in seqs]

    gold_spans = spans(gold)
    counts = sentence_counts(gold_spans, spans(pred))
    point = scores_from_weights(counts, np.ones((1, len(gold))))[0]
    f1 = resample_scores(counts, n_bootstrap=n_bootstrap, seed=seed)[:, 2]
    low, high = percentile_interval(f1)
    return ({"sentences": len(gold), "gold_entities": sum(len(s) for s in gold_spans), "precision": float(point[0]),
             "recall": float(point[1]), "f1": float(point[2]), "f1_ci_low": low, "f1_ci_high": high}, f1)
