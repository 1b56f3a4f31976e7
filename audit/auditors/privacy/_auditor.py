"""Privacy: does the model give away who was in its training data, and does the data hold
personal information?

Two independent parts. The PII scan always runs, on every text column of the eval data and of
the training data when given (validated detectors, masked examples only; see
:mod:`audit.auditors.privacy._pii`). Membership inference needs members (``--train-data``) and non-members: rows
held out from the training distribution (``--holdout-data``, recommended) or else the eval rows
that are not also training rows. A balanced, seeded sample of each is scored with the
output-only attacks of :mod:`audit.auditors.privacy._membership` and, when reference models are given or trained,
the reference-calibrated attack (LiRA, Carlini et al. 2022). Without members that part is
reported as not run, with the reason, and the section stays ``ok``.

Members and non-members that differ in distribution (length, source, period, style) are told
apart by any attack without any memorisation. So blind baselines that never query the model
always run (:mod:`audit.auditors.privacy._blind_baselines`; Das, Zhang & Tramèr 2024), the leakage finding judges
the attack's margin over the best of them (paired bootstrap), not its raw AUC, and the attacks are
re-scored on members and non-members matched on length bins x label.

On a token classifier (NER) the same assembly runs on one score per sentence from its words'
losses (:mod:`audit.auditors.privacy._token_membership`, reference taggers in
:mod:`audit.auditors.privacy._token_reference`), and two more parts join: the entity canary test
(:mod:`audit.auditors.privacy._token_canary`) and the model as a PII detector
(:mod:`audit.auditors.privacy._token_pii`); the PII scan reads the sentences' words.

A failed attack is not a privacy guarantee: these attacks lower-bound what an adversary can do;
only a differentially private training procedure bounds it from above.

Each of the two parts returns a :class:`~audit.core.results.SectionPart` (``_membership``,
``_pii``), merged in ``_run``; the reference models of the LiRA attack are loaded or trained in
:mod:`audit.auditors.privacy._reference`.

Over 400 lines: the membership part assembles many numbers (attacks x blind baselines x raw,
margin and matched) into metrics, findings, a table and the verdict sentences, and splitting
that assembly would scatter one verdict over several files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.core.options import Option
from audit.core.results import AuditorResult, Figure, Finding, Metric, SectionPart, Table
from audit.tasks import SEQUENCE, TOKEN

if TYPE_CHECKING:
    from audit.auditors.privacy._blind_baselines import BlindFeatures
    from audit.core.context import AuditContext

SKIP_NO_MODEL = "no model is loaded, so no membership-inference attack could run"
SKIP_NO_TRAIN = ("no training data was given (--train-data), so there are no known members to attack; "
                 "membership inference was not tested")
SKIP_MULTI_LABEL = "membership-inference attacks are implemented for single-label classifiers only"
SKIP_TOO_FEW = "only {n} member/non-member pairs are available (at least {need} needed)"
PII_OFF = "the PII scan was turned off (option pii: false)"
SKIP_MATCHED_FEW = "matching kept only {k} member/non-member pairs (at least {need} needed)"

FPR_LEVELS = {"1pct": 0.01, "0_1pct": 0.001}
MIN_PAIRS = 20
CHANCE = {"mia_auc": 0.5, "mia_tpr_at_1pct_fpr": FPR_LEVELS["1pct"]}  # a guess that ignores the row
BLIND_STATS = ("mia_auc", "mia_tpr_at_1pct_fpr", "mia_tpr_at_0_1pct_fpr")
ATTACK_LABELS = {
    "loss": "loss threshold (Yeom et al. 2018)",
    "confidence": "max confidence (Salem et al. 2019)",
    "entropy": "prediction entropy (Salem et al. 2019)",
    "modified_entropy": "modified entropy (Song & Mittal 2021)",
    "loss_min": "worst word's loss in the sentence (token task; Yeom et al. 2018 per word)",
    "reference": "reference-calibrated, LiRA (Carlini et al. 2022)",
}
METRIC_DESCRIPTIONS = {
    "mia_auc": "Area under the attack's ROC curve; 0.5 is chance (Carlini et al. 2022).",
    "mia_advantage": "Membership advantage max(TPR - FPR) over thresholds (Yeom et al. 2018).",
    "mia_balanced_accuracy": "Balanced accuracy of the best threshold, (1 + advantage) / 2 (Yeom et al. 2018).",
    "mia_tpr_at_1pct_fpr": "True-positive rate at a false-positive rate of at most 1% (Carlini et al. 2022).",
    "mia_tpr_at_0_1pct_fpr": "True-positive rate at a false-positive rate of at most 0.1% (Carlini et al. 2022).",
    "mia_blind_auc": ("AUC of a blind baseline that sees only the text and label, never the model (Das, Zhang & "
                      "Tramèr 2024); above 0.5, members and non-members differ without the model."),
    "mia_blind_tpr_at_1pct_fpr": "TPR at 1% FPR of a blind baseline (text and label only, no model).",
    "mia_blind_tpr_at_0_1pct_fpr": "TPR at 0.1% FPR of a blind baseline (text and label only, no model).",
    "mia_auc_margin": ("Attack AUC minus the best blind baseline's AUC (0.5 if none beats chance), paired bootstrap "
                       "over the same rows: the part of the attack's success that needs the model (Das, Zhang & "
                       "Tramèr 2024)."),
    "mia_tpr_at_1pct_fpr_margin": ("Attack TPR at 1% FPR minus the best blind baseline's (0.01 if none beats "
                                   "chance), paired bootstrap over the same rows."),
    "mia_leakage_margin": ("The margin the leakage verdict judges: the strongest attack's AUC over the best blind "
                           "baseline on all rows, or, when the full sets differ without the model, on rows matched "
                           "on length x label. Absent when even the matched rows differ: leakage cannot be judged."),
    "mia_auc_matched": ("Attack AUC on members and non-members matched on length bins x label (seeded subsampling "
                        "per cell to equal counts)."),
    "mia_blind_auc_matched": ("Blind baseline AUC refitted on the matched rows: near 0.5 when matching removed "
                              "what the blind features see."),
    "mia_matched_rows": "Rows the matched comparison kept, members and non-members in equal numbers.",
}


class PrivacyAuditor(Auditor):
    """Membership-inference attacks (reported as Carlini et al. 2022 ask) and a masked PII scan."""

    name = "privacy"
    title = "Privacy"
    description = ("Membership inference (loss, confidence, entropy, modified entropy, reference-calibrated "
                   "attacks; ROC on log-log axes, AUC, TPR at 0.1% and 1% FPR) judged against blind baselines "
                   "that never query the model, and a validated PII scan.")
    requires: ClassVar[frozenset[str]] = frozenset()
    template = "section.html.j2"
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE, TOKEN})
    metric_names: ClassVar[frozenset[str]] = frozenset({*METRIC_DESCRIPTIONS, "pii_rows", "pii_matches",
                                                        "canary_auc", "pii_recall", "pii_recall_group"})
    params: ClassVar[dict[str, Option]] = {
        "mia_examples": Option(kind="int", min=1, default=1000, help="members and non-members each"),
        "n_bootstrap": Option(kind="int", min=1, max=1_000_000, default=1000, help="bootstrap resamples"),
        # An attack whose margin over the best blind baseline exceeds (this - chance) is a finding;
        # with a blind baseline at chance that is the raw rule "AUC above 0.6".
        "auc_max": Option(kind="float", min=0, max=1, default=0.6,
                          help="attack AUC (over chance, beyond the best blind baseline) that is a finding"),
        "tpr_at_1pct_fpr_max": Option(kind="float", min=0, max=1, default=0.05,
                                      help="the same for TPR at 1% FPR (chance: 0.01)"),
        # Cross-fitted baselines on two samples of one distribution stay within about 0.5 +- 0.05
        # at a few hundred rows per side (0.57 on the demo).
        "blind_auc_max": Option(kind="float", min=0, max=1, default=0.6,
                                help="a blind baseline whose interval lies above this: sets differ without the model"),
        "match_bins": Option(kind="int", min=1, max=1000, default=10,
                             help="quantile bins of length in tokens for the matched comparison"),
        "reference_models": Option(kind="str_list", default=(), must_exist="dir",
                                   help="model folders trained WITHOUT the members (offline LiRA)"),
        "train_reference": Option(kind="int", min=0, max=64, default=0, help="reference models trained here"),
        "reference_epochs": Option(kind="int", min=1, max=1000, default=10, help="epochs per reference model"),
        "pii": Option(kind="bool", default=True, help="run the PII scan"),
        "pii_columns": Option(kind="str_list", nullable=True, column=True,
                              help="text columns to scan (default: every string column)"),
        "pii_examples": Option(kind="int", min=0, default=3, help="masked examples per PII type and dataset"),
        # Token classifiers (audit.auditors.privacy._token_*):
        "token_reference": Option(kind="int", min=0, max=64, default=2,
                                  help="token task: reference taggers trained here on halves of the attack sample"),
        "canary_column": Option(kind="str", nullable=True,
                                help="token task: entity canary test only on sentences whose column has canary_value"),
        "canary_value": Option(kind="str", nullable=True, help="token task: the value of canary_column to keep"),
        "canary_types": Option(kind="str_list", nullable=True,
                               help="token task: entity types of the canary test (default: every type)"),
        "canary_examples": Option(kind="int", min=1, default=500, help="token task: canary entities per side and type"),
        "canary_templates": Option(kind="int", min=1, max=100, default=8,
                                   help="token task: templates each canary entity is inserted into"),
        "pii_recall_min": Option(kind="float", min=0, max=1, default=0.9,
                                 help="token task: recall of a PII type below this is a finding"),
    }

    # ------------------------------------------------------------------------------------ run

    def _run(self, ctx: AuditContext) -> AuditorResult:
        membership = self._membership(ctx)
        pii = self._pii(ctx) if self.options["pii"] else SectionPart(extra={"pii": {"ran": False, "reason": PII_OFF}})
        tested, not_tested = _scope(membership.extra["membership"], self.options["pii"])
        parts = [membership, pii, SectionPart(extra={"tested": tested, "not_tested": not_tested})]
        if ctx.task == TOKEN:
            from audit.auditors.privacy._token import token_parts

            parts.append(token_parts(ctx, options=self.options))  # its tested/not_tested lines join these
        return SectionPart.merge(*parts).to_result(auditor=self.name)

    # --------------------------------------------------------------------- membership inference

    def membership_scores(self, ctx: AuditContext) -> _Scores:
        """The attack sample and every attack's scores (members first, then non-members): the
        model-based attacks in ``scores``, the blind baselines (no model) in ``blind``."""
        if ctx.task == TOKEN:
            from audit.auditors.privacy._token_membership import token_membership_scores

            return token_membership_scores(ctx, options=self.options)
        if ctx.target is None:
            return _Scores(skip=SKIP_NO_MODEL)
        if ctx.train is None or len(ctx.train) == 0:
            return _Scores(skip=SKIP_NO_TRAIN)
        if ctx.target.multi_label:
            return _Scores(skip=SKIP_MULTI_LABEL)
        # Non-members: held-out rows of the training distribution when given (the recommended
        # input), else the eval rows, which may come from another distribution.
        from_holdout = ctx.holdout is not None and len(ctx.holdout) > 0
        train, data = ctx.train, (ctx.holdout if from_holdout else ctx.data)
        # A text in both files is ambiguous; leave it out of BOTH sides. Dropping it from the
        # non-members only would skew them toward rare texts and fake a signal on a clean model.
        train_keys = list(zip(train.texts, train.pairs or [None] * len(train), strict=True))
        eval_keys = list(zip(data.texts, data.pairs or [None] * len(data), strict=True))
        shared = set(train_keys) & set(eval_keys)
        mem_pool = np.array([i for i, k in enumerate(train_keys) if k not in shared], dtype=int)
        non_pool = np.array([i for i, k in enumerate(eval_keys) if k not in shared], dtype=int)
        overlap = {"train_rows": len(train) - len(mem_pool), "eval_rows": len(data) - len(non_pool)}
        n = min(int(self.options["mia_examples"]), len(mem_pool), len(non_pool))
        if n < MIN_PAIRS:
            why = SKIP_TOO_FEW.format(n=n, need=MIN_PAIRS)
            if len(non_pool) < MIN_PAIRS <= len(data):
                which = "held-out" if from_holdout else "eval"
                why += (f": {overlap['eval_rows']} of the {len(data)} {which} rows are also training rows, and a "
                        "row in both files is no evidence either way")
            return _Scores(skip=why)
        rng = ctx.rng("privacy.membership")
        mem = np.sort(rng.choice(mem_pool, size=n, replace=False))
        non = np.sort(rng.choice(non_pool, size=n, replace=False))
        texts = [train.texts[i] for i in mem] + [data.texts[i] for i in non]
        pairs = None
        if train.pairs is not None or data.pairs is not None:
            train_pairs, eval_pairs = train.pairs or [""] * len(train), data.pairs or [""] * len(data)
            pairs = [train_pairs[i] for i in mem] + [eval_pairs[i] for i in non]
        member_pairs = pairs[:n] if pairs is not None else None
        member_logits = ctx.predict(texts[:n], member_pairs, desc="privacy: score members").logits
        if from_holdout or (data.pairs is None and train.pairs is not None):
            # Held-out rows are not in the shared pass; eval rows scored there without pairs are
            # scored again the same way as members.
            non_logits = ctx.predict(texts[n:], None if pairs is None else pairs[n:],
                                     desc="privacy: score non-members").logits
        else:
            non_logits = ctx.predictions.logits[non]
        logits = np.vstack([member_logits, non_logits]).astype(np.float64)
        labels = None
        if train.labels is not None and data.labels is not None and np.ndim(train.labels) == 1:
            labels = np.r_[np.asarray(train.labels)[mem], np.asarray(data.labels)[non]].astype(int)
        from audit.auditors.privacy._blind_baselines import blind_features, blind_scores
        from audit.auditors.privacy._membership import attack_scores
        from audit.auditors.privacy._reference import reference_attack

        scores = attack_scores(logits, labels)
        y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
        features = blind_features(texts=texts, pairs=pairs, labels=labels, tokenizer=ctx.target.tokenizer)
        blind = blind_scores(features, y, seed=ctx.seed_for("privacy.blind"))
        ref = reference_attack(ctx, options=self.options, texts=texts, pairs=pairs, logits=logits, labels=labels)
        if ref.score is not None:
            scores = {**scores, "reference": ref.score}
        return _Scores(y=y, scores=scores, blind=blind, features=features, n=n, members=mem, nonmembers=non,
                       overlap=overlap, labelled=labels is not None, reference=dict(ref.info),
                       members_available=len(mem_pool), nonmembers_available=len(non_pool),
                       nonmembers_from="holdout" if from_holdout else "eval",
                       nonmember_source=Path(str(data.source)).name)

    def _membership(self, ctx: AuditContext) -> SectionPart:
        """Membership inference: every attack and blind baseline with bootstrap intervals, the
        matched comparison, the leakage findings and the verdict sentences, its table and ROC
        chart; ``extra["membership"]`` holds the summary (or why it did not run)."""
        from audit.auditors.privacy._blind_baselines import BLIND_LABELS
        from audit.auditors.privacy._membership import min_nonmembers

        sc = self.membership_scores(ctx)
        if sc.skip:
            return SectionPart(extra={"membership": {"ran": False, "reason": sc.skip}})
        y, n = sc.y, sc.n
        n_boot = int(self.options["n_bootstrap"])
        boot = _bootstrap(y, sc.scores, sc.blind, n_resamples=n_boot, seed=ctx.seed_for("privacy.bootstrap"))
        per_attack, per_blind = boot.attacks, {b: {k: boot.blind[b][k] for k in BLIND_STATS} for b in boot.blind}
        best_auc, best_tpr = boot.best_auc, boot.best_tpr
        margins, tpr_margins = boot.auc_margins, boot.tpr_margins
        matched = self._matched(ctx, sc)

        # Headline: the strongest attack for each number (the adversary picks the best one).
        strongest = {
            "mia_auc": max(per_attack, key=lambda a: (per_attack[a]["mia_auc"][0], a)),
            "mia_tpr_at_1pct_fpr": max(per_attack, key=lambda a: (per_attack[a]["mia_tpr_at_1pct_fpr"][0],
                                                                  per_attack[a]["mia_auc"][0])),
            "mia_auc_margin": max(margins, key=lambda a: (margins[a][0], per_attack[a]["mia_auc"][0])),
            "mia_tpr_at_1pct_fpr_margin": max(tpr_margins, key=lambda a: (tpr_margins[a][0],
                                                                          per_attack[a]["mia_auc"][0])),
        }
        head = [
            _metric("mia_auc", per_attack[strongest["mia_auc"]]["mia_auc"],
                    f"Strongest attack: {ATTACK_LABELS[strongest['mia_auc']]}."),
            _metric("mia_tpr_at_1pct_fpr", per_attack[strongest["mia_tpr_at_1pct_fpr"]]["mia_tpr_at_1pct_fpr"],
                    f"Strongest attack: {ATTACK_LABELS[strongest['mia_tpr_at_1pct_fpr']]}."),
            _metric("mia_blind_auc", per_blind[best_auc]["mia_auc"], f"Best blind baseline: {BLIND_LABELS[best_auc]}.",
                    higher_is_better=None),
            _metric("mia_blind_tpr_at_1pct_fpr", per_blind[best_tpr]["mia_tpr_at_1pct_fpr"],
                    f"Best blind baseline: {BLIND_LABELS[best_tpr]}.", higher_is_better=None),
            _metric("mia_auc_margin", margins[strongest["mia_auc_margin"]],
                    f"Strongest attack: {ATTACK_LABELS[strongest['mia_auc_margin']]}; best blind baseline: "
                    f"{BLIND_LABELS[best_auc]}."),
            _metric("mia_tpr_at_1pct_fpr_margin", tpr_margins[strongest["mia_tpr_at_1pct_fpr_margin"]],
                    f"Strongest attack: {ATTACK_LABELS[strongest['mia_tpr_at_1pct_fpr_margin']]}; best blind "
                    f"baseline: {BLIND_LABELS[best_tpr]}."),
        ]
        if matched.ran:
            strongest["mia_auc_matched"] = max(matched.attacks, key=lambda a: (matched.attacks[a][0], a))
            best_matched_blind = max(matched.blind, key=lambda b: matched.blind[b][0])
            head += [
                _metric("mia_auc_matched", matched.attacks[strongest["mia_auc_matched"]],
                        f"Strongest attack: {ATTACK_LABELS[strongest['mia_auc_matched']]}."),
                _metric("mia_blind_auc_matched", matched.blind[best_matched_blind],
                        f"Best blind baseline: {BLIND_LABELS[best_matched_blind]}.", higher_is_better=None),
            ]
        head.append(Metric(name="mia_matched_rows", value=float(2 * matched.kept), higher_is_better=None,
                           description=f"{METRIC_DESCRIPTIONS['mia_matched_rows']} Out of {2 * n}."))

        metrics = list(head)
        for attack, vals in per_attack.items():
            for name, v in vals.items():
                metrics.append(_metric(name, v, f"Attack: {ATTACK_LABELS[attack]}.", slice_=attack))
            about = f"Attack: {ATTACK_LABELS[attack]}."
            metrics.append(_metric("mia_auc_margin", margins[attack], about, slice_=attack))
            metrics.append(_metric("mia_tpr_at_1pct_fpr_margin", tpr_margins[attack], about, slice_=attack))
            if matched.ran:
                metrics.append(_metric("mia_auc_matched", matched.attacks[attack], f"Attack: {ATTACK_LABELS[attack]}.",
                                       slice_=attack))
        for blind, vals in per_blind.items():
            for name in BLIND_STATS:
                metrics.append(_metric(name.replace("mia_", "mia_blind_", 1), vals[name],
                                       f"Blind baseline: {BLIND_LABELS[blind]}.", slice_=blind, higher_is_better=None))
            if matched.ran:
                metrics.append(_metric("mia_blind_auc_matched", matched.blind[blind],
                                       f"Blind baseline: {BLIND_LABELS[blind]}.", slice_=blind, higher_is_better=None))

        limit = float(self.options["blind_auc_max"])
        distinguishable = bool(per_blind[best_auc]["mia_auc"][1] > limit)
        matched_usable = matched.ran and not matched.blind[matched.best_blind][1] > limit
        findings = self._blind_findings(sc, per_blind[best_auc]["mia_auc"], best_auc)
        if not distinguishable:
            findings += self._leak_findings(per_attack, per_blind, margins=margins, tpr_margins=tpr_margins,
                                            best_auc=best_auc, best_tpr=best_tpr)
        if matched_usable and not any(f.evidence.get("metric") == "mia_auc_margin" for f in findings):
            findings += self._leak_findings({a: {"mia_auc": v} for a, v in matched.attacks.items()},
                                            {b: {"mia_auc": v} for b, v in matched.blind.items()},
                                            margins=matched.margins, tpr_margins={}, best_auc=matched.best_blind,
                                            best_tpr="", matched=True)
        judged = _judged_margin(margins, matched, distinguishable=distinguishable, matched_usable=matched_usable)
        if judged is not None:
            metrics.insert(len(head), _metric("mia_leakage_margin", judged[1], judged[0]))
        need = min_nonmembers(FPR_LEVELS["0_1pct"])
        if n < need:
            findings.append(Finding(
                severity="info",
                title=f"Too few non-members ({n}) to estimate TPR at 0.1% FPR",
                detail=(f"TPR at a false-positive rate α needs at least 1/α non-members ({need} for 0.1%): with {n}, "
                        f"the smallest non-zero FPR is 1/{n} = {1 / n:.2%}, so the reported 'TPR at 0.1% FPR' is the "
                        "TPR at zero false positives. Give more rows (mia_examples, larger eval/train files)."),
                evidence={"nonmembers": n, "needed": need}))

        statements = _statements(sc, per_attack=per_attack, per_blind=per_blind, margins=margins, matched=matched,
                                 strongest=strongest, best_auc=best_auc, distinguishable=distinguishable,
                                 blind_limit=limit)
        summary = {
            "ran": True, "members": n, "nonmembers": n, "members_available": sc.members_available,
            "nonmembers_available": sc.nonmembers_available, "rows_in_both_files": sc.overlap,
            "nonmembers_from": sc.nonmembers_from, "nonmember_source": sc.nonmember_source,
            "attacks": list(sc.scores), "blind_baselines": list(sc.blind), "labelled": sc.labelled,
            "strongest": strongest, "best_blind": {"mia_auc": best_auc, "mia_tpr_at_1pct_fpr": best_tpr},
            "distinguishable_without_model": distinguishable, "matched": matched.summary,
            "statements": statements, "reference": sc.reference, "bootstrap_resamples": n_boot,
            "tpr_at_0_1pct_fpr_rule": f"needs >= {need} non-members (1/FPR); had {n}",
        }
        return SectionPart(metrics=metrics, tables=[_attack_table(per_attack, per_blind, margins, matched)],
                           figures=[_roc_figure(sc)], findings=findings, extra={"membership": summary})

    def _matched(self, ctx: AuditContext, sc: _Scores) -> _Matched:
        """Every attack, and the blind baselines refitted, on members and non-members matched on
        length bins x label (:func:`audit.auditors.privacy._blind_baselines.match_rows`)."""
        from audit.auditors.privacy._blind_baselines import blind_scores, match_rows

        match = match_rows(sc.features, sc.y, rng=ctx.rng("privacy.matching"), n_bins=int(self.options["match_bins"]))
        k = len(match.kept) // 2
        on = "length in tokens (quantile bins)" + (" x label" if sc.features.labels is not None else "")
        summary: dict[str, Any] = {"on": on, "bins": match.bins, "cells": match.cells, "members_kept": k,
                                   "nonmembers_kept": k, "members": sc.n, "nonmembers": sc.n}
        if k < MIN_PAIRS:
            summary.update(ran=False, reason=SKIP_MATCHED_FEW.format(k=k, need=MIN_PAIRS))
            return _Matched(summary=summary, kept=k)
        kept = match.kept
        ym = sc.y[kept]
        refit = blind_scores(sc.features.subset(kept), ym, seed=ctx.seed_for("privacy.blind.matched"))
        boot = _bootstrap(ym, {a: s[kept] for a, s in sc.scores.items()}, refit,
                          n_resamples=int(self.options["n_bootstrap"]), seed=ctx.seed_for("privacy.bootstrap.matched"))
        summary["ran"] = True
        return _Matched(summary=summary, kept=k, attacks={a: v["mia_auc"] for a, v in boot.attacks.items()},
                        blind={b: v["mia_auc"] for b, v in boot.blind.items()}, margins=boot.auc_margins,
                        best_blind=boot.best_auc)

    def _blind_findings(self, sc: _Scores, blind_auc: tuple[float, float, float], best: str) -> list[Finding]:
        """Members and non-members told apart without the model: the attack's AUC then measures
        that difference, not memorisation (Das, Zhang & Tramèr 2024)."""
        from audit.auditors.privacy._blind_baselines import BLIND_LABELS

        limit = float(self.options["blind_auc_max"])
        v, lo, hi = blind_auc
        if not v > limit:
            return []
        where = ("held-out rows" if sc.nonmembers_from == "holdout" else "eval rows")
        fix = ("Check that the held-out rows really come from the training distribution."
               if sc.nonmembers_from == "holdout"
               else "Give --holdout-data: rows from the training distribution that the model never saw.")
        if lo > limit:
            return [Finding(
                severity="warn", title=_distinguishable_text(v, lo, hi, best),
                detail=(f"The best blind baseline ({BLIND_LABELS[best]}) separates the training rows from the {where} "
                        f"used as non-members with AUC {v:.3f} (95% CI {lo:.3f}–{hi:.3f}, above {limit:g}), without "
                        "ever querying the model, so the two sets differ in distribution. Read the margin over this "
                        f"baseline and the matched comparison instead of the raw AUC. {fix}"),
                evidence={"metric": "mia_blind_auc", "baseline": best, "value": v, "ci_low": lo, "ci_high": hi,
                          "threshold": limit, "kind": "distribution_shift"})]
        return [Finding(
            severity="info",
            title=f"Members and non-members may differ without the model: blind AUC {v:.3f} ({BLIND_LABELS[best]})",
            detail=(f"95% CI {lo:.3f}–{hi:.3f} reaches below {limit:g}, so the difference may be sampling noise. "
                    f"Read the margin over this baseline rather than the raw AUC. {fix}"),
            evidence={"metric": "mia_blind_auc", "baseline": best, "value": v, "ci_low": lo, "ci_high": hi,
                      "threshold": limit, "kind": "distribution_shift"})]

    def _leak_findings(self, per_attack: dict[str, dict[str, tuple[float, float, float]]],
                       per_blind: dict[str, dict[str, tuple[float, float, float]]], *,
                       margins: dict[str, tuple[float, float, float]],
                       tpr_margins: dict[str, tuple[float, float, float]],
                       best_auc: str, best_tpr: str, matched: bool = False) -> list[Finding]:
        """One finding per policy number, for the attack whose margin over the best blind baseline
        exceeds it most: ``fail`` when the margin's whole CI lies above the tolerated margin,
        ``warn`` when only its point estimate does. The tolerated margin is the policy level minus
        chance (``auc_max - 0.5``, ``tpr_at_1pct_fpr_max - 0.01``), so with a blind baseline at
        chance the rule is the raw one. With ``matched`` the numbers are those of the matched
        comparison (rows matched on length x label, blind baselines refitted there): used when the
        full sets differ without the model, where only AUC is judged."""
        from audit.auditors.privacy._blind_baselines import BLIND_LABELS

        where = " on rows matched on length x label" if matched else ""

        out = []
        for name, option, label, margin, best in (
                ("mia_auc", "auc_max", "AUC", margins, best_auc),
                ("mia_tpr_at_1pct_fpr", "tpr_at_1pct_fpr_max", "TPR at 1% FPR", tpr_margins, best_tpr)):
            level, chance = float(self.options[option]), CHANCE[name]
            limit = level - chance
            over = {a: m for a, m in margin.items() if m[0] > limit}
            if not over:
                continue
            attack = max(over, key=lambda a: (over[a][1], over[a][0]))
            v, lo, hi = over[attack]
            raw, blind = per_attack[attack][name][0], per_blind[best][name][0]
            severity = "fail" if lo > limit else "warn"
            out.append(Finding(
                severity=severity,
                title=(f"Membership inference{where}: {label} {raw:.3f} beats the best blind baseline "
                       f"({max(blind, chance):.3f}) by {v:.3f}, above {limit:g} ({ATTACK_LABELS[attack]})"),
                detail=(("The two full sets differ without the model, so the verdict is taken on the matched rows, "
                         "where the blind baselines are near chance. " if matched else "")
                        + f"Margin 95% CI {lo:.3f}–{hi:.3f} (paired bootstrap over the same rows); tolerated margin "
                        f"{limit:g} = {option} {level:g} minus chance {chance:g}; best blind baseline: "
                        f"{BLIND_LABELS[best]}. " + (
                            "The whole interval lies above it: the model leaks membership of its training rows beyond "
                            "what the text alone reveals." if severity == "fail" else
                            "The interval reaches below it, so the excess may be sampling noise.")
                        + f" Attacks over it: {', '.join(sorted(over))}."),
                evidence={"metric": f"{name}_margin", "attack": attack, "value": v, "ci_low": lo, "ci_high": hi,
                          "threshold": limit, "raw": raw, "blind": blind, "blind_baseline": best, "kind": "leakage",
                          "rows": "matched" if matched else "all"}))
        return out

    # ---------------------------------------------------------------------------------- PII

    def _pii(self, ctx: AuditContext) -> SectionPart:
        """The validated PII scan of the eval (and training) data: counts per type, a table with
        masked examples only, a finding per dataset with matches; ``extra["pii"]`` the summary."""
        import pandas as pd

        from audit.auditors.privacy._pii import PII_TYPES, scan_columns
        from audit.auditors.privacy._token import scan_frame

        sets = [("eval", ctx.data)] + ([("train", ctx.train)] if ctx.train is not None else [])
        rows, metrics, findings, summary = [], [], [], {"ran": True, "datasets": {}}
        for split, es in sets:
            frame = scan_frame(es)
            columns = self._pii_columns(frame)
            counts = scan_columns({c: frame[c].tolist() for c in columns},
                                  max_examples=int(self.options["pii_examples"]),
                                  progress=lambda items, total, split=split: ctx.progress(
                                      items, total=total, desc=f"privacy: PII scan ({split})"))
            any_rows = set().union(*(c.rows for c in counts.values()))
            summary["datasets"][split] = {"rows": len(frame), "columns_scanned": columns,
                                          "rows_with_pii": len(any_rows)}
            metrics.append(Metric(name="pii_rows", value=float(len(any_rows)), higher_is_better=False, slice=split,
                                  description=f"Rows of the {split} data with at least one validated PII match."))
            for pii_type in PII_TYPES:
                c = counts[pii_type]
                metrics.append(Metric(name="pii_matches", value=float(c.matches), higher_is_better=False,
                                      slice=f"{split}/{pii_type}",
                                      description=f"Validated {pii_type} matches in the {split} data."))
                rows.append({"data": split, "type": pii_type, "matches": c.matches, "rows": len(c.rows),
                             "columns": ", ".join(sorted(c.columns)), "masked examples": "; ".join(c.examples)})
            found = {t: counts[t].matches for t in PII_TYPES if counts[t].matches}
            if found:
                kinds = ", ".join(f"{t} ({k})" for t, k in found.items())
                findings.append(Finding(
                    severity="warn" if split == "train" else "info",
                    title=f"Personal information in the {split} data: {len(any_rows)} rows",
                    detail=(f"Validated matches: {kinds}. "
                            + ("A model can memorise training text; remove or pseudonymise these values before "
                               "training." if split == "train" else "Evaluation data with PII needs the same care "
                               "as training data when it is stored or shared.")),
                    evidence={"rows": len(any_rows), "matches": found}))
        table = Table.from_frame("pii", pd.DataFrame(rows), title="Validated PII matches (masked examples only)")
        return SectionPart(metrics=metrics, tables=[table], findings=findings, extra={"pii": summary})

    def _pii_columns(self, frame: Any) -> list[str]:
        wanted = self.options["pii_columns"]
        if wanted is not None:
            return [c for c in wanted if c in frame.columns]
        return [str(c) for c in frame.columns
                if frame[c].dtype == object or str(frame[c].dtype).startswith(("string", "str"))]


# ------------------------------------------------------------------------------------- helpers

@dataclass(frozen=True, kw_only=True, eq=False)
class _Scores:
    """Attack sample: membership labels ``y`` (members first), each model-based attack's scores,
    each blind baseline's cross-fitted scores, and what the blind baselines saw; or only ``skip``,
    why there is no sample."""

    skip: str = ""
    y: Any = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    blind: dict[str, np.ndarray] = field(default_factory=dict)
    features: BlindFeatures | None = None
    n: int = 0
    # Row indices into ctx.train, and into ctx.holdout or ctx.data (see nonmembers_from).
    members: Any = None
    nonmembers: Any = None
    overlap: dict[str, int] = field(default_factory=dict)
    labelled: bool = False
    reference: dict[str, Any] = field(default_factory=dict)
    members_available: int = 0
    nonmembers_available: int = 0
    nonmembers_from: str = "eval"
    nonmember_source: str = ""


@dataclass(frozen=True, kw_only=True)
class _Matched:
    """The matched comparison: AUC (value, ci_low, ci_high) per attack and per refitted blind
    baseline on the kept rows; ``kept`` members (and as many non-members)."""

    summary: dict[str, Any]
    kept: int
    attacks: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    blind: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    margins: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # over the best matched blind
    best_blind: str = ""

    @property
    def ran(self) -> bool:
        return bool(self.summary.get("ran"))


def _ci(v: tuple[float, float, float]) -> str:
    return "–" if not np.isfinite(v[1]) else f"{v[1]:.3f} – {v[2]:.3f}"


def _signed_ci(v: tuple[float, float, float]) -> str:
    return "–" if not np.isfinite(v[1]) else f"{v[1]:+.3f} to {v[2]:+.3f}"


def _metric(name: str, v: tuple[float, float, float], where: str, *, slice_: str | None = None,
            higher_is_better: bool | None = False) -> Metric:
    """A metric from (value, ci_low, ci_high); ``where`` names the attack or baseline it is of."""
    text = METRIC_DESCRIPTIONS[name]
    return Metric(name=name, value=v[0], ci_low=v[1], ci_high=v[2], higher_is_better=higher_is_better, slice=slice_,
                  description=f"{where} {text}" if slice_ is None else f"{text} {where}")


STATS = ("mia_auc", "mia_advantage", "mia_balanced_accuracy", "mia_tpr_at_1pct_fpr", "mia_tpr_at_0_1pct_fpr")


def _numbers(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Every number of :data:`STATS` from one ROC curve (advantage: Yeom et al. 2018; balanced
    accuracy of the best threshold: (1 + advantage) / 2)."""
    from audit.auditors.privacy._membership import roc_summary

    auc, adv, tprs = roc_summary(y, s, fpr_levels=(FPR_LEVELS["1pct"], FPR_LEVELS["0_1pct"]))
    return np.array([auc, adv, 0.5 * (1.0 + adv), *tprs])


