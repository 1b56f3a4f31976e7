"""`rai-audit selftest`: the installed auditors find the demo's planted defects, stay quiet on the
clean controls, and a missed (or unchecked) defect gives exit code 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.selftest import selftest
from audit.selftest.selftest import ControlRow, DefectRow, SelftestResult, run_selftest, selftest_main

SCORED = ("fairness", "explainability", "privacy", "robustness")


def _installed_scored() -> list[str]:
    from audit.auditors.base import discover

    registry = discover()
    return [a for a in SCORED if a in registry and registry[a].cls is not None]


@pytest.fixture(scope="module")
def seed0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("selftest")


@pytest.fixture(scope="module")
def seed0(seed0_dir: Path) -> tuple[SelftestResult, list[str]]:
    names = _installed_scored()
    return run_selftest(seeds=(0,), auditors=names, workdir=seed0_dir, progress=False), names


def test_installed_auditors_find_every_planted_defect(seed0: tuple[SelftestResult, list[str]]) -> None:
    result, names = seed0
    assert "privacy" in names  # on main at least
    assert {r.auditor for r in result.rows} == set(names)
    assert all(r.checked and r.found for r in result.rows), result.format_table()
    memorised = next(r for r in result.rows if r.defect == "memorised_train")
    auc = float(memorised.evidence.split("mia_auc ")[1].split()[0])
    assert auc > selftest.MIA_AUC_MIN
    assert result.recall == 1.0 and result.exit_code == 0


def test_clean_controls_raise_no_false_alarm(seed0: tuple[SelftestResult, list[str]]) -> None:
    result, names = seed0
    assert {c.auditor for c in result.controls} == set(names)
    assert all(c.checked and not c.flagged for c in result.controls), result.format_table()
    assert result.false_alarms == 0
    table = result.format_table()
    assert "Recall" in table and "false alarms 0/" in table and "memorised_train" in table
    # The distribution-shift control: the raw attack separates the sets, the verdict does not follow.
    (shift,) = [c for c in result.controls if c.defect == selftest.SHIFT_CONTROL]
    assert shift.auditor == "privacy" and "no warn/fail leakage finding" in shift.evidence
    assert float(shift.evidence.split("raw loss-attack mia_auc ")[1].split(";")[0]) > selftest.MIA_AUC_MIN
    assert selftest.SHIFT_CONTROL in table


def test_robustness_finds_the_emphasis_shortcut_and_not_on_the_control(
        seed0: tuple[SelftestResult, list[str]]) -> None:
    result, names = seed0
    if "robustness" not in names:
        pytest.skip("the robustness auditor is not installed")
    (found,) = [r for r in result.rows if r.defect == "emphasis_shortcut"]
    (control,) = [c for c in result.controls if c.defect == "emphasis_shortcut"]
    assert found.auditor == control.auditor == "robustness"
    flips, rows = map(int, found.evidence.split(" flips ")[1].split()[0].split("/"))
    assert found.found and flips / rows > 0.2 and "1 warn finding(s) for it" in found.evidence, found.evidence
    flips, rows = map(int, control.evidence.split(" flips ")[1].split()[0].split("/"))
    assert control.checked and not control.flagged and flips / rows <= 0.05, control.evidence
    assert rows >= 50 and "0 warn finding(s) for it" in control.evidence


def test_checks_read_what_was_planted_from_planted_json(seed0: tuple[SelftestResult, list[str]],
                                                        seed0_dir: Path) -> None:
    """The evidence names the group, the token and the perturbation the builder wrote to
    planted.json, and a check judges whatever planted facts it is given."""
    import json

    from audit.core.results import AuditorResult, Finding, Metric, Table

    result, _ = seed0
    planted = json.loads((seed0_dir / "seed0-planted" / "planted.json").read_text(encoding="utf-8"))
    named = {"biased_group": planted["biased_group"]["group"], "trigger_token": planted["trigger_token"]["token"],
             "emphasis_shortcut": planted["emphasis_shortcut"]["perturbation"]}
    for row in result.rows:
        if row.defect in named:
            assert repr(named[row.defect]) in row.evidence, row
    # A robustness result where 'typo' is flagged and 'exclamation' is not.
    fake = AuditorResult(auditor="robustness", status="ok", metrics=(
        Metric("invariance_flip_rate", 0.3, 0.2, 0.4, higher_is_better=False, slice="typo"),
        Metric("invariance_flip_rate", 0.0, 0.0, 0.04, higher_is_better=False, slice="exclamation")),
        tables=(Table(name="invariance", columns=["perturbation", "rows", "flips"],
                      rows=[["typo", 100, 30], ["exclamation", 100, 0]]),),
        findings=(Finding("warn", "typo perturbations change 30% of predictions",
                          evidence={"perturbation": "typo", "flip_rate": 0.3}),))
    assert selftest._invariance(fake, {"perturbation": "exclamation"})[::2] == (False, True)
    assert selftest._invariance(fake, {"perturbation": "typo"})[::2] == (True, True)
    assert selftest._invariance(fake, {"perturbation": "number"})[::2] == (False, False)  # did not run


def test_distribution_shift_control_catches_an_auditor_blind_to_the_confound(
        demo_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With blind baselines that see nothing (every score at chance), the margin is the raw AUC
    minus 0.5: the behaviour before blind baselines existed. The control must then be flagged."""
    import numpy as np

    from audit.auditors.privacy import _blind_baselines
    from audit.selftest.demo import build_shifted_control

    shifted = build_shifted_control(demo_clean, tmp_path / "shifted", seed=0)
    report = selftest._audit(shifted, names=["privacy"], seed=0, out=tmp_path / "a")
    assert selftest._privacy_shift_control(report.result("privacy"), {})[::2] == (False, True)
    monkeypatch.setattr(_blind_baselines, "blind_scores",
                        lambda features, y, *, seed: {"length_tokens": np.zeros(len(y))})
    report = selftest._audit(shifted, names=["privacy"], seed=0, out=tmp_path / "b")
    flagged, evidence, checked = selftest._privacy_shift_control(report.result("privacy"), {})
    assert checked and flagged, evidence


