"""Breaking the plugin contract as a third-party author would (issue 14 review).

Each test states the behaviour the README / base.py promise. Where the code does not keep the
promise the test is ``xfail(strict=True)`` with the finding as its reason, so it fails loudly the
day the behaviour is fixed (and the marker must then go).
"""

from __future__ import annotations

import json
import math
import os
from importlib import metadata
from pathlib import Path

import pytest

import audit
from audit.auditors import base
from audit.auditors.base import Auditor, discover
from audit.core.options import Option
from audit.core.results import AuditorResult, Figure, Finding, Metric, SectionPart, Table

HERE = Path(__file__).resolve().parent
README = (HERE.parent / "README.md").read_text(encoding="utf-8")
HOSTILE = "<script>alert(1)</script>"


def _fake_entry_points(monkeypatch, specs):
    eps = [metadata.EntryPoint(name, value, base.ENTRY_POINT_GROUP) for name, value in specs]
    monkeypatch.setattr(base.metadata, "entry_points", lambda group: [e for e in eps if e.group == group])


def _ep(cls_name: str) -> str:
    return f"tests.test_plugin_contract:{cls_name}"


# --- a plugin written from the README ---------------------------------------------------------


def _count_part(ctx) -> SectionPart:
    n = len(ctx.data)
    return SectionPart(metrics=(Metric("row_count", float(n)),), extra={"notes": ["counted rows"]})


def _share_part(ctx, threshold: float) -> SectionPart:
    probs = ctx.predictions.probs.max(axis=1)
    share = float((probs >= threshold).mean())
    fig = Figure.bar("confident_share", labels=["confident", "unsure"], values=[share, 1 - share],
                     title="Confident predictions", reference=threshold)
    return SectionPart(metrics=(Metric("confident_share", share, higher_is_better=True),), figures=(fig,),
                       extra={"notes": ["shares"], "greeting": "hello"})


class ReadmePlugin(Auditor):
    """What README "Auditors" lets a reader write (plus what base.py had to tell them)."""

    name = "readme"
    title = "README plugin"
    description = "a plugin written from the README"
    params = {"threshold": Option(kind="float", min=0, max=1, default=0.9, help="confidence cut-off")}
    metric_names = frozenset({"row_count", "confident_share"})
    template = "plugin_templates/break_readme.html.j2"
    tasks = frozenset({"text-classification"})

    def _run(self, ctx):
        part = SectionPart.merge(_count_part(ctx), _share_part(ctx, self.options["threshold"]))
        return part.to_result(auditor=self.name)


def test_the_public_api_exports_what_a_plugin_needs():
    """A plugin declares ``params`` as Option values: ``audit`` re-exports Option with the rest."""
    needed = {"Auditor", "SectionPart", "Figure", "Metric", "Finding", "Table", "AuditorResult", "AuditInputError"}
    assert needed <= set(audit.__all__)
    assert "Option" in audit.__all__, "audit.Option is missing from the public API"


def test_readme_documents_the_whole_plugin_contract():
    section = README.split("## Auditors", 1)[1].split("\n## ", 1)[0]
    for word in ("metric_names", "params", "Option", "template", "consumes", "ctx.upstream", "requires",
                 '[project.entry-points."rai_audit.auditors"]'):
        assert word in section, word


def test_a_readme_plugin_is_discovered_run_and_rendered(monkeypatch, demo_planted, tmp_path):
    from audit import AuditConfig, run_audit
    from audit.core.schema import validate_results

    _fake_entry_points(monkeypatch, [("readme", _ep("ReadmePlugin"))])
    info = discover()["readme"]
    assert info.cls is ReadmePlugin and info.error == ""
    out = tmp_path / "out"
    report = run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=40,
                                   out=str(out), auditors=["readme"], options={"readme": {"threshold": 0.5}},
                                   thresholds=["readme.row_count >= 40"]), progress=False)
    result = report.result("readme")
    assert result.status == "ok", result.reason
    assert result.metric("row_count").value == 40
    assert result.extra["notes"] == ["counted rows", "shares"]  # lists joined in part order
    assert report.passed
    data = json.loads((out / "results.json").read_text())
    validate_results(data)
    html = (out / "report.html").read_text()
    assert "README plugin: hello" in html and "<svg" in html


