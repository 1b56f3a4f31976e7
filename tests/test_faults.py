"""Faults: a raising or slow auditor becomes a failed section; an interrupted run resumes."""

from __future__ import annotations

import json
import time

import pytest

from audit import AuditConfig, run_audit
from audit.auditors import base
from audit.auditors.base import Auditor, AuditorInfo
from audit.auditors.performance._auditor import PerformanceAuditor
from audit.core.options import Option
from audit.core.results import AuditorResult, Metric

RUNS: list[str] = []


class SlowAuditor(Auditor):
    name = "slow"
    metric_names = frozenset({"waited"})
    params = {"seconds": Option(kind="float", min=0, default=120.0)}

    def _run(self, ctx):
        RUNS.append(self.name)
        time.sleep(self.options["seconds"])
        return AuditorResult(auditor=self.name, metrics=(Metric("waited", self.options["seconds"]),))


class InterruptingAuditor(Auditor):
    name = "interrupting"
    metric_names = frozenset({"x"})

    def _run(self, ctx):
        RUNS.append(self.name)
        raise KeyboardInterrupt


class CountingPerformance(PerformanceAuditor):
    def _run(self, ctx):
        RUNS.append(self.name)
        return super()._run(ctx)


def _registry(monkeypatch, classes):
    reg = {c.name: AuditorInfo(c.name, f"tests:{c.__name__}", "tests", cls=c) for c in classes}
    monkeypatch.setattr("audit.runner.discover", lambda: reg)
    return reg


def test_timeout_fails_only_that_section(demo_planted, tmp_path, monkeypatch):
    _registry(monkeypatch, [CountingPerformance, SlowAuditor])
    cfg = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "o"),
                      limit=100, timeout=15.0, thresholds=["performance.accuracy >= 0.1"],
                      options={"performance": {"n_bootstrap": 0}})
    start = time.perf_counter()
    report = run_audit(cfg, progress=False)
    assert time.perf_counter() - start < 100  # the 120 s auditor was stopped
    slow = report.result("slow")
    assert slow.status == "failed" and "timeout of 15 s" in slow.reason
    assert report.result("performance").status == "ok" and report.passed
    assert json.loads((tmp_path / "o" / "results.json").read_text())["results"][1]["status"] == "failed"


def test_interrupted_run_keeps_finished_sections_and_resumes(demo_planted, tmp_path, monkeypatch):
    RUNS.clear()
    _registry(monkeypatch, [CountingPerformance, InterruptingAuditor])
    # One after another: RUNS is this process's record (side by side, see test_side_by_side_audit.py).
    cfg = dict(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "o"), limit=100,
               auditor_processes=1)
    with pytest.raises(KeyboardInterrupt):
        run_audit(AuditConfig(**cfg), progress=False)
    assert RUNS == ["performance", "interrupting"]
    assert (tmp_path / "o" / ".rai-audit-partial" / "performance.json").is_file()

    RUNS.clear()
    _registry(monkeypatch, [CountingPerformance, SlowAuditor])
    monkeypatch.setattr(SlowAuditor, "params", {"seconds": Option(kind="float", min=0, default=0.0)})
    report = run_audit(AuditConfig(**cfg, auditors=["performance", "slow"], resume=True), progress=False)
    assert RUNS == ["slow"]  # performance came from the interrupted run
    assert report.result("performance").status == "ok"
    assert not (tmp_path / "o" / ".rai-audit-partial").exists()  # cleaned once the report is written


def test_resume_ignores_sections_from_other_inputs(demo_planted, tmp_path, monkeypatch):
    RUNS.clear()
    _registry(monkeypatch, [CountingPerformance, InterruptingAuditor])
    cfg = dict(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "o"),
               auditor_processes=1)
    with pytest.raises(KeyboardInterrupt):
        run_audit(AuditConfig(**cfg, limit=100), progress=False)
    RUNS.clear()
    run_audit(AuditConfig(**cfg, limit=120, auditors=["performance"], resume=True), progress=False)
    assert RUNS == ["performance"]  # different rows: the old section is not reused


def test_discovery_is_used_by_default(monkeypatch):
    """With no registry given, the auditors come from the entry points (here: one fake plugin)."""
    from importlib import metadata

    from audit.runner import select_auditors

    ep = metadata.EntryPoint("slow", "tests.test_faults:SlowAuditor", base.ENTRY_POINT_GROUP)
    monkeypatch.setattr(base.metadata, "entry_points", lambda group: [ep] if group == ep.group else [])
    auditors, broken = select_auditors(AuditConfig(model="m", data="d.csv"))
    assert [type(a) for a in auditors] == [SlowAuditor] and broken == []


class SwallowingAuditor(Auditor):
    """Catches every Exception around slow work, as fairness's mitigation step did."""

    name = "swallowing"
    metric_names = frozenset({"waited"})

    def _run(self, ctx):
        RUNS.append(self.name)
        try:
            time.sleep(30)
        except Exception:  # noqa: BLE001 - the point of the test
            pass
        return AuditorResult(auditor=self.name, metrics=(Metric("waited", 30.0),))


def test_a_broad_except_inside_an_auditor_cannot_swallow_the_timeout(demo_planted, tmp_path, monkeypatch):
    _registry(monkeypatch, [SwallowingAuditor])
    start = time.perf_counter()
    report = run_audit(AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=50,
                                   out=str(tmp_path / "o"), timeout=0.5), progress=False)
    result = report.result("swallowing")
    assert result.status == "failed" and "timeout of 0.5 s" in result.reason
    assert time.perf_counter() - start < 25
