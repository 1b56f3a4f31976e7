"""Plugin discovery: lazy, duplicate names and broken plugins reported, never fatal."""

from __future__ import annotations

from importlib import metadata

import pytest

from audit.auditors import base
from audit.auditors.base import Auditor, discover
from audit.core.options import Option
from audit.core.results import AuditorResult, Metric


class GoodAuditor(Auditor):
    """A third-party plugin as a user writes one: options, metric names and its own template."""

    name = "good"
    description = "a test auditor"
    params = {"level": Option(kind="int", min=0, default=1, help="a level")}
    metric_names = frozenset({"level"})
    template = "plugin_templates/toy_section.html.j2"  # beside this module

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("level", float(self.options["level"])),))


class RaisingAuditor(Auditor):
    name = "raising"
    metric_names = frozenset({"x"})

    def _run(self, ctx):
        raise ValueError("boom")


class InputRejectingAuditor(Auditor):
    """Finds, while running, that the user's input is wrong (as the README tells plugin authors)."""

    name = "rejecting"
    metric_names = frozenset({"x"})

    def _run(self, ctx):
        from audit.errors import AuditInputError

        raise AuditInputError("option rejecting.table: the file names no such column")


class NotAnAuditor:
    name = "impostor"


class NoMetricNames(Auditor):
    name = "nometrics"

    def _run(self, ctx):
        return AuditorResult(auditor=self.name)


class BadRequires(NoMetricNames):
    name = "badrequires"
    metric_names = frozenset({"x"})
    requires = frozenset({"labels", "telepathy"})


class BadOptionSpec(NoMetricNames):
    name = "badoption"
    metric_names = frozenset({"x"})
    params = {"n": Option(kind="int", min=1, default=0), "m": {"kind": "int"}}


class MissingTemplate(NoMetricNames):
    name = "notemplate"
    metric_names = frozenset({"x"})
    template = "nowhere/section.html.j2"


class BadTasks(NoMetricNames):
    name = "badtasks"
    metric_names = frozenset({"x"})
    tasks = frozenset({"image-classification"})


def _fake_entry_points(monkeypatch, specs):
    eps = [metadata.EntryPoint(name, value, base.ENTRY_POINT_GROUP) for name, value in specs]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group: [e for e in eps if e.group == group])


def test_broken_duplicate_and_impostor_plugins_are_reported(monkeypatch):
    _fake_entry_points(monkeypatch, [
        ("good", "tests.test_registry:GoodAuditor"),
        ("missing", "no_such_module:Thing"),
        ("impostor", "tests.test_registry:NotAnAuditor"),
        ("raising", "tests.test_registry:RaisingAuditor"),
        ("raising", "tests.test_registry:GoodAuditor"),
    ])
    found = discover()
    assert found["good"].cls is GoodAuditor and not found["good"].error
    assert "failed to load" in found["missing"].error and found["missing"].cls is None
    assert "not a subclass" in found["impostor"].error
    assert "registered twice" in found["raising"].error


def test_a_broken_plugin_contract_is_reported_at_discovery(monkeypatch):
    _fake_entry_points(monkeypatch, [
        ("nometrics", "tests.test_registry:NoMetricNames"), ("badrequires", "tests.test_registry:BadRequires"),
        ("badoption", "tests.test_registry:BadOptionSpec"), ("notemplate", "tests.test_registry:MissingTemplate"),
        ("badtasks", "tests.test_registry:BadTasks"),
    ])
    found = discover()
    assert all(info.cls is None for info in found.values())
    assert "declares no metric_names" in found["nometrics"].error
    assert "telepathy" in found["badrequires"].error
    assert "default of option 'n'" in found["badoption"].error
    assert "option 'm' is not declared" in found["badoption"].error
    assert "template 'nowhere/section.html.j2' not found" in found["notemplate"].error
    assert "tasks image-classification unknown" in found["badtasks"].error


def test_an_auditor_meets_a_model_of_a_task_it_does_not_support_as_a_skipped_section():
    """A plugin written for text classifiers is skipped on a token classifier, with the reason."""
    from types import SimpleNamespace

    from audit.core.context import AuditContext

    ctx = AuditContext(config=SimpleNamespace(seed=0), target=SimpleNamespace(task="token-classification"),
                       data=None, progress_enabled=False)
    result = GoodAuditor().run(ctx)
    assert result.status == "skipped"
    assert result.reason == "the model is a token-classification model; this auditor supports text-classification only"


def test_a_plugin_is_discovered_validated_run_and_rendered_with_its_own_template(
        monkeypatch, demo_planted, tmp_path):
    from audit import AuditConfig, run_audit
    from audit.errors import AuditInputError

    _fake_entry_points(monkeypatch, [("good", "tests.test_registry:GoodAuditor"),
                                     ("performance", "audit.auditors.performance._auditor:PerformanceAuditor")])
    with pytest.raises(AuditInputError, match="option good.level: expected an integer >= 0"):
        run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path),
                              out=str(tmp_path / "x"), options={"good": {"level": -1}}), progress=False)
    with pytest.raises(AuditInputError, match="auditor 'good' has no metric 'levl'"):
        run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path),
                              out=str(tmp_path / "x"), thresholds=["good.levl >= 1"]), progress=False)
    report = run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=50,
                                   out=str(tmp_path / "out"), auditors=["good"], options={"good": {"level": 7}},
                                   thresholds=["good.level >= 5"]), progress=False)
    assert report.passed and report.result("good").metric("level").value == 7
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Toy plugin section: level 7" in html


def test_discovery_without_loading_imports_nothing(monkeypatch):
    _fake_entry_points(monkeypatch, [("missing", "no_such_module:Thing")])
    info = discover(load=False)["missing"]
    assert info.cls is None and info.error == ""


def test_installed_built_ins_are_registered():
    names = set(discover(load=False))
    assert {"performance", "fairness", "explainability", "robustness", "privacy"} <= names


def test_an_auditor_that_raises_becomes_a_failed_section(demo_planted, planted_target, context_factory):
    result = RaisingAuditor().run(context_factory(demo_planted, planted_target))
    assert result.status == "failed" and "ValueError: boom" in result.reason
    assert "traceback" in result.extra


def test_an_input_error_raised_while_running_stops_the_run_with_exit_2(monkeypatch, demo_planted, tmp_path, capsys):
    """Not a failed section: the user's mistake stops the audit with one line, exit 2 (README,
    "Auditors"), and no report is written."""
    from audit.cli import main

    _fake_entry_points(monkeypatch, [("rejecting", "tests.test_registry:InputRejectingAuditor")])
    out = tmp_path / "out"
    code = main(["run", str(demo_planted.model_dir), "--data", str(demo_planted.eval_path), "--out", str(out),
                 "--auditors", "rejecting", "--limit", "20", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "rai-audit: error: option rejecting.table: the file names no such column"
    assert not (out / "results.json").exists() and not (out / "report.html").exists()


def test_unknown_option_is_named_with_suggestion():
    from audit.errors import AuditInputError

    with pytest.raises(AuditInputError, match=r"unknown option 'levle' \(did you mean 'level'\?\)"):
        GoodAuditor(levle=2)
