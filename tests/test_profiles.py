"""Profiles: one declared table of budgets; standard is exactly today's defaults, explicit options
win, the report and results.json say which profile ran and what it means for the intervals."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from audit import AuditConfig
from audit.auditors.base import discover
from audit.cli import main
from audit.core.profiles import BUDGETS, PROFILES, describe, endpoint_error, interval_note, profile_options
from audit.errors import AuditInputError
from audit.runner import run_audit, select_auditors, validate_results


def test_standard_is_exactly_each_auditors_declared_default() -> None:
    registry = discover()
    for b in BUDGETS:
        params = registry[b.auditor].cls.params
        assert b.option in params, f"{b.auditor}.{b.option} is not an option"
        assert b.standard == params[b.option].default, f"{b.auditor}.{b.option}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_value_is_a_valid_option_value(profile: str) -> None:
    registry = discover()
    for auditor, opts in profile_options(profile=profile).items():
        built = registry[auditor].cls(**opts)
        assert {k: built.options[k] for k in opts} == opts


def test_quick_spends_less_and_thorough_more_on_every_budget() -> None:
    def spend(b: Any, value: Any) -> float:  # a budget whose 0 means "all" ("(0: all)" in what it is)
        return math.inf if value == 0 and "(0: all)" in b.what else value

    for b in BUDGETS:
        quick, standard, thorough = (spend(b, b.value(p)) for p in ("quick", "standard", "thorough"))
        assert quick <= standard <= thorough, f"{b.auditor}.{b.option}"
        assert quick < thorough, f"{b.auditor}.{b.option} does not change with the profile"


def test_explicit_options_win_over_the_profile() -> None:
    config = AuditConfig(model="m", data="d", profile="quick", auditors=["explainability", "performance"],
                         options={"explainability": {"n_steps": 77}})
    auditors = {a.name: a for a in select_auditors(config)[0]}
    ex = auditors["explainability"].options
    assert ex["n_steps"] == 77  # the user's
    assert ex["explain_examples"] == 12 and ex["sanity_examples"] == 5  # the profile's
    assert auditors["performance"].options["n_bootstrap"] == 200
    described = {(b["auditor"], b["option"]): b for b in describe(profile="quick", options=config.options)["budgets"]}
    assert described[("explainability", "n_steps")] == {"auditor": "explainability", "option": "n_steps",
                                                        "what": "Integrated Gradients steps", "value": 77,
                                                        "overridden": True}
    assert described[("explainability", "explain_examples")]["overridden"] is False


def test_standard_profile_builds_the_same_auditors_as_no_profile() -> None:
    plain = {a.name: a.options for a in select_auditors(AuditConfig(model="m", data="d"))[0]}
    standard = {a.name: a.options for a in select_auditors(AuditConfig(model="m", data="d", profile="standard"))[0]}
    assert plain == standard


def test_an_unknown_profile_is_named_in_one_line(capsys: Any) -> None:
    with pytest.raises(AuditInputError, match=r"profile.*quick, standard, thorough"):
        AuditConfig(model="m", data="d", profile="fast")
    assert main(["run", "m", "--data", "d", "--profile", "fast"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--profile" in err and len(err.splitlines()) == 1


def test_endpoint_error_matches_a_monte_carlo_of_the_percentile_bootstrap() -> None:
    # The 2.5% quantile of B normal draws, repeated: its spread over the half-width 1.96 is the claim.
    rng = np.random.default_rng(0)
    for n in (200, 1000):
        lows = np.quantile(rng.standard_normal((4000, n)), 0.025, axis=1)
        measured = lows.std() / 1.959964
        assert measured == pytest.approx(endpoint_error(n), rel=0.08)
    assert endpoint_error(200) / endpoint_error(1000) == pytest.approx(np.sqrt(5))
    assert "±9.6%" in interval_note("quick") and "±4.3%" in interval_note("quick")


def test_the_report_and_results_json_record_the_profile(demo_planted: Any, tmp_path: Any) -> None:
    out = tmp_path / "r"
    config = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(out),
                         auditors=["performance"], limit=200, profile="quick",
                         options={"performance": {"n_bootstrap": 50}})
    run_audit(config, progress=False)
    data = json.loads((out / "results.json").read_text())
    validate_results(data)
    profile = data["metadata"]["profile"]
    assert profile["name"] == "quick" and data["metadata"]["config"]["profile"] == "quick"
    chosen = {(b["auditor"], b["option"]): b["value"] for b in profile["budgets"]}
    assert chosen[("performance", "n_bootstrap")] == 50 and chosen[("fairness", "n_bootstrap")] == 200
    card = (out / "README.md").read_text()
    assert "Profile **quick**" in card and "bootstrap resamples" in card
    html = (out / "report.html").read_text()
    assert "profile quick" in html and "(set by you)" in html and "Integrated Gradients steps" in html