@dataclass(frozen=True, kw_only=True)
class _Boot:
    """Every number (value, ci_low, ci_high) of every attack and blind baseline, and the margins."""

    attacks: dict[str, dict[str, tuple[float, float, float]]]
    blind: dict[str, dict[str, tuple[float, float, float]]]
    best_auc: str
    best_tpr: str
    auc_margins: dict[str, tuple[float, float, float]]
    tpr_margins: dict[str, tuple[float, float, float]]


def _bootstrap(y: np.ndarray, attacks: dict[str, np.ndarray], blind: dict[str, np.ndarray], *, n_resamples: int,
               seed: int) -> _Boot:
    """All numbers with stratified bootstrap CIs (members and non-members resampled separately,
    so the sample stays balanced), from one set of resamples: one ROC curve per score and
    resample, the attacks and the blind baselines on the same rows, so the margins are paired
    (what the two share, the rows' difficulty, cancels). The best blind baseline for each number
    is chosen once, on the whole sample (slightly optimistic for it, so the margin errs toward "no
    leak shown"); chance is itself a blind baseline (a constant score), so one below chance
    counts as chance. Blind scores are not refitted per resample."""
    from audit.core.stats import bootstrap_cis

    names = [*attacks, *blind]
    k, n_stats = len(attacks), len(STATS)
    auc_i, tpr_i = STATS.index("mia_auc"), STATS.index("mia_tpr_at_1pct_fpr")
    full = np.vstack([_numbers(y, s) for s in [*attacks.values(), *blind.values()]])
    best_auc = max(range(k, len(names)), key=lambda j: full[j, auc_i])
    best_tpr = max(range(k, len(names)), key=lambda j: (full[j, tpr_i], full[j, auc_i]))

    def numbers(yy: np.ndarray, *scores: np.ndarray) -> np.ndarray:
        nums = np.vstack([_numbers(yy, s) for s in scores])
        auc_margin = nums[:k, auc_i] - max(CHANCE["mia_auc"], nums[best_auc, auc_i])
        tpr_margin = nums[:k, tpr_i] - max(CHANCE["mia_tpr_at_1pct_fpr"], nums[best_tpr, tpr_i])
        return np.concatenate([nums.ravel(), auc_margin, tpr_margin])

    arrays = [y, *attacks.values(), *blind.values()]
    point = numbers(*arrays)
    cis = bootstrap_cis(numbers, arrays, n_resamples=n_resamples, seed=seed, strata=y)
    values = [(float(v), *ci) for v, ci in zip(point, cis, strict=True)]
    per = {name: {stat: values[j * n_stats + i] for i, stat in enumerate(STATS)} for j, name in enumerate(names)}
    offset = len(names) * n_stats
    return _Boot(attacks={a: per[a] for a in attacks}, blind={b: per[b] for b in blind},
                 best_auc=names[best_auc], best_tpr=names[best_tpr],
                 auc_margins={a: values[offset + j] for j, a in enumerate(attacks)},
                 tpr_margins={a: values[offset + k + j] for j, a in enumerate(attacks)})


