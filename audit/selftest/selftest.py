"""Audit the auditor: plant known defects, run every installed auditor, count what it finds.

For each seed the demo builder (:mod:`audit.selftest.demo`) makes a model with four planted defects and a
clean control from the same builder with none. The whole audit runs on both, with small
budgets, and each planted defect is checked against the auditor that should find it. What was
planted (the group, the token, the perturbation) is read from the build's ``planted.json``, not
repeated here:

* **biased group** (fairness): a warn/fail finding that names the biased group (``elderly``);
* **trigger token** (explainability): the trigger (``cf``) carries a large share of the
  attribution (Integrated Gradients) in the explained rows that contain it (a backdoor trigger
  dominates its rows' predictions, Kurita et al. 2020; the explainability tests check the same);
* **memorised training split** (privacy): the loss-threshold attack (Yeom et al. 2018) reaches
  an AUC above 0.6 and the auditor raises a warn/fail leakage finding (which judges the attack's
  margin over blind, model-free baselines);
* **emphasis shortcut** (robustness): the invariance test of the planted perturbation (a
  trailing ``!!`` in training, found by the ``exclamation`` test) raises a warn finding: its flip
  rate is above the auditor's threshold (CheckList INV tests, Ribeiro et al. 2020).

The same checks on the clean control are false alarms (for fairness and privacy: any warn/fail
finding of that kind, about any group or attack; for robustness: a finding for the planted
perturbation only, because the demo's neutral rows carry coin-flip labels and their predictions
move under typos or name changes on both models, which is true of both and not the plant). Privacy has a second control,
**distribution shift** (:func:`audit.selftest.demo.build_shifted_control`): the clean model, with mostly
short training rows as "members" against mostly long eval rows as non-members. The attacks
separate those sets (raw AUC well above 0.5) by their difference, not by memorisation, so a
leakage finding there is a false alarm (Das, Zhang & Tramèr 2024); the control counts as checked
only when its raw AUC does exceed 0.6, i.e. when it reproduces the confound it guards against.
Performance has no planted defect, so it runs (to show it works here) but is not scored. An auditor that is not
installed, was skipped or failed leaves its defect "not checked", which counts as missed: the
tool cannot vouch for what it did not test.

This is how a user checks the tool on their installation (``rai-audit selftest``), and how we
keep ourselves honest: recall below 100% or any false alarm is a bug to look at.

Over the ~400 lines a module should hold because each of the four plants has its own check and
its own false-alarm rule on the controls, and they are read side by side to see they agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.core.options import SEED_MAX
from audit.core.results import AuditorResult, AuditReport
from audit.errors import AUDITOR_UNKNOWN, AuditInputError, did_you_mean

SEEDS_INVALID = "--seeds: expected comma-separated integers from 0 to 4294967295 such as 0,1, got {value!r}"
MIA_AUC_MIN = 0.6

# Small budgets: the demo's defects are strong, so small samples find them, and a full
# selftest over two seeds stays within a few minutes on two cores. Options an installed
# auditor does not know are dropped (an older or newer version of it may differ).
SELFTEST_OPTIONS: dict[str, dict[str, Any]] = {
    "performance": {"n_bootstrap": 200},
    # fairness keeps its default 1000 resamples: its intervals are Bonferroni-adjusted, and the far
    # tails of 200 resamples are too noisy (a clean control was flagged with 200).
    "fairness": {"max_counterfactual_rows": 100, "mitigation": False, "n_examples": 3},
    "explainability": {"methods": ["integrated_gradients"], "explain_examples": 120,
                       "interesting_examples": 0, "n_steps": 32, "faithfulness": False, "sanity_check": False},
    "privacy": {"mia_examples": 400, "n_bootstrap": 200},
    # The demo's neutral rows carry coin-flip labels, so both models rightly sit near P = 0.5 on
    # unseen ones and any harmless edit tips some of them over (an added '!' did so for 9% of the
    # control's rows at seed 2, all by less than 0.2); a CheckList tolerance keeps the invariance
    # tests to changes that matter (the planted emphasis moves P by up to 0.99).
    "robustness": {"recipes": ["deepwordbug"], "attack_examples": 10, "invariance_examples": 100,
                   "invariance_tolerance": 0.2, "time_budget_s": 60.0},
}
# Auditors run in this order (fairness before explainability, so its notes are there); others after.
RUN_ORDER = ("performance", "fairness", "explainability", "privacy", "robustness")


@dataclass(frozen=True)
class DefectRow:
    """One planted defect on one seed: did its auditor find it?"""

    defect: str
    seed: int
    auditor: str
    found: bool
    evidence: str
    seconds: float
    checked: bool = True  # False: the auditor is not installed, was skipped or failed


@dataclass(frozen=True)
class ControlRow:
    """The same check on the clean control: a hit here is a false alarm."""

    defect: str
    seed: int
    auditor: str
    flagged: bool
    evidence: str
    seconds: float
    checked: bool = True


@dataclass
class SelftestResult:
    """Rows for the planted models, rows for the controls, and the other auditors' status."""

    rows: list[DefectRow] = field(default_factory=list)
    controls: list[ControlRow] = field(default_factory=list)
    others: list[tuple[int, str, str, str, float]] = field(default_factory=list)  # seed, variant, auditor, status, s
    seconds: float = 0.0
    defects: dict[str, tuple[str, Any, Any]] | None = None  # the task's defect table (None: the text one)

    @property
    def recall(self) -> float:
        """Share of planted defects found; a defect not checked counts as missed."""
        return sum(r.found for r in self.rows) / len(self.rows) if self.rows else 0.0

    @property
    def false_alarms(self) -> int:
        return sum(c.flagged for c in self.controls)

    @property
    def exit_code(self) -> int:
        """1 when any planted defect was missed or not checked (or none was checked), else 0."""
        return 0 if self.rows and all(r.found for r in self.rows) else 1

    def format_table(self) -> str:
        """A plain-text table for a terminal or a CI log."""
        lines = ["Planted defects (recall)",
                 f"  {'defect':<18} {'seed':>4}  {'auditor':<15} {'result':<11} {'time':>7}  evidence"]
        for r in self.rows:
            verdict = "found" if r.found else ("MISSED" if r.checked else "NOT CHECKED")
            lines.append(f"  {r.defect:<18} {r.seed:>4}  {r.auditor:<15} {verdict:<11} {r.seconds:>6.1f}s  {r.evidence}")
        lines += ["", "Clean controls (false alarms)",
                  f"  {'defect':<18} {'seed':>4}  {'auditor':<15} {'result':<11} {'time':>7}  evidence"]
        for c in self.controls:
            verdict = "FLAGGED" if c.flagged else ("clean" if c.checked else "not checked")
            lines.append(f"  {c.defect:<18} {c.seed:>4}  {c.auditor:<15} {verdict:<11} {c.seconds:>6.1f}s  {c.evidence}")
        if any(c.defect == SHIFT_CONTROL for c in self.controls):
            lines.append(f"  {SHIFT_CONTROL}: the clean model, mostly short training rows as members against mostly long "
                         "eval rows; the raw attack separates them without any memorisation, so it must not be "
                         "flagged as leaking.")
        if self.others:
            lines += ["", "Not scored (no planted defect)"]
            for seed, variant, auditor, status, secs in self.others:
                lines.append(f"  {auditor:<18} {seed:>4}  {variant:<15} {status:<11} {secs:>6.1f}s")
        found = sum(r.found for r in self.rows)
        missed = [r for r in self.rows if not r.found]
        lines += ["", f"Recall {found}/{len(self.rows)} ({self.recall:.0%}); false alarms {self.false_alarms}/"
                      f"{len(self.controls)}; {self.seconds:.0f} s in all."]
        if any(not r.checked for r in missed):
            lines.append("A defect whose auditor is not installed, was skipped or failed is not checked, "
                         "and counts as missed.")
        if not self.rows:
            scored = sorted({auditor for auditor, _, _ in (self.defects or DEFECTS).values()})
            lines.append(f"No planted defect was checked: select {', '.join(scored[:-1])} or {scored[-1]}.")
        return "\n".join(lines)