def test_an_auditor_that_finds_nothing_fails_the_selftest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An insensitive privacy auditor (thresholds it can never exceed) misses the memorised split."""
    monkeypatch.setitem(selftest.SELFTEST_OPTIONS, "privacy",
                        {**selftest.SELFTEST_OPTIONS["privacy"], "auc_max": 1.0, "tpr_at_1pct_fpr_max": 1.0})
    result = run_selftest(seeds=(0,), auditors=["privacy"], workdir=tmp_path, progress=False)
    (row,) = result.rows
    assert row.checked and not row.found and "0 warn/fail MIA finding" in row.evidence
    assert result.exit_code == 1 and result.recall == 0.0
    assert "MISSED" in result.format_table()


def test_a_defect_not_checked_counts_as_missed() -> None:
    result = SelftestResult(
        rows=[DefectRow("memorised_train", 0, "privacy", True, "auc 0.8", 1.0),
              DefectRow("biased_group", 0, "fairness", False, "not installed: No module named x", 0.0, checked=False)],
        controls=[ControlRow("memorised_train", 0, "privacy", True, "1 warn/fail MIA", 1.0)])
    assert result.recall == 0.5 and result.false_alarms == 1 and result.exit_code == 1
    table = result.format_table()
    assert "NOT CHECKED" in table and "FLAGGED" in table and "counts as missed" in table
    assert SelftestResult().exit_code == 1  # nothing checked is not a pass


def test_main_rejects_bad_seeds_and_unknown_auditors(capsys: pytest.CaptureFixture[str]) -> None:
    from audit.errors import AuditInputError

    with pytest.raises(SystemExit) as exc:
        selftest_main(["--seeds", "zero"])
    assert exc.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err
    with pytest.raises(AuditInputError, match="unknown auditor 'privcy' \\(did you mean 'privacy'\\?\\)"):
        selftest_main(["--auditors", "privcy", "--quiet"])


def test_main_prints_the_table_and_returns_the_exit_code(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, Any] = {}

    def fake(**kwargs: Any) -> SelftestResult:
        seen.update(kwargs)
        return SelftestResult(rows=[DefectRow("memorised_train", 3, "privacy", True, "auc 0.8", 1.0)])

    monkeypatch.setattr(selftest, "run_selftest", fake)
    assert selftest_main(["--seeds", "3,4", "--auditors", "privacy", "--quiet"]) == 0
    assert seen == {"seeds": [3, 4], "auditors": ["privacy"], "progress": False, "profile": None}
    assert "memorised_train" in capsys.readouterr().out
    assert selftest_main(["--seeds", "3", "--profile", "quick", "--quiet"]) == 0
    assert seen["profile"] == "quick"
    with pytest.raises(SystemExit) as exc:
        selftest_main(["--profile", "fast"])
    assert exc.value.code == 2 and "'fast'" in capsys.readouterr().err


def test_under_a_profile_the_selftest_leaves_the_budgets_to_it() -> None:
    """``selftest --profile P`` checks P's budgets: the options a profile sets are dropped from the
    selftest's own (smaller) ones; the rest (recipes, tolerances, switches) are kept."""
    from audit.core.profiles import BUDGETS
    from audit.selftest.selftest import SELFTEST_OPTIONS, _options

    names = ["explainability", "robustness", "privacy"]
    own, under = _options(names), _options(names, profile="quick")
    budgeted = {(b.auditor, b.option) for b in BUDGETS}
    for name in names:
        dropped = set(own[name]) - set(under[name])
        assert dropped and all((name, k) in budgeted for k in dropped)
        assert all(under[name][k] == SELFTEST_OPTIONS[name][k] for k in under[name])
    assert under["robustness"]["recipes"] == ["deepwordbug"] and "attack_examples" not in under["robustness"]


@pytest.mark.slow
def test_full_selftest_on_the_second_seed(tmp_path: Path) -> None:
    """Every installed auditor on the second seed (seed 0 is the module's ``seed0`` fixture, checked
    by the tests above: together, seeds 0 and 1 at half the cost of running seed 0 twice)."""
    result = run_selftest(seeds=(1,), workdir=tmp_path, progress=False)
    installed = _installed_scored()
    assert all(r.found for r in result.rows if r.auditor in installed), result.format_table()
    assert result.false_alarms == 0, result.format_table()
    assert result.exit_code == (0 if len(installed) == len(SCORED) else 1)
