"""A whole audit with its auditors side by side (forked one-thread processes) finds what the same
audit one after another finds, explains the rows the attacks flipped, and counts every pass."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from audit import AuditConfig
from audit.auditors.base import Auditor, AuditorInfo
from audit.auditors.performance._auditor import PerformanceAuditor
from audit.cli import main
from audit.core.results import AuditorResult, Metric
from audit.runner import PARTIAL_DIR, run_audit

BUDGETS = {
    "performance": {"n_bootstrap": 50},
    "fairness": {"n_bootstrap": 50},
    "explainability": {"explain_examples": 6, "interesting_examples": 4, "n_steps": 16, "sanity_examples": 3,
                       "sanity_stages": 2},
    "robustness": {"attack_examples": 6, "invariance_examples": 40},
    "privacy": {"mia_examples": 60, "n_bootstrap": 50},
}


def _audit(build: Any, out: Any, processes: int) -> dict[str, Any]:
    config = AuditConfig(model=str(build.model_dir), data=str(build.eval_path), train_data=str(build.train_path),
                         out=str(out), limit=160, profile="quick", options=BUDGETS, auditor_processes=processes,
                         sensitive=["age_group"])
    run_audit(config, progress=False)
    assert not multiprocessing.active_children()
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_side_by_side_finds_what_one_after_another_finds(demo_planted: Any, tmp_path: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import audit.report.html as html

    predrawn: list[str] = []
    real = html.predraw
    monkeypatch.setattr(html, "predraw", lambda figs: (predrawn.extend(f.name for f in figs), real(figs))[1])
    apart = _audit(demo_planted, tmp_path / "apart", 2)
    # While the auditors ran, the run's own process drew sections' figures for the report (those of
    # the last section to finish are drawn at the end, with any it had no time for).
    figures = [f["name"] for r in apart["results"] for f in r["figures"]]
    assert predrawn and set(predrawn) <= set(figures)
    page = (tmp_path / "apart" / "report.html").read_text()
    assert page.count('<figure class="chart"') == len(figures) and "could not be drawn" not in page
    monkeypatch.undo()
    alone = _audit(demo_planted, tmp_path / "alone", 1)
    assert apart["metadata"]["engine"]["auditor_processes"] == 2
    assert alone["metadata"]["engine"]["auditor_processes"] == 1
    assert [r["auditor"] for r in apart["results"]] == [r["auditor"] for r in alone["results"]]
    for a, b in zip(apart["results"], alone["results"], strict=True):
        assert a["status"] == b["status"] == "ok", (a["auditor"], a.get("reason"), b.get("reason"))
        assert [(f["severity"], f["title"]) for f in a["findings"]] == [(f["severity"], f["title"])
                                                                         for f in b["findings"]], a["auditor"]
        ma = {(m["name"], m.get("slice")): m["value"] for m in a["metrics"]}
        mb = {(m["name"], m.get("slice")): m["value"] for m in b["metrics"]}
        assert ma.keys() == mb.keys(), a["auditor"]
        for key, value in ma.items():  # torch on one thread against two: ~1e-6 on a logit
            assert (value is None and mb[key] is None) or value == pytest.approx(mb[key], abs=1e-4), (a["auditor"], key)
    # Explainability ran beside robustness yet explained the rows its attacks flipped, as one after another.
    rows = {r["auditor"]: r for r in apart["results"]}["explainability"]["extra"]["explained"]
    sources = [r.get("source") for r in rows]
    assert sources == [r.get("source") for r in {r["auditor"]: r for r in alone["results"]}["explainability"]
                       ["extra"]["explained"]]
    assert any(s not in ("sample", None) for s in sources), sources
    # The passes of the forked processes are counted in the run's engine counters.
    assert apart["metadata"]["engine"]["rows_scored"] >= alone["metadata"]["engine"]["rows_scored"] > 160
    assert apart["metadata"]["timings"]["auditors"] > 0


@pytest.mark.parametrize("value", ["-1", "1025", "two"])
def test_a_bad_auditor_processes_is_one_line_naming_the_option(value: str, capsys: Any, tmp_path: Any) -> None:
    code = main(["run", "m", "--data", "d.csv", "--out", str(tmp_path / "o"), "--auditor-processes", value])
    err = capsys.readouterr().err
    assert code == 2 and "auditor" in err and "processes" in err and err.count("\n") == 1, err


class _WaitsThenInterrupts(Auditor):
    """Raises KeyboardInterrupt (an interrupted run) once performance's finished section is saved."""

    name = "interrupting"
    metric_names = frozenset({"x"})
    cost = 5.0

    def _run(self, ctx: Any) -> Any:
        saved = Path(ctx.config.out) / PARTIAL_DIR / "performance.json"
        deadline = time.monotonic() + 60
        while not saved.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt


