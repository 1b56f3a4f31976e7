"""The explainability section of a token classifier (NER): the same questions as for text, asked of
one tag or one entity at a time.

Targets are chosen by :mod:`._token_selection`, explained by :mod:`._token_attribution` (Layer
Integrated Gradients and word-masking occlusion, merged to words), checked by :mod:`._token_checks`
(completeness, faithfulness by masking, cascading randomisation) and shown by :mod:`._token_view`
(heat-mapped sentences with the target marked, the context words that draw the most attribution).
Options of the text path that have no meaning here (``explain_examples``, ``interesting_examples``,
``target_class``, ``n_samples``) are ignored, and so are methods other than ``TOKEN_METHODS``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.auditors.explainability._curation import REASON_ERROR, REASON_SAMPLE, SHOWN_ROWS, annotate
from audit.auditors.explainability._token_attribution import (
    TOKEN_METHODS,
    TokenRow,
    attribute_targets,
    encode_target,
    mask_id,
    mask_token,
)
from audit.auditors.explainability._token_checks import token_faithfulness, token_sanity
from audit.auditors.explainability._token_selection import TagTarget, select_targets
from audit.auditors.explainability._token_view import context_view, heat_rows, targets_table
from audit.core.results import AuditorResult, Metric, SectionPart

if TYPE_CHECKING:
    from collections.abc import Sequence

    from audit.core.context import AuditContext

TOKEN_NOTE = ("Each row explains one predicted entity (the sum over its words) or one word's predicted tag: the "
              "{output} of the tag at the word's first sub-word. Target words are underlined; words are masked "
              "(one {mask} per sub-word), not deleted, in occlusion and the faithfulness check.")
SKIPPED_NOTE = "{n} selected targets were not explained: {reasons}."
IGNORED_NOTE = "Options set but not used for a token classifier: {what}."
IGNORED_METHODS = "methods {methods} (only {supported} explain a tag here, so {used} ran)"
IGNORED_TARGET = "target_class {value!r} (each target is a predicted entity or tag, never a fixed class)"
WINDOWED_NOTE = ("{n} targets lie in sentences longer than the model's {max_length} tokens: each was explained in "
                 "a window of whole words around it (marked 'window'), the words outside it unseen.")


def token_section(ctx: AuditContext, options: Mapping[str, Any], *, name: str,
                  ig_part: Callable[[dict[str, Any]], SectionPart], step_growth: int) -> AuditorResult:
    """The section for a token classifier; ``ig_part`` turns the Integrated Gradients deltas into
    their metrics (the text path's), ``step_growth`` multiplies IG steps for rows over tolerance."""
    o = options
    target = ctx.target
    assert target is not None  # guaranteed by requires={"model"}
    tokenizer, model = target.tokenizer, target.model
    tag_names = list(target.label_names)
    data = ctx.data
    words = ctx.word_predictions
    pred_ids = words.preds
    pred = [[tag_names[k] for k in p] for p in pred_ids]
    chosen = select_targets(gold=data.tags, pred=pred, pred_ids=pred_ids, probs=words.probs, scheme=data.scheme,
                            n_sentences=o["explain_sentences"], rng=ctx.rng("explainability.token_sample"))
    rows: list[TokenRow] = []
    targets: list[TagTarget] = []
    skipped: Counter[str] = Counter()
    for t in chosen:
        row = encode_target(tokenizer, data.tokens[t.sentence], start=t.start, end=t.end, tags=t.tags,
                            max_length=target.max_length)
        if isinstance(row, str):
            skipped[row] += 1
        else:
            rows.append(row)
            targets.append(t)
    methods = [m for m in o["methods"] if m in TOKEN_METHODS] or list(TOKEN_METHODS)
    common = {"pad_id": _pad_id(tokenizer), "mask_id": mask_id(tokenizer), "output": o["output"],
              "max_rows": o["batch_rows"], "max_tokens": o["max_tokens"], "device": target.device}
    token = mask_token(tokenizer)
    notes = [TOKEN_NOTE.format(output=o["output"], mask=token)]
    ignored = _ignored_options(o, used=methods)
    if ignored:
        notes.append(IGNORED_NOTE.format(what="; ".join(ignored)))
    windowed = sum(r.windowed for r in rows)
    if windowed:
        notes.append(WINDOWED_NOTE.format(n=windowed, max_length=target.max_length))
    if skipped:
        notes.append(SKIPPED_NOTE.format(n=sum(skipped.values()),
                                         reasons="; ".join(f"{n} {why}" for why, n in sorted(skipped.items()))))
    head = SectionPart(metrics=[
        Metric("explained_rows", float(len(rows)), description="targets (entities or tagged words) explained"),
        Metric("unexplained_targets", float(sum(skipped.values())), higher_is_better=False,
               description="selected targets that could not be explained (longer than a window, or no sub-word)")])

    timings: dict[str, float] = {}
    word_scores: dict[str, list[np.ndarray]] = {}
    ig_info: dict[str, Any] = {}
    for method in methods if rows else []:
        start = time.perf_counter()
        if method == "integrated_gradients":
            word_scores[method], ig_info = _integrated_gradients(ctx, rows, common, o, step_growth)
        else:
            word_scores[method] = list(attribute_targets(model, rows, method=method, progress=ctx.progress,
                                                         **common).words)
        timings[f"attribute_{method}"] = time.perf_counter() - start

    parts = [ig_part(ig_info)] if ig_info else []
    if o["faithfulness"] and rows:
        start = time.perf_counter()
        parts.append(token_faithfulness(ctx, rows=rows, word_scores=word_scores, token=token))
        timings["faithfulness"] = time.perf_counter() - start
    if o["sanity_check"] and rows and o["sanity_examples"] > 0:
        start = time.perf_counter()

        # IG on the randomised copies at sanity_steps, as the text check (only ranks are compared).
        copy_steps = min(o.get("sanity_steps") or o["n_steps"], o["n_steps"])

        def attribute(m: Any, sub: Sequence[TokenRow], method: str) -> Sequence[np.ndarray]:
            return attribute_targets(m, sub, method=method, n_steps=copy_steps, **common).words

        parts.append(token_sanity(ctx, rows=rows, word_scores=word_scores, attribute=attribute, options=o))
        timings["sanity"] = time.perf_counter() - start
    primary = "integrated_gradients" if "integrated_gradients" in word_scores else methods[0]
    if rows:
        parts.append(context_view(rows=rows, targets=targets, scores=word_scores[primary], method=primary,
                                  top_tokens=o["top_tokens"], min_rows=o["min_word_rows"]))

    heat = heat_rows(rows=rows, targets=targets, gold=data.tags, word_scores=word_scores)
    reasons = [(REASON_ERROR, f"wrong with confidence {t.confidence:.2f}", t.confidence) if t.wrong
               else (REASON_SAMPLE, "a predicted entity of a sampled sentence", float(len(targets) - i))
               for i, t in enumerate(targets)]
    curated = annotate(heat, reasons, shown=SHOWN_ROWS)
    tables = [targets_table(rows=rows, targets=targets, gold=data.tags, word_scores=word_scores, ig_info=ig_info)]
    explained = SectionPart(tables=tables if rows else [], extra={
        "methods": methods, "output": o["output"], "label_names": tag_names, "explained": heat,
        "curated_rows": curated, "primary_method": primary, "task_notes": notes})
    return SectionPart.merge(head, explained, *parts).to_result(auditor=name, timings=timings)


def _ignored_options(o: Mapping[str, Any], *, used: Sequence[str]) -> list[str]:
    """The options a user set that the token path cannot honour, each as a short phrase: without a
    note, ``methods: [lime]`` or ``target_class: B-PER`` would be dropped in silence. The default
    method list (which holds ``saliency``) is not reported: it was not the user's choice."""
    from audit.auditors.explainability._auditor import DEFAULT_METHODS

    out = []
    dropped = [m for m in o["methods"] if m not in TOKEN_METHODS]
    if dropped and tuple(o["methods"]) != tuple(DEFAULT_METHODS):
        out.append(IGNORED_METHODS.format(methods=", ".join(dropped), supported=" and ".join(TOKEN_METHODS),
                                          used=", ".join(used)))
    if o.get("target_class") is not None:
        out.append(IGNORED_TARGET.format(value=o["target_class"]))
    return out


def _integrated_gradients(ctx: AuditContext, rows: Sequence[TokenRow], common: dict[str, Any],
                          o: Mapping[str, Any], step_growth: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """IG for every row; rows whose |delta| exceeds ``ig_tolerance`` are recomputed with
    ``step_growth`` times more steps until they pass or ``ig_max_steps`` is reached (as for text)."""
    from audit.auditors.explainability._attribution import until_converged

    model = ctx.target.model  # type: ignore[union-attr]

    def run(idx: list[int], n_steps: int) -> tuple[list[np.ndarray], Any]:
        out = attribute_targets(model, [rows[i] for i in idx], method="integrated_gradients", n_steps=n_steps,
                                progress=ctx.progress, **common)
        return out.words, out.deltas

    return until_converged(run, len(rows), n_steps=o["n_steps"], tolerance=o["ig_tolerance"],
                           max_steps=o["ig_max_steps"], growth=step_growth)


def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0
