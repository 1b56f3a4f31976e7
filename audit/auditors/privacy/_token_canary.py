"""Entity canary test: does the tagger recognise the entities of its training data better than
entities it never saw, in the same contexts?

After Ali et al. 2023 ("Unintended Memorization and Timing Attacks in Named Entity Recognition
Models", PoPETs) and Xia et al. 2025: each entity is inserted into the same templates, and the
model's confidence in the entity's own tags there is its score. Members are the entities of the
training sentences (``ctx.train``); non-members are entities of the non-member sentences
(``ctx.holdout``, else ``ctx.data``) whose words never occur as an entity in training, of the same
types. The templates are non-member sentences with one entity of the type cut out, so neither side
is scored in a sentence the model was trained on. A tagger that generalises tags a new entity as
confidently as a known one (AUC near 0.5); one that memorised its training entities does not.

``canary_column`` / ``canary_value`` keep only the sentences whose column has that value on both
sides (the NER demo: ``kind == made_up``, entities that no context can type), so like is compared
with like; ``canary_types`` keeps only entities of those types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import Finding, Metric, SectionPart, Table
from audit.errors import AuditInputError

if TYPE_CHECKING:
    from audit.core.context import AuditContext

CANARY_COLUMN_MISSING = ("option privacy.canary_column: {path} has no per-sentence column {column!r}; columns are "
                         "{columns}")
CANARY_VALUE_NEEDED = "option privacy.canary_value: needed with canary_column {column!r} (the value of rows to keep)"
SKIP_NO_TRAIN = "no training data was given (--train-data), so there are no known training entities"
SKIP_NO_MODEL = "no model is loaded"
SKIP_FEW = ("only {n} member/non-member entity pairs of a type with templates (at least {need} per type needed); "
            "non-members are entities never tagged in the training data")
MIN_ENTITY_PAIRS = 10
_EPS = 1e-12


@dataclass(frozen=True, kw_only=True)
class CanaryEntity:
    """One entity: its words, its tags (as in the sentence it came from) and its type."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    type: str


@dataclass(frozen=True, kw_only=True)
class Template:
    """A sentence with one entity cut out: the words and tags either side of the slot."""

    left: tuple[str, ...]
    right: tuple[str, ...]
    left_tags: tuple[str, ...]
    right_tags: tuple[str, ...]


def sentence_entities(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *,
                      scheme: str) -> list[CanaryEntity]:
    """Every entity (strict spans under ``scheme``) of the sentences, in order, repeats kept."""
    from audit.tasks.tagging import entity_spans

    return [CanaryEntity(words=tuple(w[s.start:s.end]), tags=tuple(t[s.start:s.end]), type=s.type)
            for w, t in zip(tokens, tags, strict=True) for s in entity_spans(t, scheme=scheme)]


def templates_of(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], *,
                 scheme: str) -> dict[str, list[Template]]:
    """Each sentence once per entity in it, that entity cut out, by the entity's type (distinct only)."""
    from audit.tasks.tagging import entity_spans

    out: dict[str, dict[Template, None]] = {}
    for w, t in zip(tokens, tags, strict=True):
        for s in entity_spans(t, scheme=scheme):
            tpl = Template(left=tuple(w[:s.start]), right=tuple(w[s.end:]), left_tags=tuple(t[:s.start]),
                           right_tags=tuple(t[s.end:]))
            out.setdefault(s.type, {})[tpl] = None
    return {k: list(v) for k, v in out.items()}


def canary_scores(ctx: AuditContext, *, entities: Sequence[CanaryEntity], templates: Mapping[str, Sequence[Template]],
                  desc: str) -> np.ndarray:
    """Each entity's score: the mean, over its type's templates, of the mean log-probability the
    model gives the entity's own tags on its words there. One batched pass for all of them."""
    sentences, spans = [], []
    for e in entities:
        for tpl in templates[e.type]:
            sentences.append([*tpl.left, *e.words, *tpl.right])
            spans.append((len(tpl.left), e.tags))
    probs = ctx.predict_words(sentences, desc=desc).probs
    index = {name: i for i, name in enumerate(ctx.target.label_names)}
    per_sentence = np.array([
        np.mean(np.log(np.clip(p[start + np.arange(len(tags)), [index[t] for t in tags]], _EPS, None)))
        for p, (start, tags) in zip(probs, spans, strict=True)])
    counts = np.array([len(templates[e.type]) for e in entities], dtype=int)
    return np.add.reduceat(per_sentence, np.r_[0, np.cumsum(counts)[:-1]]) / counts