class _Quick(Auditor):
    name = "quick"
    metric_names = frozenset({"x"})

    def _run(self, ctx: Any) -> Any:
        return AuditorResult(auditor=self.name, metrics=(Metric("x", float(os.getpid())),))


class _Quick2(_Quick):
    name = "quick2"


def test_an_interrupt_side_by_side_keeps_the_finished_sections_for_resume(demo_planted: Any, tmp_path: Any,
                                                                          monkeypatch: Any) -> None:
    reg = {c.name: AuditorInfo(c.name, f"tests:{c.__name__}", "tests", cls=c)
           for c in (PerformanceAuditor, _WaitsThenInterrupts, _Quick, _Quick2)}
    monkeypatch.setattr("audit.runner.discover", lambda: reg)
    cfg = dict(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), out=str(tmp_path / "o"), limit=100,
               auditor_processes=2, options={"performance": {"n_bootstrap": 0}})
    with pytest.raises(KeyboardInterrupt):
        run_audit(AuditConfig(**cfg, auditors=["performance", "interrupting"]), progress=False)
    assert not multiprocessing.active_children()
    assert (tmp_path / "o" / PARTIAL_DIR / "performance.json").is_file()
    report = run_audit(AuditConfig(**cfg, auditors=["performance", "quick", "quick2"], resume=True), progress=False)
    assert report.metadata["resumed"] == ["performance"]
    assert [r.status for r in report.results] == ["ok", "ok", "ok"]
    pids = {report.result(name).metrics[0].value for name in ("quick", "quick2")}
    assert os.getpid() not in pids and report.metadata["engine"]["auditor_processes"] == 2  # forked
    assert not (tmp_path / "o" / PARTIAL_DIR).exists()


class _Sleeps(Auditor):
    name = "sleeps"
    metric_names = frozenset({"x"})

    def _run(self, ctx: Any) -> Any:
        time.sleep(1.5)
        return AuditorResult(auditor=self.name, metrics=(Metric("x", 1.0),))


class _Unpicklable(Auditor):
    name = "unpicklable"
    metric_names = frozenset({"x"})

    def _run(self, ctx: Any) -> Any:
        return AuditorResult(auditor=self.name, metrics=(Metric("x", 2.0),), extra={"f": lambda: 1})


@pytest.mark.parametrize("processes", [1, 2])
def test_side_by_side_or_not_a_run_from_another_thread_and_an_unpicklable_result_end_alike(
        processes: int, demo_planted: Any, tmp_path: Any, monkeypatch: Any) -> None:
    """From a thread other than the main one, --timeout cannot apply (SIGALRM): not in forked
    processes either. A plugin's result that does not pickle is reported as one after another
    (its reported form, the lambda as text), not failed for travelling between processes."""
    reg = {c.name: AuditorInfo(c.name, f"tests:{c.__name__}", "tests", cls=c) for c in (_Sleeps, _Unpicklable)}
    monkeypatch.setattr("audit.runner.discover", lambda: reg)
    config = AuditConfig(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path), limit=50,
                         out=str(tmp_path / "o"), timeout=0.5, auditor_processes=processes)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("report", run_audit(config, progress=False)))
    thread.start()
    thread.join(120)
    report = box["report"]
    assert report.metadata["engine"]["auditor_processes"] == processes
    assert [(r.auditor, r.status) for r in report.results] == [("sleeps", "ok"), ("unpicklable", "ok")]
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["results"][1]["extra"]["f"].startswith("<function")