def _judged_margin(margins: dict[str, tuple[float, float, float]], matched: _Matched, *, distinguishable: bool,
                   matched_usable: bool) -> tuple[str, tuple[float, float, float]] | None:
    """The margin the leakage verdict judges, for the policy: over the best blind baseline on all
    rows, or on the matched rows when the full sets differ without the model (None when neither
    can be read: the sets differ even after matching)."""
    if not distinguishable:
        a = max(margins, key=lambda k: (margins[k][0], k))
        return (f"Margin over the best blind baseline on all rows ({ATTACK_LABELS[a]}).", margins[a])
    if matched_usable:
        a = max(matched.margins, key=lambda k: (matched.margins[k][0], k))
        return (f"The full sets differ without the model: margin on rows matched on length x label "
                f"({ATTACK_LABELS[a]}).", matched.margins[a])
    return None


def _distinguishable_text(v: float, lo: float, hi: float, best: str) -> str:
    from audit.auditors.privacy._blind_baselines import BLIND_LABELS

    return (f"Members and non-members are distinguishable without the model: AUC {v:.3f} (95% CI {lo:.3f}–{hi:.3f}, "
            f"{BLIND_LABELS[best]}); the raw attack AUC cannot be read as leakage (see the matched comparison)")


def _statements(sc: _Scores, *, per_attack: dict[str, dict[str, tuple[float, float, float]]],
                per_blind: dict[str, dict[str, tuple[float, float, float]]],
                margins: dict[str, tuple[float, float, float]],
                matched: _Matched, strongest: dict[str, str], best_auc: str, distinguishable: bool,
                blind_limit: float) -> list[dict[str, str]]:
    """The section's verdict in sentences, kept in results.json so the HTML report and the
    Markdown card print the same words."""
    from audit.auditors.privacy._blind_baselines import BLIND_LABELS

    out = []
    blind = per_blind[best_auc]["mia_auc"]
    if distinguishable:
        out.append({"kind": "warn", "text": _distinguishable_text(*blind, best_auc) + "."})
    a = strongest["mia_auc_margin"]
    raw, m = per_attack[a]["mia_auc"], margins[a]
    out.append({"kind": "info", "text": (
        f"Strongest attack: {ATTACK_LABELS[a]}, AUC {raw[0]:.3f} (95% CI {_ci(raw)}). Best blind baseline (text and "
        f"label only, no model): {BLIND_LABELS[best_auc]}, AUC {blind[0]:.3f} (95% CI {_ci(blind)}). Margin of the "
        f"attack over it: {m[0]:+.3f} (95% CI {_signed_ci(m)}; paired bootstrap over the same rows); this margin, not "
        "the raw AUC, is what the leakage finding judges.")})
    s = matched.summary
    if matched.ran:
        am = strongest["mia_auc_matched"]
        best_m = max(matched.blind, key=lambda b: matched.blind[b][0])
        out.append({"kind": "info", "text": (
            f"Matched comparison on {s['on']}: kept {s['members_kept']} of {s['members']} members and "
            f"{s['nonmembers_kept']} of {s['nonmembers']} non-members ({s['cells']} cells). There the strongest attack "
            f"({ATTACK_LABELS[am]}) reaches AUC {matched.attacks[am][0]:.3f} (95% CI {_ci(matched.attacks[am])}; raw "
            f"{per_attack[am]['mia_auc'][0]:.3f}) and the best refitted blind baseline ({BLIND_LABELS[best_m]}) "
            f"{matched.blind[best_m][0]:.3f} (95% CI {_ci(matched.blind[best_m])})."
            + (" The full sets differ without the model, so the leakage verdict is taken on these matched rows."
               if distinguishable and matched.blind[best_m][1] <= blind_limit else "")
            + (" The matched rows still differ without the model: membership leakage cannot be judged from these "
               "sets; give --holdout-data." if matched.blind[best_m][1] > blind_limit else ""))})
    else:
        out.append({"kind": "info", "text": f"Matched comparison on {s['on']}: not run, {s['reason']}."})
    if not sc.labelled:
        out.append({"kind": "info", "text": (
            "The non-members have no label column, so the attacks that need the true label (loss, modified entropy) "
            "and the label baselines did not run; give the label column to run them.")})
    low = sorted(b for b, v in per_blind.items() if v["mia_auc"][0] < 0.45)
    if low:
        out.append({"kind": "info", "text": (
            f"Blind baselines below 0.5 ({', '.join(BLIND_LABELS[b] for b in low)}) are cross-fitting noise on few "
            "rows (a model fitted on the other folds scores the held-out fold worse than chance); the margins count "
            "them as chance (0.5).")})
    if sc.nonmembers_from == "holdout":
        out.append({"kind": "info", "text": (
            f"Non-members: {sc.n} held-out rows ({sc.nonmember_source}, --holdout-data) that are not in the training "
            "data: the recommended comparison, if they come from the training distribution.")})
    else:
        out.append({"kind": "info", "text": (
            f"Non-members: {sc.n} eval rows ({sc.nonmember_source}) that are not in the training data. They may come "
            "from another distribution than the training rows; --holdout-data (rows from the training distribution "
            "that the model never saw) gives the clean comparison.")})
    return out


