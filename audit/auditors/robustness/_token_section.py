"""The robustness section of a token classifier (NER): invariance under label-preserving
perturbations with span realignment (:mod:`._token_invariance`) and the RockNER-style context
attack with re-verified failures (:mod:`._token_context`), merged in that order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from audit.core.results import AuditorResult, Finding, SectionPart

if TYPE_CHECKING:
    from audit.core.context import AuditContext

_RANK = {"fail": 0, "warn": 1, "info": 2}  # findings worst first


def sample_rows(ctx: AuditContext, n: int) -> np.ndarray:
    """``n`` eval sentences drawn without replacement (all of them when there are fewer), sorted."""
    total = len(ctx.data)
    if n >= total:
        return np.arange(total)
    return np.sort(ctx.rng("robustness.token.sample").choice(total, size=n, replace=False))


def token_robustness(ctx: AuditContext, options: Mapping[str, Any], *, name: str) -> AuditorResult:
    """The token-classification section: the perturbation families of ``token_perturbations`` on
    ``token_sentences`` sentences, then the context attack with ``context_attack_words`` words per
    sentence (0: no attack)."""
    from audit.auditors.robustness._token_invariance import token_invariance
    from audit.auditors.robustness._token_perturb import SwapPool, entity_types
    from audit.selftest.ner_demo import load_lexicon

    rows = sample_rows(ctx, int(options["token_sentences"]))
    timings: dict[str, float] = {}
    start = time.perf_counter()
    pool = SwapPool.from_lexicon(load_lexicon(), types=entity_types(ctx.target.label_names))
    parts = [token_invariance(ctx, rows=rows, kinds=tuple(options["token_perturbations"]), pool=pool,
                              max_f1_drop=float(options["max_token_f1_drop"]),
                              examples_shown=int(options["examples_shown"]))]
    timings["token_invariance"] = time.perf_counter() - start
    status, reason = "ok", ""
    if options["context_attack_words"] and len(rows):
        from audit.auditors.robustness._token_context import NO_WORDNET, context_attack, wordnet_synonyms

        start = time.perf_counter()
        synonyms, stopwords, why = wordnet_synonyms()
        timings["import_textattack"] = time.perf_counter() - start
        if synonyms is None:
            parts.append(SectionPart(findings=[Finding("info", NO_WORDNET.format(why=why))]))
        else:
            start = time.perf_counter()
            out = context_attack(ctx, rows=rows, budget=int(options["context_attack_words"]), synonyms=synonyms,
                                 stopwords=stopwords, max_f1_drop=float(options["max_token_f1_drop"]))
            timings["token_context_attack"] = time.perf_counter() - start
            parts.append(out.part)
            if out.disagreements:
                status, reason = "failed", out.part.findings[0].detail
    part = SectionPart.merge(*parts)
    worst_first = dataclasses.replace(part, findings=sorted(part.findings, key=lambda f: _RANK[f.severity]))
    return worst_first.to_result(auditor=name, status=status, reason=reason, timings=timings)
