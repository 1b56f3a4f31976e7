"""The tagger as a PII detector: how many of the personal names, places, e-mails and phone numbers
in the data does it find? A missed mention is one a redaction pipeline built on this model leaks.

The model's entity types are mapped to PII types by name (``PII_TYPE_NAMES``: PER/PERSON are
names, LOC/GPE/LOCATION places, EMAIL, PHONE...). For each PII type the model has, recall of the
gold mentions of the eval data (strict spans, type included) with a Wilson interval; and recall of
person names per group, by the sensitive columns of the eval data when given (``--sensitive``),
else on the entity lexicon's names by origin group inserted into ``NAME_TEMPLATES``, since a
detector that misses one group's names more often protects that group less (Mishra, He & Belli
2020, "Assessing Demographic Bias in Named Entity Recognition").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import Finding, Metric, SectionPart, Table

if TYPE_CHECKING:
    from audit.core.context import AuditContext

PII_TYPE_NAMES = {
    "person": ("PER", "PERSON", "PERS", "NAME", "PATIENT", "DOCTOR", "USERNAME"),
    "location": ("LOC", "GPE", "LOCATION", "ADDRESS", "STREET", "CITY", "ZIP", "ZIPCODE"),
    "email": ("EMAIL", "MAIL", "EMAILADDRESS"),
    "phone": ("PHONE", "TEL", "TELEPHONE", "PHONENUMBER", "FAX", "MOBILE"),
    "id": ("ID", "IDNUM", "SSN", "PASSPORT", "IBAN", "ACCOUNT", "CREDITCARD"),
}
# Neutral sentences for the lexicon fallback: a name in each, nothing else an entity. Written for
# this audit, in the register of the NER demo and of the templates Mishra et al. 2020 use.
NAME_TEMPLATES = (
    "My name is {PER} .",
    "{PER} called the office yesterday .",
    "Please forward the invoice to {PER} .",
    "The letter was signed by {PER} .",
)
LEXICON_NAMES = 40  # full names drawn per lexicon group (seeded), each in every template
SKIP_NO_PII_TAGS = "the model's entity types ({types}) include none of the PII types ({known})"
SKIP_NO_MODEL = "no model is loaded"
CONFIDENCE = 0.95


def pii_types(tag_names: Sequence[str]) -> dict[str, str]:
    """The model's entity types that are PII, mapped to their PII type (``{"PER": "person"}``)."""
    from audit.tasks.tagging import OUTSIDE, split_tag

    out = {}
    for tag in tag_names:
        if tag == OUTSIDE:
            continue
        etype = split_tag(tag)[1]
        key = "".join(ch for ch in etype.upper() if ch.isalnum())
        for pii, names in PII_TYPE_NAMES.items():
            if key in names:
                out[etype] = pii
    return out


def span_tags(*, etype: str, length: int, scheme: str) -> list[str]:
    """The tags of one entity of ``length`` words standing alone under ``scheme``."""
    first, middle, last, single = {
        "IOB2": ("B", "I", "I", "B"), "IOB1": ("I", "I", "I", "I"), "IO": ("I", "I", "I", "I"),
        "IOE1": ("I", "I", "I", "I"), "IOE2": ("I", "I", "E", "E"),
        "IOBES": ("B", "I", "E", "S"), "BILOU": ("B", "I", "L", "U")}[scheme]
    if length == 1:
        return [f"{single}-{etype}"]
    return [f"{first}-{etype}"] + [f"{middle}-{etype}"] * (length - 2) + [f"{last}-{etype}"]


def recall_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], *, scheme: str,
                  types: Sequence[str]) -> dict[str, np.ndarray]:
    """Per sentence and per entity type: gold mentions and those the model found exactly (strict
    spans, same type), as an array (sentences x 2)."""
    from audit.tasks.tagging import entity_spans

    out = {t: np.zeros((len(gold), 2), dtype=int) for t in types}
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        found = {(s.type, s.start, s.end) for s in entity_spans(p, scheme=scheme)}
        for s in entity_spans(g, scheme=scheme):
            if s.type in out:
                out[s.type][i] += (1, (s.type, s.start, s.end) in found)
    return out