def test_list_options_shows_a_plugins_declared_options(monkeypatch, capsys):
    from audit.cli import main

    _fake_entry_points(monkeypatch, [("readme", _ep("ReadmePlugin"))])
    assert main(["list", "--options"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "readme.threshold" in x)
    assert ">= 0 and <= 1" in line and "default 0.9" in line and "confidence cut-off" in line


def test_a_policy_naming_a_metric_the_plugin_lacks_exits_2_before_the_model_loads(monkeypatch, demo_planted,
                                                                                     tmp_path, capsys):
    from audit.cli import main
    from tests.conftest import forbid_model_load

    _fake_entry_points(monkeypatch, [("readme", _ep("ReadmePlugin"))])
    forbid_model_load(monkeypatch)
    code = main(["run", str(demo_planted.model_dir), "--data", str(demo_planted.eval_path), "--out",
                 str(tmp_path / "o"), "--auditors", "readme", "--threshold", "readme.row_cont >= 1", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "auditor 'readme' has no metric 'row_cont'" in err and "row_count" in err


# --- broken plugins: reported at discovery ----------------------------------------------------


class _Base(Auditor):
    name = "_base"
    metric_names = frozenset({"x"})

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("x", 1.0),))


class MetricNamesString(_Base):
    name = "m_str"
    metric_names = "accuracy"  # a str, not a set of str


class MetricNamesInts(_Base):
    name = "m_int"
    metric_names = frozenset({1, 2})


class MetricNamesBadCase(_Base):
    name = "m_case"
    metric_names = frozenset({"Accuracy", "f1-score"})


class RequiresString(_Base):
    name = "r_str"
    requires = "labels"  # a str: iterated as letters


class TasksString(_Base):
    name = "t_str"
    tasks = "text-classification"


class ParamsNotOption(_Base):
    name = "p_dict"
    params = {"n": {"kind": "int", "default": 1}}


class ParamsBadDefault(_Base):
    name = "p_default"
    params = {"rate": Option(kind="float", min=0, max=1, default=2.0)}


class ParamsNanDefault(_Base):
    name = "p_nan"
    params = {"rate": Option(kind="float", default=math.nan)}


@pytest.mark.parametrize(("cls_name", "fragment"), [
    ("MetricNamesString", "declares no metric_names"),
    ("MetricNamesInts", "not lower_snake_case"),
    ("MetricNamesBadCase", "not lower_snake_case"),
    ("RequiresString", "requires unknown input(s)"),
    ("TasksString", "tasks is not a non-empty set"),
    ("ParamsNotOption", "option 'n' is not declared with audit.core.options.Option"),
    ("ParamsBadDefault", "the default of option 'rate' fails"),
    ("ParamsNanDefault", "the default of option 'rate' fails"),
])
def test_a_broken_declaration_is_reported_at_discovery(monkeypatch, cls_name, fragment):
    cls = globals()[cls_name]
    _fake_entry_points(monkeypatch, [(cls.name, _ep(cls_name))])
    info = discover()[cls.name]
    assert info.cls is None and fragment in info.error


def test_an_option_of_an_unknown_kind_fails_the_plugins_import_and_is_reported(monkeypatch, tmp_path):
    mod = tmp_path / "bad_kind_plugin.py"
    mod.write_text("from audit.auditors.base import Auditor\nfrom audit.core.options import Option\n"
                   "class P(Auditor):\n    name = 'badkind'\n    metric_names = frozenset({'x'})\n"
                   "    params = {'n': Option(kind='integer', default=1)}\n    def _run(self, ctx):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(monkeypatch, [("badkind", "bad_kind_plugin:P")])
    info = discover()["badkind"]
    assert info.cls is None and "unknown option kind 'integer'" in info.error


def test_params_that_is_not_a_mapping_is_reported_with_the_contracts_message(monkeypatch, tmp_path):
    mod = tmp_path / "list_params_plugin.py"
    mod.write_text("from audit.auditors.base import Auditor\nfrom audit.core.options import Option\n"
                   "class P(Auditor):\n    name = 'p_list'\n    metric_names = frozenset({'x'})\n"
                   "    params = [('n', Option(kind='int', default=1))]\n    def _run(self, ctx):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _fake_entry_points(monkeypatch, [("p_list", "list_params_plugin:P")])
    info = discover()["p_list"]
    assert info.cls is None and "params is not a mapping" in info.error


class TraversalTemplate(_Base):
    name = "traversal"
    template = os.path.relpath("/etc/passwd", HERE)  # "../../../etc/passwd" from tests/


class AbsoluteTemplate(_Base):
    name = "absolute"
    template = "/etc/passwd"


@pytest.mark.skipif(not Path("/etc/passwd").is_file(), reason="needs /etc/passwd")
@pytest.mark.parametrize("cls_name", ["TraversalTemplate", "AbsoluteTemplate"])
def test_a_template_outside_the_plugins_folder_is_refused_at_discovery(monkeypatch, cls_name):
    cls = globals()[cls_name]
    _fake_entry_points(monkeypatch, [(cls.name, _ep(cls_name))])
    info = discover()[cls.name]
    assert info.cls is None and "template" in info.error


class ConsumesMissing(_Base):
    name = "c_missing"
    consumes = frozenset({"no_such_auditor"})


class CycleA(_Base):
    name = "cycle_a"
    consumes = frozenset({"cycle_b"})


class CycleB(_Base):
    name = "cycle_b"
    consumes = frozenset({"cycle_a"})


class ConsumesString(_Base):
    name = "c_str"
    consumes = "performance"


def test_consumes_that_is_a_string_is_reported_at_discovery(monkeypatch):
    _fake_entry_points(monkeypatch, [("c_str", _ep("ConsumesString"))])
    assert "consumes is not a set of auditor names" in discover()["c_str"].error


def test_a_consumes_cycle_is_reported_at_discovery(monkeypatch):
    _fake_entry_points(monkeypatch, [("cycle_a", _ep("CycleA")), ("cycle_b", _ep("CycleB"))])
    found = discover()
    assert found["cycle_a"].cls is None and "cycle" in found["cycle_a"].error


class FairnessClash(_Base):
    name = "fairness"


def test_a_plugin_reusing_a_built_in_name_cannot_disable_the_built_in(monkeypatch):
    from audit.auditors.fairness import FairnessAuditor

    _fake_entry_points(monkeypatch, [("fairness", "audit.auditors.fairness:FairnessAuditor"),
                                     ("fairness", _ep("FairnessClash"))])
    assert discover()["fairness"].cls is FairnessAuditor


class PluginAbort(BaseException):  # noqa: N818 - a plugin's own BaseException, as some libraries define
    pass


class RaisesBase(_Base):
    name = "raises_base"

    def _run(self, ctx):
        raise PluginAbort("plugin gave up")


class RaisesValue(_Base):
    name = "raises_value"

    def _run(self, ctx):
        raise ValueError("plugin bug")


class RaisesInput(_Base):
    name = "raises_input"

    def _run(self, ctx):
        from audit.errors import AuditInputError

        raise AuditInputError("option raises_input.column: no column 'x' in the eval data")


class SysExits(_Base):
    name = "sys_exits"

    def _run(self, ctx):
        raise SystemExit(0)


def _ctx():
    from types import SimpleNamespace

    from audit.core.context import AuditContext

    return AuditContext(config=SimpleNamespace(seed=0), target=SimpleNamespace(task="text-classification"),
                        data=[], progress_enabled=False)


def test_a_value_error_is_a_failed_section_and_an_input_error_escapes():
    from audit.errors import AuditInputError

    failed = RaisesValue().run(_ctx())
    assert failed.status == "failed" and failed.reason == "ValueError: plugin bug"
    with pytest.raises(AuditInputError, match="raises_input.column"):
        RaisesInput().run(_ctx())


@pytest.mark.parametrize("cls", [RaisesBase, SysExits])
def test_a_plugins_own_base_exception_is_a_failed_section(cls):
    result = cls().run(_ctx())
    assert result.status == "failed"


# --- what _run returns ------------------------------------------------------------------------


class Hostile(_Base):
    """NaN metrics, hostile strings everywhere, and a huge table."""

    name = "hostile"
    metric_names = frozenset({"x", "y"})

    def _run(self, ctx):
        fig = Figure.bar(f"bar{HOSTILE}", labels=[HOSTILE, "ok"], values=[0.5, math.nan],
                         title=HOSTILE, xlabel=HOSTILE, caption=HOSTILE)
        big = Table("big", ["n", HOSTILE], [[i, HOSTILE] for i in range(20_000)], title=HOSTILE)
        return AuditorResult(auditor=self.name, metrics=(Metric("x", math.nan, ci_low=-math.inf),
                                                        Metric("y", 1.0, description=HOSTILE)),
                             figures=(fig,), tables=(big,),
                             findings=(Finding("warn", HOSTILE, HOSTILE, {"k": HOSTILE}),),
                             extra={"note": HOSTILE})


def test_nan_hostile_strings_and_a_huge_table_keep_the_report_valid_and_escaped(monkeypatch, demo_planted, tmp_path):
    from audit import AuditConfig, run_audit
    from audit.core.schema import validate_results

    _fake_entry_points(monkeypatch, [("hostile", _ep("Hostile"))])
    out = tmp_path / "out"
    report = run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=20,
                                   out=str(out), auditors=["hostile"], thresholds=["hostile.x >= 0"]),
                       progress=False)
    assert report.result("hostile").status == "ok"
    assert not report.passed  # NaN never passes a gate
    data = json.loads((out / "results.json").read_text())
    validate_results(data)
    assert data["results"][0]["metrics"][0]["value"] is None
    html = (out / "report.html").read_text()
    assert HOSTILE not in html and "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    # The huge table is shown bounded in the report (data_table max_rows), whole in results.json.
    assert html.count("<tr") < 1_000 and len(data["results"][0]["tables"][0]["rows"]) == 20_000


class Duplicates(_Base):
    name = "dups"

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("x", 1.0), Metric("x", 0.0)))