def _attack_table(per_attack: dict[str, dict[str, tuple[float, float, float]]],
                  per_blind: dict[str, dict[str, tuple[float, float, float]]],
                  margins: dict[str, tuple[float, float, float]], matched: _Matched) -> Table:
    import pandas as pd

    from audit.auditors.privacy._blind_baselines import BLIND_LABELS

    rows = []
    for attack, vals in per_attack.items():
        rows.append({
            "attack": ATTACK_LABELS[attack], "uses the model": "yes",
            "AUC": vals["mia_auc"][0], "AUC 95% CI": _ci(vals["mia_auc"]),
            "margin over best blind": margins[attack][0], "margin 95% CI": _signed_ci(margins[attack]),
            "AUC matched": matched.attacks[attack][0] if matched.ran else "",
            "advantage": vals["mia_advantage"][0],
            "TPR @ 1% FPR": vals["mia_tpr_at_1pct_fpr"][0], "TPR @ 1% FPR 95% CI": _ci(vals["mia_tpr_at_1pct_fpr"]),
            "TPR @ 0.1% FPR": vals["mia_tpr_at_0_1pct_fpr"][0],
        })
    for blind, vals in per_blind.items():
        rows.append({
            "attack": f"blind: {BLIND_LABELS[blind]}", "uses the model": "no",
            "AUC": vals["mia_auc"][0], "AUC 95% CI": _ci(vals["mia_auc"]),
            "margin over best blind": "", "margin 95% CI": "",
            "AUC matched": matched.blind[blind][0] if matched.ran else "",
            "advantage": "",
            "TPR @ 1% FPR": vals["mia_tpr_at_1pct_fpr"][0], "TPR @ 1% FPR 95% CI": _ci(vals["mia_tpr_at_1pct_fpr"]),
            "TPR @ 0.1% FPR": vals["mia_tpr_at_0_1pct_fpr"][0],
        })
    return Table.from_frame("mia_attacks", pd.DataFrame(rows),
                            title="Membership-inference attacks and blind baselines (no model)",
                            shown=("attack", "uses the model", "AUC", "AUC 95% CI", "margin over best blind",
                                   "TPR @ 1% FPR"))