def _keep(es: Any, column: str | None, value: str | None) -> np.ndarray:
    """Row indices of a token set whose ``column`` equals ``value`` (every row without a column)."""
    if column is None:
        return np.arange(len(es))
    if value is None:
        raise AuditInputError(CANARY_VALUE_NEEDED.format(column=column))
    if column not in es.columns.columns:
        raise AuditInputError(CANARY_COLUMN_MISSING.format(path=es.source, column=column,
                                                           columns=", ".join(map(str, es.columns.columns)) or "(none)"))
    return np.flatnonzero(es.columns[column].astype(str).to_numpy() == str(value))


def entity_canary(ctx: AuditContext, *, options: Mapping[str, Any]) -> SectionPart:
    """The canary test: AUC of member against non-member entities (same types, same templates)
    with a stratified bootstrap interval, per type and overall; ``extra["canary"]`` its summary."""
    if ctx.target is None:
        return SectionPart(extra={"canary": {"ran": False, "reason": SKIP_NO_MODEL}})
    if ctx.train is None or len(ctx.train) == 0:
        return SectionPart(extra={"canary": {"ran": False, "reason": SKIP_NO_TRAIN}})
    column, value = options["canary_column"], options["canary_value"]
    other = ctx.holdout if ctx.holdout is not None and len(ctx.holdout) > 0 else ctx.data
    scheme = other.scheme
    train_rows, other_rows = _keep(ctx.train, column, value), _keep(other, column, value)
    seen = {tuple(w.casefold() for w in e.words)
            for e in sentence_entities(ctx.train.tokens, ctx.train.tags, scheme=ctx.train.scheme)}
    members = list(dict.fromkeys(sentence_entities([ctx.train.tokens[i] for i in train_rows],
                                                   [ctx.train.tags[i] for i in train_rows], scheme=ctx.train.scheme)))
    nonmembers = list(dict.fromkeys(
        e for e in sentence_entities([other.tokens[i] for i in other_rows], [other.tags[i] for i in other_rows],
                                     scheme=scheme)
        if tuple(w.casefold() for w in e.words) not in seen))
    templates = templates_of([other.tokens[i] for i in other_rows], [other.tags[i] for i in other_rows], scheme=scheme)
    rng = ctx.rng("privacy.canary")
    per_side = int(options["canary_examples"])
    k_templates = int(options["canary_templates"])
    wanted = options["canary_types"]
    if wanted is not None:
        templates = {t: v for t, v in templates.items() if t in set(wanted)}
    mem, non, chosen = [], [], {}
    for etype in sorted(templates):
        m = [e for e in members if e.type == etype]
        n = [e for e in nonmembers if e.type == etype]
        k = min(len(m), len(n), per_side)
        if k < MIN_ENTITY_PAIRS:
            continue
        pool = templates[etype]
        chosen[etype] = [pool[i] for i in np.sort(rng.choice(len(pool), size=min(k_templates, len(pool)),
                                                             replace=False))]
        mem += [m[i] for i in np.sort(rng.choice(len(m), size=k, replace=False))]
        non += [n[i] for i in np.sort(rng.choice(len(n), size=k, replace=False))]
    if not mem:
        best = max((min(sum(e.type == t for e in members), sum(e.type == t for e in nonmembers)) for t in templates),
                   default=0)
        return SectionPart(extra={"canary": {"ran": False, "reason": SKIP_FEW.format(n=best, need=MIN_ENTITY_PAIRS)}})
    s_mem = canary_scores(ctx, entities=mem, templates=chosen, desc="privacy: canary members")
    s_non = canary_scores(ctx, entities=non, templates=chosen, desc="privacy: canary non-members")
    return _canary_part(mem, non, s_mem, s_non, chosen, options=options, seed=ctx.seed_for("privacy.canary.boot"),
                        column=column, value=value)