def _wilson(found: int, total: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    if total == 0:
        return (float("nan"), float("nan"))
    ci = binomtest(found, total).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(ci.low), float(ci.high)


def _recall_metric(name: str, found: int, total: int, *, slice_: str, description: str) -> Metric:
    lo, hi = _wilson(found, total)
    return Metric(name=name, value=found / total if total else float("nan"), ci_low=lo, ci_high=hi,
                  higher_is_better=True, slice=slice_, description=description)


def pii_detector(ctx: AuditContext, *, options: dict[str, Any]) -> SectionPart:
    """Recall of the model on the PII types it tags, overall and for person names per group."""
    import pandas as pd

    from audit.tasks.tagging import split_tag

    if ctx.target is None:
        return SectionPart(extra={"pii_detector": {"ran": False, "reason": SKIP_NO_MODEL}})
    names = list(ctx.target.label_names)
    mapped = pii_types(names)
    if not mapped:
        types = sorted({split_tag(t)[1] for t in names if t != "O"})
        return SectionPart(extra={"pii_detector": {"ran": False, "reason": SKIP_NO_PII_TAGS.format(
            types=", ".join(types), known=", ".join(PII_TYPE_NAMES))}})
    data = ctx.data
    pred = [[names[int(i)] for i in p] for p in ctx.word_predictions.preds]
    counts = recall_counts(data.tags, pred, scheme=data.scheme, types=list(mapped))
    metrics, rows, findings = [], [], []
    minimum = float(options["pii_recall_min"])
    for etype, pii in mapped.items():
        total, found = (int(v) for v in counts[etype].sum(axis=0))
        if total == 0:
            continue
        m = _recall_metric("pii_recall", found, total, slice_=pii, description=(
            f"Share of the gold {etype} mentions ({pii}) of the eval data the model tags exactly; a missed one "
            "is a leak when the model redacts text. Wilson 95% interval."))
        metrics.append(m)
        rows.append({"PII type": pii, "entity type": etype, "group": "all", "mentions": total, "found": found,
                     "missed": total - found, "recall": m.value, "recall 95% CI": f"{m.ci_low:.3f} – {m.ci_high:.3f}"})
        if m.value < minimum:
            findings.append(Finding(
                severity="warn",
                title=f"As a PII detector the model misses {total - found} of {total} {pii} mentions ({etype})",
                detail=(f"Recall {m.value:.3f} (95% CI {m.ci_low:.3f}–{m.ci_high:.3f}) is below pii_recall_min "
                        f"{minimum:g}: text redacted with this model would leak the missed {pii} mentions."),
                evidence={"metric": "pii_recall", "slice": pii, "value": m.value, "threshold": minimum}))
    person = next((t for t, p in mapped.items() if p == "person"), None)
    groups, how = ([], "")
    if person is not None:
        groups, how = _group_recall(ctx, person=person, pred=pred, counts=counts[person])
    for g in groups:
        m = _recall_metric("pii_recall_group", g["found"], g["mentions"], slice_=g["slice"], description=(
            f"Share of the {person} mentions of group {g['group']} ({how}) the model tags exactly; Wilson 95% "
            "interval (Mishra, He & Belli 2020)."))
        metrics.append(m)
        rows.append({"PII type": "person", "entity type": person, "group": g["slice"], "mentions": g["mentions"],
                     "found": g["found"], "missed": g["mentions"] - g["found"], "recall": m.value,
                     "recall 95% CI": f"{m.ci_low:.3f} – {m.ci_high:.3f}"})
    findings += _gap_finding([m for m in metrics if m.name == "pii_recall_group"], how=how)
    table = Table.from_frame("pii_detector", pd.DataFrame(rows), title="The model as a PII detector: recall of "
                             "personal information in the eval data, and of names per group",
                             shown=("PII type", "group", "mentions", "missed", "recall", "recall 95% CI"))
    summary = {"ran": True, "types": mapped, "groups_from": how or None}
    return SectionPart(metrics=metrics, tables=[table], findings=findings, extra={"pii_detector": summary})


def _group_recall(ctx: AuditContext, *, person: str, pred: list[list[str]], counts: np.ndarray
                  ) -> tuple[list[dict[str, Any]], str]:
    """Person recall per group: by each sensitive column of the eval data, else on the lexicon's
    names by origin group in NAME_TEMPLATES (one batched pass)."""
    data = ctx.data
    columns = [c for c in ctx.sensitive if c in data.columns.columns]
    if columns:
        out = []
        for column in columns:
            values = data.columns[column].astype(str).to_numpy()
            for group in sorted(set(values)):
                total, found = (int(v) for v in counts[values == group].sum(axis=0))
                if total:
                    out.append({"group": group, "slice": f"{column}={group}", "mentions": total, "found": found})
        return out, f"sensitive column{'s' if len(columns) > 1 else ''} {', '.join(columns)} of the eval data"
    return _lexicon_recall(ctx, person=person), "the entity lexicon's names by origin group, in name templates"


def _lexicon_recall(ctx: AuditContext, *, person: str) -> list[dict[str, Any]]:
    from audit.selftest.ner_demo import load_lexicon
    from audit.tasks.tagging import entity_spans

    lexicon, scheme = load_lexicon(), ctx.data.scheme
    rng = ctx.rng("privacy.pii_detector.lexicon")
    sentences, tags, group_of = [], [], []
    for group in sorted(lexicon["groups"]):
        entry = lexicon["groups"][group]
        firsts = sorted(entry["first_names"]["female"] + entry["first_names"]["male"])
        lasts = sorted(entry["last_names"])
        for _ in range(LEXICON_NAMES):
            name = f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}".split()
            for template in NAME_TEMPLATES:
                words, marks = [], []
                for w in template.split():
                    words += name if w == "{PER}" else [w]
                    marks += span_tags(etype=person, length=len(name), scheme=scheme) if w == "{PER}" else ["O"]
                sentences.append(words)
                tags.append(marks)
                group_of.append(group)
    names = list(ctx.target.label_names)
    if any(t not in names for s in tags for t in s):
        return []
    probs = ctx.predict_words(sentences, desc="privacy: names by group").probs
    pred = [[names[int(i)] for i in p.argmax(axis=1)] for p in probs]
    def spans(sentence_tags: list[str]) -> set[tuple[str, int, int]]:
        return {(s.type, s.start, s.end) for s in entity_spans(sentence_tags, scheme=scheme) if s.type == person}

    hit = np.array([spans(t) <= spans(p) for t, p in zip(tags, pred, strict=True)])
    groups = np.array(group_of)
    return [{"group": g, "slice": f"lexicon:{g}", "mentions": int((groups == g).sum()),
             "found": int(hit[groups == g].sum())} for g in sorted(lexicon["groups"])]


def _gap_finding(group_metrics: list[Metric], *, how: str) -> list[Finding]:
    """A finding when the groups' recall intervals do not overlap: the detector protects one
    group's names less than another's."""
    usable = [m for m in group_metrics if np.isfinite(m.value)]
    if len(usable) < 2:
        return []
    low, high = min(usable, key=lambda m: m.value), max(usable, key=lambda m: m.value)
    if not low.ci_high < high.ci_low:
        return []
    return [Finding(
        severity="warn",
        title=(f"As a PII detector the model misses names of {low.slice} more often: recall {low.value:.3f} "
               f"against {high.value:.3f} for {high.slice}"),
        detail=(f"Groups by {how}. The 95% Wilson intervals ({low.ci_low:.3f}–{low.ci_high:.3f} and "
                f"{high.ci_low:.3f}–{high.ci_high:.3f}) do not overlap: text redacted with this model leaks this "
                "group's names more (Mishra, He & Belli 2020)."),
        evidence={"metric": "pii_recall_group", "low": low.slice, "high": high.slice, "low_value": low.value,
                  "high_value": high.value, "kind": "pii_recall_gap"})]
