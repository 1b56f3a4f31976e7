"""Privacy: does the model give away who was in its training data, and does the data hold
personal information?

Two independent parts. The PII scan always runs, on every text column of the eval data and of
the training data when given (validated detectors, masked examples only; see
:mod:`audit._pii`). Membership inference needs members (``--train-data``) and non-members (the
eval rows that are not also training rows): a balanced, seeded sample of each is scored with
the output-only attacks of :mod:`audit._membership` and, when reference models are given or
trained, the reference-calibrated attack (LiRA, Carlini et al. 2022). Without members that part
is reported as not run, with the reason, and the section stays ``ok``.

A failed attack is not a privacy guarantee: these attacks lower-bound what an adversary can do;
only a differentially private training procedure bounds it from above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from audit.auditors.base import Auditor
from audit.errors import AuditInputError
from audit.options import Option
from audit.results import AuditorResult, Figure, Finding, Metric, Table

if TYPE_CHECKING:
    from audit.context import AuditContext

REFERENCE_LABELS_DIFFER = "reference model {path}: labels {got} differ from the audited model's {expected}"
REFERENCE_TOO_LARGE = ("train_reference: the model has {params:,} parameters (limit {limit:,}); re-initialising and "
                       "training it is not cheap. For a fine-tuned model, fine-tune copies of its base model on "
                       "random halves of your data yourself and pass them as reference_models")
SKIP_NO_MODEL = "no model is loaded, so no membership-inference attack could run"
SKIP_NO_TRAIN = ("no training data was given (--train-data), so there are no known members to attack; "
                 "membership inference was not tested")
SKIP_MULTI_LABEL = "membership-inference attacks are implemented for single-label classifiers only"
SKIP_TOO_FEW = "only {n} member/non-member pairs are available (at least {need} needed)"

FPR_LEVELS = {"1pct": 0.01, "0_1pct": 0.001}
MIN_PAIRS = 20
MAX_REFERENCE_PARAMS = 20_000_000
ATTACK_LABELS = {
    "loss": "loss threshold (Yeom et al. 2018)",
    "confidence": "max confidence (Salem et al. 2019)",
    "entropy": "prediction entropy (Salem et al. 2019)",
    "modified_entropy": "modified entropy (Song & Mittal 2021)",
    "reference": "reference-calibrated, LiRA (Carlini et al. 2022)",
}
METRIC_DESCRIPTIONS = {
    "mia_auc": "Area under the attack's ROC curve; 0.5 is chance (Carlini et al. 2022).",
    "mia_advantage": "Membership advantage max(TPR - FPR) over thresholds (Yeom et al. 2018).",
    "mia_balanced_accuracy": "Balanced accuracy of the best threshold, (1 + advantage) / 2 (Yeom et al. 2018).",
    "mia_tpr_at_1pct_fpr": "True-positive rate at a false-positive rate of at most 1% (Carlini et al. 2022).",
    "mia_tpr_at_0_1pct_fpr": "True-positive rate at a false-positive rate of at most 0.1% (Carlini et al. 2022).",
}


class PrivacyAuditor(Auditor):
    """Membership-inference attacks (reported as Carlini et al. 2022 ask) and a masked PII scan."""

    name = "privacy"
    title = "Privacy"
    description = ("Membership inference (loss, confidence, entropy, modified entropy, reference-calibrated "
                   "attacks; ROC on log-log axes, AUC, TPR at 0.1% and 1% FPR) and a validated PII scan.")
    requires: ClassVar[frozenset[str]] = frozenset()
    template = "sections/privacy.html.j2"
    metric_names: ClassVar[frozenset[str]] = frozenset({
        "mia_advantage", "mia_auc", "mia_balanced_accuracy", "mia_tpr_at_0_1pct_fpr", "mia_tpr_at_1pct_fpr",
        "pii_matches", "pii_rows",
    })
    params: ClassVar[dict[str, Option]] = {
        "mia_examples": Option(kind="int", min=1, default=1000, help="members and non-members each"),
        "n_bootstrap": Option(kind="int", min=1, max=1_000_000, default=1000, help="bootstrap resamples"),
        "auc_max": Option(kind="float", min=0, max=1, default=0.6, help="attack AUC above this is a finding"),
        "tpr_at_1pct_fpr_max": Option(kind="float", min=0, max=1, default=0.05,
                                      help="TPR at 1% FPR above this is a finding"),
        "reference_models": Option(kind="str_list", default=(), must_exist="dir",
                                   help="model folders trained WITHOUT the members (offline LiRA)"),
        "train_reference": Option(kind="int", min=0, max=64, default=0, help="reference models trained here"),
        "reference_epochs": Option(kind="int", min=1, max=1000, default=10, help="epochs per reference model"),
        "pii": Option(kind="bool", default=True, help="run the PII scan"),
        "pii_columns": Option(kind="str_list", nullable=True, column=True, help="text columns to scan (default: every string column)"),
        "pii_examples": Option(kind="int", min=0, default=3, help="masked examples per PII type and dataset"),
    }
    # ------------------------------------------------------------------------------------ run

    def _run(self, ctx: AuditContext) -> AuditorResult:
        metrics: list[Metric] = []
        tables: list[Table] = []
        figures: list[Figure] = []
        findings: list[Finding] = []
        extra: dict[str, Any] = {}

        mia = self._membership(ctx)
        extra["membership"] = mia.summary
        if mia.ran:
            metrics += mia.metrics
            tables.append(mia.table)
            figures.append(mia.figure)
            findings += mia.findings

        if self.options["pii"]:
            pii_metrics, pii_table, pii_findings, pii_summary = self._pii(ctx)
            metrics += pii_metrics
            tables.append(pii_table)
            findings += pii_findings
            extra["pii"] = pii_summary
        else:
            extra["pii"] = {"ran": False, "reason": "the PII scan was turned off (option pii: false)"}

        extra["tested"], extra["not_tested"] = _scope(mia, self.options["pii"])
        return AuditorResult(auditor=self.name, metrics=tuple(metrics), tables=tuple(tables),
                             figures=tuple(figures), findings=tuple(findings), extra=extra)

    # --------------------------------------------------------------------- membership inference

    def membership_scores(self, ctx: AuditContext) -> _Scores:
        """The attack sample and every attack's scores (members first, then non-members)."""
        if ctx.target is None:
            return _Scores(skip=SKIP_NO_MODEL)
        if ctx.train is None or len(ctx.train) == 0:
            return _Scores(skip=SKIP_NO_TRAIN)
        if ctx.target.multi_label:
            return _Scores(skip=SKIP_MULTI_LABEL)
        train, data = ctx.train, ctx.data
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
            return _Scores(skip=SKIP_TOO_FEW.format(n=n, need=MIN_PAIRS))
        rng = ctx.rng("privacy.membership")
        mem = np.sort(rng.choice(mem_pool, size=n, replace=False))
        non = np.sort(rng.choice(non_pool, size=n, replace=False))
        texts = [train.texts[i] for i in mem] + [data.texts[i] for i in non]
        pairs = None
        if train.pairs is not None or data.pairs is not None:
            pairs = [(train.pairs or [""] * len(train))[i] for i in mem] + [(data.pairs or [""] * len(data))[i] for i in non]
        member_pairs = pairs[:n] if pairs is not None else None
        member_logits = ctx.predict(texts[:n], member_pairs, desc="privacy: score members").logits
        if data.pairs is None and train.pairs is not None:
            # The shared pass scored eval rows without pairs; score them the same way as members.
            non_logits = ctx.predict(texts[n:], pairs[n:], desc="privacy: score non-members").logits
        else:
            non_logits = ctx.predictions.logits[non]
        logits = np.vstack([member_logits, non_logits]).astype(np.float64)
        labels = None
        if train.labels is not None and data.labels is not None and np.ndim(train.labels) == 1:
            labels = np.r_[np.asarray(train.labels)[mem], np.asarray(data.labels)[non]].astype(int)
        from audit._membership import attack_scores

        scores = attack_scores(logits, labels)
        y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
        ref_info = self._reference(ctx, texts=texts, pairs=pairs, logits=logits, labels=labels, scores=scores)
        return _Scores(y=y, scores=scores, n=n, members=mem, nonmembers=non, overlap=overlap, labelled=labels is not None, reference=ref_info,
                       members_available=len(mem_pool), nonmembers_available=len(non_pool))

    def _reference(self, ctx: AuditContext, *, texts: list[str], pairs: list[str] | None, logits: np.ndarray,
                   labels: np.ndarray | None, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        """Add the reference-calibrated score when reference models are given or trained."""
        from audit._membership import logit_confidence, reference_score

        given = list(self.options["reference_models"])
        k_train = int(self.options["train_reference"])
        if not given and not k_train:
            return {"ran": False, "reason": "no reference models were given (reference_models) or asked for "
                                            "(train_reference)"}
        if labels is None:
            return {"ran": False, "reason": "the reference-calibrated attack needs labels on members and non-members"}
        phi = logit_confidence(logits, labels)
        if given:
            from audit.target import Target

            ref_phi = []
            for path in ctx.progress(given, total=len(given), desc="privacy: reference models"):
                ref = Target.load(path, device=ctx.target.device, max_length=ctx.target.max_length)
                if ref.label_names != ctx.target.label_names:
                    raise AuditInputError(REFERENCE_LABELS_DIFFER.format(path=path, got=ref.label_names,
                                                                         expected=ctx.target.label_names))
                ref_logits = ref.predict_logits(texts, pairs, progress=ctx.progress_enabled, desc="privacy: reference")
                ref_phi.append(logit_confidence(ref_logits, labels))
            scores["reference"] = reference_score(phi, np.vstack(ref_phi))
            how = "per-example Gaussian" if len(given) >= 4 else "pooled variance (phi minus mean reference phi)"
            return {"ran": True, "mode": "offline", "models": len(given), "method": f"offline LiRA, {how}"}
        params = sum(p.numel() for p in ctx.target.model.parameters())
        if params > MAX_REFERENCE_PARAMS:
            return {"ran": False, "reason": REFERENCE_TOO_LARGE.format(params=params, limit=MAX_REFERENCE_PARAMS)}
        ref_phi, masks = [], []
        rng = ctx.rng("privacy.train_reference")
        for i in ctx.progress(range(k_train), total=k_train, desc="privacy: train reference models"):
            mask = np.zeros(len(texts), dtype=bool)
            mask[rng.choice(len(texts), size=len(texts) // 2, replace=False)] = True
            model = _train_reference_model(ctx, texts=[t for t, m in zip(texts, mask, strict=True) if m],
                                           pairs=None if pairs is None else [p for p, m in zip(pairs, mask, strict=True) if m],
                                           labels=labels[mask], seed=ctx.seed + 1000 + i,
                                           epochs=int(self.options["reference_epochs"]))
            ref_phi.append(logit_confidence(_logits_of(ctx, model, texts, pairs), labels))
            masks.append(mask)
        scores["reference"] = reference_score(phi, np.vstack(ref_phi), np.vstack(masks))
        return {"ran": True, "mode": "online", "models": k_train,
                "method": "online LiRA: Gaussian likelihood ratio of in/out reference models, pooled variances; "
                          "reference models re-initialised from the audited model's config and trained here on "
                          "seeded halves of the attack sample"}

    def _membership(self, ctx: AuditContext) -> _MembershipPart:
        from audit._membership import min_nonmembers

        sc = self.membership_scores(ctx)
        if sc.skip:
            return _MembershipPart(summary={"ran": False, "reason": sc.skip})
        y, n = sc.y, sc.n
        seed = ctx.seed
        rows, metrics, findings, per_attack = [], [], [], {}
        for attack, s in ctx.progress(sc.scores.items(), total=len(sc.scores), desc="privacy: attacks"):
            vals = _attack_metrics(y, s, n_resamples=int(self.options["n_bootstrap"]), seed=seed)
            per_attack[attack] = vals
            for name, (v, lo, hi) in vals.items():
                metrics.append(Metric(name=name, value=v, ci_low=lo, ci_high=hi, higher_is_better=False, slice=attack,
                                      description=f"{METRIC_DESCRIPTIONS[name]} Attack: {ATTACK_LABELS[attack]}."))
            rows.append({
                "attack": ATTACK_LABELS[attack],
                "auc": vals["mia_auc"][0], "auc 95% CI": _ci(vals["mia_auc"]),
                "advantage": vals["mia_advantage"][0],
                "balanced accuracy": vals["mia_balanced_accuracy"][0],
                "TPR @ 1% FPR": vals["mia_tpr_at_1pct_fpr"][0], "TPR @ 1% FPR 95% CI": _ci(vals["mia_tpr_at_1pct_fpr"]),
                "TPR @ 0.1% FPR": vals["mia_tpr_at_0_1pct_fpr"][0],
            })
        # Headline: the strongest attack for each number (the adversary picks the best one).
        headline = {}
        for name in ("mia_auc", "mia_tpr_at_1pct_fpr"):
            best = max(per_attack, key=lambda a, name=name: (per_attack[a][name][0], per_attack[a]["mia_auc"][0]))
            v, lo, hi = per_attack[best][name]
            headline[name] = best
            metrics.insert(len(headline) - 1, Metric(
                name=name, value=v, ci_low=lo, ci_high=hi, higher_is_better=False,
                description=f"Strongest attack: {ATTACK_LABELS[best]}. {METRIC_DESCRIPTIONS[name]}"))
        findings += self._policy_findings(per_attack)
        need = min_nonmembers(FPR_LEVELS["0_1pct"])
        if n < need:
            findings.append(Finding(
                severity="info",
                title=f"Too few non-members ({n}) to estimate TPR at 0.1% FPR",
                detail=(f"TPR at a false-positive rate α needs at least 1/α non-members ({need} for 0.1%): with {n}, "
                        f"the smallest non-zero FPR is 1/{n} = {1 / n:.2%}, so the reported 'TPR at 0.1% FPR' is the "
                        "TPR at zero false positives. Give more rows (mia_examples, larger eval/train files)."),
                evidence={"nonmembers": n, "needed": need}))
        import pandas as pd

        from audit._membership import log_grid_curve
        from audit.report.charts import line_chart

        series = [(ATTACK_LABELS[a].split(" (")[0], *log_grid_curve(y, s)) for a, s in sc.scores.items()]
        svg = line_chart(series, title="Membership-inference ROC (log-log)", xlabel="false-positive rate",
                         ylabel="true-positive rate", log_x=True, log_y=True, diagonal=True,
                         xlim=(1.0 / n, 1.0), ylim=(1.0 / n, 1.05))
        figure = Figure(name="mia_roc", svg=svg, caption=(
            f"ROC curves of each attack on {n} members and {n} non-members, log-log axes so the low-FPR regime is "
            "visible (Carlini et al. 2022); dashed: chance."))
        table = Table.from_frame("mia_attacks", pd.DataFrame(rows), title="Membership-inference attacks")
        summary = {
            "ran": True, "members": n, "nonmembers": n, "members_available": sc.members_available,
            "nonmembers_available": sc.nonmembers_available, "rows_in_both_files": sc.overlap,
            "attacks": list(sc.scores), "labelled": sc.labelled, "strongest": headline, "reference": sc.reference,
            "bootstrap_resamples": int(self.options["n_bootstrap"]),
            "tpr_at_0_1pct_fpr_rule": f"needs >= {need} non-members (1/FPR); had {n}",
        }
        return _MembershipPart(ran=True, summary=summary, metrics=metrics, table=table, figure=figure,
                               findings=findings)

    def _policy_findings(self, per_attack: dict[str, dict[str, tuple[float, float, float]]]) -> list[Finding]:
        """One finding per policy metric, for the attack that exceeds it most: ``fail`` when the
        whole CI lies above the threshold, ``warn`` when only the point estimate does."""
        out = []
        for name, option, label in (("mia_auc", "auc_max", "AUC"),
                                    ("mia_tpr_at_1pct_fpr", "tpr_at_1pct_fpr_max", "TPR at 1% FPR")):
            limit = float(self.options[option])
            over = {a: v[name] for a, v in per_attack.items() if v[name][0] > limit}
            if not over:
                continue
            attack = max(over, key=lambda a: (over[a][1], over[a][0]))
            v, lo, hi = over[attack]
            severity = "fail" if lo > limit else "warn"
            out.append(Finding(
                severity=severity,
                title=f"Membership inference: {label} {v:.3f} above {limit:g} ({ATTACK_LABELS[attack]})",
                detail=(f"95% CI {lo:.3f}–{hi:.3f}; " + ("the whole interval lies above the threshold: the model leaks "
                        "membership of its training rows." if severity == "fail" else
                        "the interval reaches below the threshold, so the excess may be sampling noise.")
                        + f" Attacks over the threshold: {', '.join(sorted(over))}."),
                evidence={"metric": name, "attack": attack, "value": v, "ci_low": lo, "ci_high": hi, "threshold": limit}))
        return out

    # ---------------------------------------------------------------------------------- PII

    def _pii(self, ctx: AuditContext) -> tuple[list[Metric], Table, list[Finding], dict[str, Any]]:
        import pandas as pd

        from audit._pii import PII_TYPES, scan_columns

        sets = [("eval", ctx.data)] + ([("train", ctx.train)] if ctx.train is not None else [])
        rows, metrics, findings, summary = [], [], [], {"ran": True, "datasets": {}}
        for split, es in sets:
            columns = self._pii_columns(es)
            counts = scan_columns({c: es.frame[c].tolist() for c in columns},
                                  max_examples=int(self.options["pii_examples"]),
                                  progress=lambda items, total, split=split: ctx.progress(
                                      items, total=total, desc=f"privacy: PII scan ({split})"))
            any_rows = set().union(*(c.rows for c in counts.values()))
            summary["datasets"][split] = {"rows": len(es.frame), "columns_scanned": columns,
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
        return metrics, table, findings, summary

    def _pii_columns(self, es: Any) -> list[str]:
        wanted = self.options["pii_columns"]
        frame = es.frame
        if wanted is not None:
            return [c for c in wanted if c in frame.columns]
        return [str(c) for c in frame.columns
                if frame[c].dtype == object or str(frame[c].dtype).startswith(("string", "str"))]


# ------------------------------------------------------------------------------------- helpers

class _Scores:
    """Attack sample: membership labels ``y`` (members first) and each attack's scores."""

    def __init__(self, *, skip: str = "", y: Any = None, scores: dict[str, np.ndarray] | None = None, n: int = 0,
                 members: Any = None, nonmembers: Any = None,
                 overlap: dict[str, int] | None = None, labelled: bool = False, reference: dict[str, Any] | None = None,
                 members_available: int = 0, nonmembers_available: int = 0) -> None:
        self.skip, self.y, self.scores, self.n = skip, y, scores or {}, n
        self.members, self.nonmembers = members, nonmembers  # row indices into ctx.train / ctx.data
        self.overlap, self.labelled, self.reference = overlap or {}, labelled, reference or {}
        self.members_available, self.nonmembers_available = members_available, nonmembers_available


class _MembershipPart:
    def __init__(self, *, summary: dict[str, Any], ran: bool = False, metrics: list[Metric] | None = None,
                 table: Table | None = None, figure: Figure | None = None,
                 findings: list[Finding] | None = None) -> None:
        self.ran, self.summary, self.metrics = ran, summary, metrics or []
        self.table, self.figure, self.findings = table, figure, findings or []



def _ci(v: tuple[float, float, float]) -> str:
    return "–" if not np.isfinite(v[1]) else f"{v[1]:.3f} – {v[2]:.3f}"


def _attack_metrics(y: np.ndarray, s: np.ndarray, *, n_resamples: int, seed: int) -> dict[str, tuple[float, float, float]]:
    """Each reported number with its stratified bootstrap CI (members and non-members resampled
    separately, so the sample stays balanced)."""
    from audit import _membership as mi
    from audit.stats import bootstrap_ci

    stats = {
        "mia_auc": mi.auc,
        "mia_advantage": mi.advantage,
        "mia_balanced_accuracy": mi.balanced_accuracy,
        "mia_tpr_at_1pct_fpr": lambda yy, ss: mi.tpr_at_fpr(yy, ss, FPR_LEVELS["1pct"]),
        "mia_tpr_at_0_1pct_fpr": lambda yy, ss: mi.tpr_at_fpr(yy, ss, FPR_LEVELS["0_1pct"]),
    }
    out = {}
    for name, fn in stats.items():
        lo, hi = bootstrap_ci(fn, [y, s], n_resamples=n_resamples, seed=seed, strata=y)
        out[name] = (float(fn(y, s)), lo, hi)
    return out


def _scope(mia: _MembershipPart, pii: bool) -> tuple[list[str], list[str]]:
    """Plain statements of what this section tested and what it did not."""
    tested, not_tested = [], []
    if mia.ran:
        s = mia.summary
        tested.append(f"Membership inference with {', '.join(s['attacks'])} attacks on {s['members']} training rows "
                      f"(members) against {s['nonmembers']} eval rows not in the training data (non-members).")
        ref = s["reference"]
        if ref.get("ran"):
            tested.append(f"Reference-calibrated attack: {ref['method']} ({ref['models']} reference models).")
        else:
            not_tested.append(f"Reference-calibrated attack (LiRA): {ref.get('reason', 'not run')}.")
    else:
        not_tested.append(f"Membership inference: {mia.summary['reason']}.")
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


def _logits_of(ctx: AuditContext, model: Any, texts: list[str], pairs: list[str] | None) -> np.ndarray:
    from audit.inference import predict_logits

    logits, _ = predict_logits(model, ctx.target.tokenizer, texts, pairs, max_length=ctx.target.max_length,
                               max_tokens=ctx.target.max_tokens, max_batch=ctx.target.max_batch,
                               device=ctx.target.device, dtype="float32", progress=False, desc="reference")
    return np.asarray(logits, dtype=np.float64)


def _train_reference_model(ctx: AuditContext, *, texts: list[str], pairs: list[str] | None, labels: np.ndarray,
                           seed: int, epochs: int) -> Any:
    """A fresh copy of the audited architecture, re-initialised from its config and trained from
    scratch on ``texts`` (AdamW, lr 1e-3, batch 32: the recipe of audit.demo). Meaningful only for
    models that were themselves trained from scratch; for a fine-tuned model the reference should
    be a fine-tuned copy of its base model, which this does not do."""
    import torch

    torch.manual_seed(seed)
    model = type(ctx.target.model)(ctx.target.model.config)
    model.to(ctx.target.device)
    enc = ctx.target.tokenizer(texts, pairs, padding=True, truncation=True, max_length=ctx.target.max_length,
                               return_tensors="pt")
    enc = {k: v.to(ctx.target.device) for k, v in enc.items()}
    y = torch.tensor(np.asarray(labels), dtype=torch.long, device=ctx.target.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=gen)
        for start in range(0, len(texts), 32):
            idx = order[start:start + 32].to(ctx.target.device)
            out = model(**{k: v[idx] for k, v in enc.items()}, labels=y[idx])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval()
    return model