def test_duplicate_metric_names_fail_the_section():
    result = Duplicates().run(_ctx())
    assert result.status == "failed" and "x" in result.reason


class Undeclared(_Base):
    name = "undeclared"

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("not_declared", 1.0),))


def test_an_undeclared_metric_fails_the_section():
    assert Undeclared().run(_ctx()).status == "failed"


class BadValue(_Base):
    name = "bad_value"

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("x", "0.9 (approx)"),))


def test_a_result_that_cannot_be_written_fails_its_section_not_the_audit():
    result = BadValue().run(_ctx())
    assert result.status == "failed"


class RaisingTemplate(_Base):
    name = "raising_tpl"
    template = "plugin_templates/break_raises.html.j2"

    def _run(self, ctx):
        return AuditorResult(auditor=self.name, metrics=(Metric("x", 1.0),), extra={"total": 1, "zero": 0})


def test_a_template_that_raises_is_a_failed_section_not_a_lost_report(monkeypatch, demo_planted, tmp_path):
    from audit import AuditConfig, run_audit

    _fake_entry_points(monkeypatch, [("raising_tpl", _ep("RaisingTemplate"))])
    out = tmp_path / "out"
    run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=20,
                          out=str(out), auditors=["raising_tpl"]), progress=False)
    assert (out / "report.html").is_file() and (out / "results.json").is_file()



def test_the_readme_plugin_example_runs_as_written(tmp_path):
    """The README's minimal plugin, executed as printed, passes the contract and runs."""
    from types import SimpleNamespace

    from audit.auditors.base import contract_problems

    code = README.split("# my_pkg/audit_plugin/__init__.py", 1)[1].split("```", 1)[0].split("\n", 1)[1]
    (tmp_path / "my_section.html.j2").write_text("rows: {{ result.metric('row_count').value }}")
    namespace: dict = {"__name__": "readme_plugin"}
    exec(compile(code, str(tmp_path / "plugin.py"), "exec"), namespace)  # noqa: S102 - our own README
    cls = namespace["RowCount"]
    cls.template_path = classmethod(lambda c: tmp_path / c.template)
    assert contract_problems(cls) == []
    ctx = SimpleNamespace(task="text-classification", data=[1, 2, 3], has=lambda r: True, seed_everything=lambda: None)
    result = cls(minimum=5).run(ctx)
    assert result.status == "ok", result.reason
    assert result.metric("row_count").value == 3 and result.findings[0].title == "only 3 rows"