def _auc_ci(y: np.ndarray, s: np.ndarray, *, n_resamples: int, seed: int) -> tuple[float, float, float]:
    """AUC and its stratified percentile bootstrap interval (members and non-members resampled apart)."""
    from audit.auditors.privacy._membership import auc
    from audit.core.stats import bootstrap_ci

    lo, hi = bootstrap_ci(auc, [y, s], n_resamples=n_resamples, seed=seed, strata=y)
    return auc(y, s), lo, hi


def _canary_part(mem: list[CanaryEntity], non: list[CanaryEntity], s_mem: np.ndarray, s_non: np.ndarray,
                 templates: Mapping[str, Sequence[Template]], *, options: Mapping[str, Any], seed: int,
                 column: str | None, value: str | None) -> SectionPart:
    """Metrics, table, finding and summary of the canary test from the entities' scores."""
    import pandas as pd

    n_boot = int(options["n_bootstrap"])
    y = np.r_[np.ones(len(mem), dtype=int), np.zeros(len(non), dtype=int)]
    s = np.r_[s_mem, s_non]
    types = np.array([e.type for e in mem + non])
    overall = _auc_ci(y, s, n_resamples=n_boot, seed=seed)
    what = ("Entity canary AUC (Ali et al. 2023): the model's mean log-probability of an entity's own tags, inserted "
            "into the same templates, training-set entities against entities never tagged in training; 0.5 is chance.")
    metrics = [Metric(name="canary_auc", value=overall[0], ci_low=overall[1], ci_high=overall[2],
                      higher_is_better=False, description=what)]
    rows = []
    for etype in sorted(templates):
        sel = types == etype
        v = _auc_ci(y[sel], s[sel], n_resamples=n_boot, seed=seed)
        metrics.append(Metric(name="canary_auc", value=v[0], ci_low=v[1], ci_high=v[2], higher_is_better=False,
                              slice=etype, description=f"{what} Entities of type {etype}."))
        rows.append({"type": etype, "member entities": int(sel[y == 1].sum()),
                     "non-member entities": int(sel[y == 0].sum()), "templates": len(templates[etype]),
                     "AUC": v[0], "AUC 95% CI": f"{v[1]:.3f} – {v[2]:.3f}",
                     "mean p(tags), members": float(np.exp(s[sel & (y == 1)]).mean()),
                     "mean p(tags), non-members": float(np.exp(s[sel & (y == 0)]).mean())})
    table = Table.from_frame("canary", pd.DataFrame(rows), title="Entity canary test: training-set entities against "
                             "unseen entities in the same templates",
                             shown=("type", "member entities", "non-member entities", "AUC", "AUC 95% CI"))
    limit = float(options["auc_max"])
    findings = []
    if overall[0] > limit:
        severity = "fail" if overall[1] > limit else "warn"
        findings.append(Finding(
            severity=severity,
            title=f"Entity canary: training-set entities are recognised better than unseen ones (AUC {overall[0]:.3f})",
            detail=(f"95% CI {overall[1]:.3f}–{overall[2]:.3f} against the tolerated {limit:g} (option auc_max). "
                    "In the same templates the model is more confident in the tags of entities from its training data "
                    "than in those of entities it never saw: it memorised them, and its confidence reveals which "
                    "names were in the training data (Ali et al. 2023)."),
            evidence={"metric": "canary_auc", "value": overall[0], "ci_low": overall[1], "ci_high": overall[2],
                      "threshold": limit, "kind": "memorisation"}))
    rows_kept = f" (sentences with {column} = {value})" if column else ""
    summary = {"ran": True, "members": len(mem), "nonmembers": len(non), "types": sorted(templates),
               "templates_per_type": {t: len(v) for t, v in templates.items()}, "auc": overall[0],
               "ci": [overall[1], overall[2]], "filter": {"column": column, "value": value} if column else None,
               "statement": (f"Entity canary test{rows_kept}: {len(mem)} training-set entities against {len(non)} "
                             f"entities never tagged in training, each in the same {', '.join(sorted(templates))} "
                             f"templates; AUC {overall[0]:.3f} (95% CI {overall[1]:.3f}–{overall[2]:.3f}, {n_boot} "
                             "stratified bootstrap resamples over entities).")}
    return SectionPart(metrics=metrics, tables=[table], findings=findings, extra={"canary": summary})