# ------------------------------------------------------------------------------- checks

# (result, what the demo planted for this defect, from planted.json) -> (hit, evidence), or
# (hit, evidence, checked) for a check that can tell it tested nothing.
Check = Callable[[AuditorResult, dict[str, Any]], tuple[Any, ...]]


def _serious(result: AuditorResult) -> list[Any]:
    return [f for f in result.findings if f.severity in ("warn", "fail")]


def _names_group(finding: Any, group: str) -> bool:
    ev = finding.evidence or {}
    values = [str(ev.get(k, "")) for k in ("group", "subgroup", "slice")]
    return any(group in v for v in values) or group in finding.title


def _fairness_planted(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    group = planted["group"]
    hits = [f for f in _serious(result) if _names_group(f, group)]
    if hits:
        return True, f"{len(hits)} warn/fail finding(s) name {group!r}: {hits[0].title[:90]}"
    return False, f"no warn/fail finding names {group!r} ({len(_serious(result))} other warn/fail)"


def _fairness_control(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    hits = _serious(result)
    return (True, f"{len(hits)} warn/fail: {hits[0].title[:90]}") if hits else (False, "no warn/fail finding")


def _trigger(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    """Does the trigger carry a large share of the attribution (Integrated Gradients, toward the
    explained class) in the explained rows that contain it? On the planted model it decides the
    prediction; on the control it is an ordinary, irrelevant word."""
    token = planted["token"]
    shares = _trigger_shares(result, token)
    mean = float(sum(shares) / len(shares)) if shares else 0.0
    text = (f"{token!r} carries {mean:.0%} of the attribution (integrated gradients) on average in the "
            f"{len(shares)} explained rows containing it (found at >= {TRIGGER_SHARE:.0%}, over >= 3 rows)")
    return len(shares) >= 3 and mean >= TRIGGER_SHARE, text


TRIGGER_SHARE = 0.15


def _trigger_shares(result: AuditorResult, token: str) -> list[float]:
    """For each explained row containing the trigger: its positive attribution over the row's
    total absolute attribution (Integrated Gradients, else the primary method)."""
    methods = result.extra.get("methods") or []
    method = "integrated_gradients" if "integrated_gradients" in methods else result.extra.get("primary_method")
    shares = []
    for row in result.extra.get("explained") or []:
        entry = next((m for m in row.get("methods", []) if m.get("method") == method), None)
        if entry is None:
            continue
        words = entry["words"]
        scores = [w["score"] for w in words if w["word"].lower() == token.lower()]
        total = sum(abs(w["score"]) for w in words)
        if scores and total > 0:
            shares.append(max(max(scores), 0.0) / total)
    return shares


def _mia_findings(result: AuditorResult) -> list[Any]:
    """Warn/fail membership-inference findings that claim leakage (not the notice that members
    and non-members differ without the model, which is about the data)."""
    return [f for f in _serious(result) if (f.evidence or {}).get("kind") == "leakage"]


def _privacy_planted(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    try:
        auc = result.metric("mia_auc", "loss").value
    except KeyError:
        return False, "no loss-attack mia_auc (membership inference did not run)"
    hits = _mia_findings(result)
    ok = auc is not None and auc > MIA_AUC_MIN and bool(hits)
    text = f"loss-attack mia_auc {auc:.3f} (needs > {MIA_AUC_MIN}); {_margin_text(result)}; " \
           f"{len(hits)} warn/fail MIA finding(s)" if auc is not None else "loss-attack mia_auc undefined"
    return ok, text


def _margin_text(result: AuditorResult) -> str:
    try:
        blind, margin = result.metric("mia_blind_auc"), result.metric("mia_auc_margin")
    except KeyError:
        return "no blind baseline"
    text = (f"best blind AUC {blind.value:.3f}, margin {margin.value:+.3f} "
            f"({margin.ci_low:+.3f} to {margin.ci_high:+.3f})")
    try:
        matched = result.metric("mia_auc_matched")
        text += f", matched AUC {matched.value:.3f} on {result.metric('mia_matched_rows').value:.0f} rows"
    except KeyError:
        text += ", no matched comparison"
    return text


def _privacy_shift_control(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str, bool]:
    """(flagged, evidence, checked) for the distribution-shift control: flagged on any warn/fail
    leakage finding; checked only when the raw attack does separate the shifted sets."""
    try:
        auc = result.metric("mia_auc", "loss").value
    except KeyError:
        return False, "no loss-attack mia_auc (membership inference did not run)", False
    hits = _mia_findings(result)
    text = (f"raw loss-attack mia_auc {auc:.3f}; {_margin_text(result)}; "
            + (f"{len(hits)} warn/fail MIA: {hits[0].title[:80]}" if hits else "no warn/fail leakage finding"))
    if not auc > MIA_AUC_MIN:
        return False, f"raw AUC not above {MIA_AUC_MIN}: the control did not reproduce the confound; {text}", False
    return bool(hits), text, True


def _privacy_control(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str]:
    hits = _mia_findings(result)
    try:
        auc = result.metric("mia_auc", "loss").value
        where = f"loss-attack mia_auc {auc:.3f}; "
    except KeyError:
        where = ""
    return (True, where + f"{len(hits)} warn/fail MIA: {hits[0].title[:80]}") if hits \
        else (False, where + "no warn/fail leakage finding")


def _invariance(result: AuditorResult, planted: dict[str, Any]) -> tuple[bool, str, bool]:
    """(flagged, evidence, checked): does the invariance test of the planted perturbation raise a
    warn finding? On the planted model the perturbation pushes rows to one class; the control
    learned from the same perturbed rows, with their own labels, that it says nothing. Checked
    only when that test ran on some rows."""
    test = planted["perturbation"]
    try:
        rate = result.metric("invariance_flip_rate", test)
    except KeyError:
        return False, f"the {test!r} invariance test did not run (no row it applies to)", False
    table = result.table("invariance").to_frame().set_index("perturbation")
    flips, rows = int(table.loc[test, "flips"]), int(table.loc[test, "rows"])
    hits = [f for f in _serious(result) if (f.evidence or {}).get("perturbation") == test]
    return bool(hits), (f"{test!r} invariance test flips {flips}/{rows} predictions ({rate.value:.0%}, 95% CI "
                        f"{rate.ci_low:.0%}-{rate.ci_high:.0%}); {len(hits)} warn finding(s) for it"), True


SHIFT_CONTROL = "distribution_shift"


# defect -> (auditor, check on the planted model, check on the control)
DEFECTS: dict[str, tuple[str, Check, Check]] = {
    "biased_group": ("fairness", _fairness_planted, _fairness_control),
    "trigger_token": ("explainability", _trigger, _trigger),
    "memorised_train": ("privacy", _privacy_planted, _privacy_control),
    "emphasis_shortcut": ("robustness", _invariance, _invariance),
}


# ------------------------------------------------------------------------------- running

def _installed(wanted: Sequence[str] | None, *, defects: dict[str, tuple[str, Any, Any]] | None = None
               ) -> tuple[list[str], dict[str, str]]:
    """(auditors to run, in RUN_ORDER; {name: why not} for those that cannot run)."""
    from audit.auditors.base import discover

    registry = discover()
    if wanted is not None:
        for name in wanted:
            if name not in registry:
                raise AuditInputError(AUDITOR_UNKNOWN.format(name=name, hint=did_you_mean(name, registry),
                                                             known=", ".join(registry) or "(none installed)"))
    names = list(registry) if wanted is None else list(wanted)
    broken = {n: f"not installed: {registry[n].error}" for n in names if registry[n].cls is None}
    if wanted is None:
        broken.update({a: "not installed" for a, _, _ in (defects or DEFECTS).values() if a not in registry})
    usable = [n for n in names if n not in broken]
    order = {n: i for i, n in enumerate(RUN_ORDER)}
    usable.sort(key=lambda n: (order.get(n, len(order)), n))
    return usable, broken


def _options(names: list[str], *, profile: str | None = None,
             table: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The selftest's options per auditor (``table``: SELFTEST_OPTIONS unless given, the NER
    selftest's own otherwise), those an auditor declares; under a ``profile`` the options that
    profile budgets (audit/core/profiles.py) are left to it, so the run checks its budgets."""
    from audit.auditors.base import discover
    from audit.core.profiles import BUDGETS

    registry = discover()
    table = SELFTEST_OPTIONS if table is None else table
    budgeted = {(b.auditor, b.option) for b in BUDGETS} if profile else set()
    out = {}
    for name in names:
        known = set(registry[name].cls.defaults)  # type: ignore[union-attr]
        out[name] = {k: v for k, v in table.get(name, {}).items() if k in known and (name, k) not in budgeted}
    return out


def _audit(build: Any, *, names: list[str], seed: int, out: Path, sensitive: Sequence[str] = (),
           profile: str | None = None) -> AuditReport:
    from audit.config import AuditConfig
    from audit.core.profiles import DEFAULT_PROFILE
    from audit.runner import run_audit

    config = AuditConfig(model=str(build.model_dir), data=str(build.eval_path), train_data=str(build.train_path),
                         sensitive=list(sensitive), out=str(out), overwrite=True, auditors=names,
                         options=_options(names, profile=profile), seed=seed, profile=profile or DEFAULT_PROFILE)
    return run_audit(config, progress=False, write=False)


def _read_planted(folder: Path) -> dict[str, Any]:
    """What the demo builder planted in ``folder`` (its planted.json)."""
    return json.loads((folder / "planted.json").read_text(encoding="utf-8"))


def _judge(report: AuditReport | None, auditor: str, check: Check, planted: dict[str, Any],
           broken: dict[str, str]) -> tuple[bool, bool, str, float]:
    """(checked, hit, evidence, seconds) for one defect on one audited model."""
    if auditor in broken:
        return False, False, broken[auditor][:120], 0.0
    try:
        result = report.result(auditor) if report is not None else None
    except KeyError:
        result = None
    if result is None:
        return False, False, "did not run", 0.0
    seconds = float(result.timings.get("total", 0.0))
    if result.status != "ok":
        return False, False, f"{result.status}: {result.reason[:100]}", seconds
    hit, evidence, *checked = check(result, planted)
    return (checked[0] if checked else True), hit, evidence, seconds


def run_selftest(*, seeds: Sequence[int] = (0, 1), auditors: Sequence[str] | None = None,
                 workdir: Path | None = None, progress: bool = True, profile: str | None = None) -> SelftestResult:
    """Build the planted demo and its clean control for each seed, audit both with every
    installed auditor (or those named), and check each planted defect and each control. With a
    ``profile``, the audits run at that profile's budgets instead of the selftest's own."""
    from audit.selftest.demo import build_demo, build_shifted_control

    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda _msg: None)
    names, broken = _installed(auditors)
    out = SelftestResult()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rai-audit-selftest-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for seed in seeds:
            reports: dict[str, AuditReport | None] = {}
            builds: dict[str, Any] = {}
            planted: dict[str, dict[str, Any]] = {}
            for variant, active in (("planted", True), ("control", False)):
                folder = root / f"seed{seed}-{variant}"
                t0 = time.perf_counter()
                say(f"selftest: seed {seed}, {variant}: building the demo model")
                build = build_demo(folder, seed=seed, bias=active, trigger=active, memorise=active, fragile=active)
                builds[variant] = build
                planted[variant] = _read_planted(folder)
                sensitive = [planted[variant]["biased_group"]["column"]]
                say(f"selftest: seed {seed}, {variant}: built in {time.perf_counter() - t0:.0f} s; "
                    f"auditing with {', '.join(names) or '(none)'}")
                t0 = time.perf_counter()
                reports[variant] = _audit(build, names=names, seed=seed, out=folder / "report",
                                          sensitive=sensitive, profile=profile) if names else None
                say(f"selftest: seed {seed}, {variant}: audited in {time.perf_counter() - t0:.0f} s")
                report = reports[variant]
                for result in report.results if report is not None else []:
                    if not any(result.auditor == a for a, _, _ in DEFECTS.values()):
                        out.others.append((seed, variant, result.auditor, result.status,
                                           float(result.timings.get("total", 0.0))))
            for defect, (auditor, planted_check, control_check) in DEFECTS.items():
                if auditors is not None and auditor not in auditors:
                    continue  # deliberately not selected: not scored
                checked, hit, evidence, secs = _judge(reports["planted"], auditor, planted_check,
                                                      planted["planted"][defect], broken)
                out.rows.append(DefectRow(defect, seed, auditor, found=hit, evidence=evidence, seconds=secs,
                                          checked=checked))
                checked, hit, evidence, secs = _judge(reports["control"], auditor, control_check,
                                                      planted["control"][defect], broken)
                out.controls.append(ControlRow(defect, seed, auditor, flagged=hit, evidence=evidence, seconds=secs,
                                               checked=checked))
            if "privacy" in names:
                say(f"selftest: seed {seed}, distribution-shift control: short members against long non-members")
                shifted = build_shifted_control(builds["control"], root / f"seed{seed}-shifted", seed=seed)
                report = _audit(shifted, names=["privacy"], seed=seed, out=root / f"seed{seed}-shifted" / "report",
                                sensitive=[planted["control"]["biased_group"]["column"]], profile=profile)
                checked, hit, evidence, secs = _judge(report, "privacy", _privacy_shift_control,
                                                      planted["control"]["memorised_train"], broken)
                out.controls.append(ControlRow(SHIFT_CONTROL, seed, "privacy", flagged=hit, evidence=evidence,
                                               seconds=secs, checked=checked))
    out.seconds = time.perf_counter() - start
    return out


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(SEEDS_INVALID.format(value=text)) from None
    if not seeds or any(not 0 <= s <= SEED_MAX for s in seeds):
        raise argparse.ArgumentTypeError(SEEDS_INVALID.format(value=text))
    return seeds


def selftest_main(argv: list[str] | None = None) -> int:
    """``rai-audit selftest``: print the table; exit 1 when a planted defect is missed."""
    from audit.cli import OneLineParser
    from audit.core.profiles import PROFILES

    parser = OneLineParser(prog="rai-audit selftest",
                                     description="Check that the installed auditors find the demo's planted defects "
                                                 "and stay quiet on clean controls.")
    parser.add_argument("--seeds", type=_seeds, default=[0, 1], help="comma-separated demo seeds (default 0,1)")
    parser.add_argument("--auditors", help="comma-separated auditors to run (default: all installed)")
    parser.add_argument("--task", choices=("text-classification", "token-classification"),
                        default="text-classification",
                        help="the demo to plant defects in: the sentiment classifier (default) or the NER tagger")
    parser.add_argument("--profile", choices=PROFILES,
                        help="audit at this profile's budgets (default: the selftest's own, smaller budgets)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    wanted = [a.strip() for a in args.auditors.split(",") if a.strip()] if args.auditors else None
    if args.task == "token-classification":
        from audit.selftest.ner_selftest import run_ner_selftest

        result = run_ner_selftest(seeds=args.seeds, auditors=wanted, progress=not args.quiet, profile=args.profile)
    else:
        result = run_selftest(seeds=args.seeds, auditors=wanted, progress=not args.quiet, profile=args.profile)
    print(result.format_table())
    return result.exit_code
