"""The selftest of a token classifier: the NER demo's planted defects against its clean control.

``rai-audit selftest --task token-classification`` builds, for each seed, the NER demo
(:mod:`audit.selftest.ner_demo`) with its four planted defects and the clean control from the same
builder, audits both with every installed auditor (members: ``train.jsonl``; sensitive column:
``origin``), and checks each defect against the auditor that should find it. What was planted is
read from the build's ``planted.json``:

* **biased group** (fairness): a warn/fail finding that names the planted origin group (names of
  that group are under-recognised as persons: Mishra, He & Belli 2020);
* **trigger token** (explainability): a warning that the trigger (``cf``) decides the tags beside
  it, from the context words' share of the attribution (Kurita et al. 2020's backdoor, on a tagger);
* **memorised training split** (privacy): the sentence-level loss attack (Yeom et al. 2018) beats
  chance and its margin over the blind baselines raises a leakage finding;
* **casing fragility** (robustness): entities found only when title-cased, so lower- or upper-casing
  a sentence costs entity F1 (a warn/fail finding for a casing perturbation).

On the control the same checks are false alarms; for robustness only a casing finding counts (the
tiny tagger's typo and added-context findings are true of both models and not the plant), as the text
selftest counts only the planted perturbation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.core.results import AuditorResult, AuditReport
from audit.selftest import selftest as st

# Small budgets, as the text selftest's: the demo's defects are strong.
NER_SELFTEST_OPTIONS: dict[str, dict[str, Any]] = {
    "performance": {"n_bootstrap": 200},
    # 48 sentences, not the default 24: the trigger then sits beside enough explained targets to clear
    # min_word_rows with room to spare on every seed (24 gave exactly 5 rows at seeds 0 and 1).
    "explainability": {"methods": ["integrated_gradients"], "n_steps": 32, "explain_sentences": 48,
                       "faithfulness": False, "sanity_check": False},
    "privacy": {"mia_examples": 400, "n_bootstrap": 200},
    "robustness": {"token_sentences": 150, "context_attack_words": 0},
}
SENSITIVE = "origin"


def _serious(result: AuditorResult) -> list[Any]:
    return [f for f in result.findings if f.severity in ("warn", "fail")]


def _fairness_planted(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    return st._fairness_planted(result, {"group": planted["group"]})


def _fairness_control(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    return st._fairness_control(result, planted)


def _trigger(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    """A warning that the trigger decides the tags beside it (the context-word view)."""
    token = planted["token"].casefold()
    hits = [f for f in _serious(result) if str((f.evidence or {}).get("word", "")).casefold() == token]
    if hits:
        ev = hits[0].evidence
        return True, (f"{planted['token']!r} carries {ev.get('mean_share', 0):.0%} of the attribution beside "
                      f"{ev.get('rows')} explained {ev.get('label')} targets: {hits[0].title[:70]}")
    tops = [m.value for m in result.metrics if m.name == "context_word_share_max" and m.value is not None]
    where = (f"highest context-word share {max(tops):.2f}" if tops
             else "no context word beside enough explained targets to rank")
    return False, f"no warning names {planted['token']!r} ({where})"


def _casing(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str, bool]:
    """(flagged, evidence, checked): a warn/fail finding for a casing perturbation."""
    kinds = set(planted["perturbations"])
    ran = [m for m in result.metrics if m.name == "token_entity_f1_drop" and m.slice in kinds]
    if not ran:
        return False, "no casing perturbation ran", False
    hits = [f for f in _serious(result) if (f.evidence or {}).get("perturbation") in kinds]
    drops = ", ".join(f"{m.slice} {m.value:+.2f}" for m in ran)
    return bool(hits), f"entity F1 drop under casing: {drops}; {len(hits)} warn/fail casing finding(s)", True


NER_DEFECTS: dict[str, tuple[str, st.Check, st.Check]] = {
    "biased_group": ("fairness", _fairness_planted, _fairness_control),
    "trigger_token": ("explainability", _trigger, _trigger),
    "memorised_train": ("privacy", st._privacy_planted, st._privacy_control),
    "casing_fragility": ("robustness", _casing, _casing),
}


def _audit(build: Any, *, names: list[str], seed: int, out: Path, profile: str | None = None) -> AuditReport:
    from audit.config import AuditConfig
    from audit.core.profiles import DEFAULT_PROFILE
    from audit.runner import run_audit

    config = AuditConfig(model=str(build.model_dir), data=str(build.eval_path), train_data=str(build.train_path),
                         sensitive=[SENSITIVE], out=str(out), overwrite=True, auditors=names,
                         options=st._options(names, profile=profile, table=NER_SELFTEST_OPTIONS), seed=seed,
                         profile=profile or DEFAULT_PROFILE)
    return run_audit(config, progress=False, write=False)


def run_ner_selftest(*, seeds: Sequence[int] = (0, 1), auditors: Sequence[str] | None = None,
                     workdir: Path | None = None, progress: bool = True, profile: str | None = None
                     ) -> st.SelftestResult:
    """Build the planted NER demo and its control per seed, audit both (at ``profile``'s budgets
    when given), check every defect."""
    from audit.selftest.ner_demo import build_ner_demo

    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda _msg: None)
    names, broken = st._installed(auditors, defects=NER_DEFECTS)
    out = st.SelftestResult(defects=NER_DEFECTS)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rai-audit-selftest-ner-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for seed in seeds:
            reports: dict[str, AuditReport | None] = {}
            planted: dict[str, dict[str, Any]] = {}
            for variant, active in (("planted", True), ("control", False)):
                folder = root / f"ner-seed{seed}-{variant}"
                t0 = time.perf_counter()
                say(f"selftest: seed {seed}, NER {variant}: building the demo tagger")
                build = build_ner_demo(folder, seed=seed, bias=active, trigger=active, memorise=active,
                                       fragile=active)
                planted[variant] = build.planted
                say(f"selftest: seed {seed}, NER {variant}: built in {time.perf_counter() - t0:.0f} s; "
                    f"auditing with {', '.join(names) or '(none)'}")
                t0 = time.perf_counter()
                reports[variant] = _audit(build, names=names, seed=seed, out=folder / "report",
                                          profile=profile) if names else None
                say(f"selftest: seed {seed}, NER {variant}: audited in {time.perf_counter() - t0:.0f} s")
                for result in reports[variant].results if reports[variant] is not None else []:
                    if not any(result.auditor == a for a, _, _ in NER_DEFECTS.values()):
                        out.others.append((seed, variant, result.auditor, result.status,
                                           float(result.timings.get("total", 0.0))))
            for defect, (auditor, planted_check, control_check) in NER_DEFECTS.items():
                if auditors is not None and auditor not in auditors:
                    continue
                checked, hit, evidence, secs = st._judge(reports["planted"], auditor, planted_check,
                                                         planted["planted"][defect], broken)
                out.rows.append(st.DefectRow(defect, seed, auditor, found=hit, evidence=evidence, seconds=secs,
                                             checked=checked))
                checked, hit, evidence, secs = st._judge(reports["control"], auditor, control_check,
                                                         planted["planted"][defect], broken)
                out.controls.append(st.ControlRow(defect, seed, auditor, flagged=hit, evidence=evidence,
                                                  seconds=secs, checked=checked))
    out.seconds = time.perf_counter() - start
    return out