def _roc_figure(sc: _Scores) -> Figure:
    from audit.auditors.privacy._blind_baselines import BLIND_LABELS
    from audit.auditors.privacy._membership import log_grid_curve

    n = sc.n
    series = [(ATTACK_LABELS[a].split(" (")[0], *log_grid_curve(sc.y, s)) for a, s in sc.scores.items()]
    blind = [(f"blind: {BLIND_LABELS[b].split(' (')[0]}", *log_grid_curve(sc.y, s)) for b, s in sc.blind.items()]
    return Figure.lines(
        "mia_roc", series=series + blind, title="Membership-inference ROC (log-log)", xlabel="false-positive rate",
        ylabel="true-positive rate", log_x=True, log_y=True, diagonal=True, xlim=(1.0 / n, 1.0),
        ylim=(1.0 / n, 1.05), dotted=[name for name, _, _ in blind],
        legend="outside",  # eight series: a legend inside would hide some
        caption=(f"ROC curves of each attack on {n} members and {n} non-members, log-log axes so the low-FPR regime "
                 "is visible (Carlini et al. 2022); dotted: blind baselines that never query the model (Das, Zhang "
                 "& Tramèr 2024), an attack is evidence of leakage only where it rises above them; dashed: chance."))


def _scope(membership: dict[str, Any], pii: bool) -> tuple[list[str], list[str]]:
    """Plain statements of what this section tested and what it did not."""
    tested, not_tested = [], []
    if membership["ran"]:
        s = membership
        against = ("held-out rows (--holdout-data)" if s["nonmembers_from"] == "holdout" else "eval rows")
        tested.append(f"Membership inference with {', '.join(s['attacks'])} attacks on {s['members']} training rows "
                      f"(members) against {s['nonmembers']} {against} not in the training data (non-members).")
        tested.append(f"Blind baselines that never query the model ({', '.join(s['blind_baselines'])}; cross-fitted), "
                      "and the attacks' margin over the best of them.")
        m = s["matched"]
        if m.get("ran"):
            tested.append(f"The attacks on members and non-members matched on {m['on']} ({m['members_kept']} of "
                          f"{m['members']} pairs kept).")
        else:
            not_tested.append(f"Matched comparison: {m['reason']}.")
        ref = s["reference"]
        if ref.get("ran"):
            tested.append(f"Reference-calibrated attack: {ref['method']} ({ref['models']} reference models).")
        else:
            not_tested.append(f"Reference-calibrated attack (LiRA): {ref.get('reason', 'not run')}.")
    else:
        not_tested.append(f"Membership inference: {membership['reason']}.")
    not_tested.append("Attacks with more knowledge or access (shadow models trained on the full data distribution, "
                      "label-only or gradient attacks, training-data extraction).")
    if pii:
        tested.append("PII scan of every text column given: e-mail, phone (E.164/NANP), payment cards (Luhn), "
                      "IBAN (mod-97), US SSN, IPv4/IPv6, URLs with credentials.")
        not_tested.append("PII the detectors do not cover: personal names, postal addresses, dates of birth, "
                          "non-US national IDs, obfuscated values.")
    not_tested.append("No differential-privacy guarantee follows from an attack that failed: attacks give a lower "
                      "bound on leakage, never an upper one.")
    return tested, not_tested
