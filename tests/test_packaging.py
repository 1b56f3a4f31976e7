"""A wheel built from the repo carries its templates and schema: an installed rai-audit renders
a report without the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.core.results import AuditorResult, AuditReport, Metric, Table

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_renders_a_report_without_the_source_tree(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheel_dir), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(wheel_dir.glob("rai_audit-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert (site / "audit" / "templates" / "model_card.html.j2").is_file()
    assert (site / "audit" / "templates" / "sections" / "_generic.html.j2").is_file()
    for auditor in ("performance", "fairness", "explainability", "robustness", "privacy"):  # beside each auditor
        assert (site / "audit" / "auditors" / auditor / "section.html.j2").is_file(), auditor

    report = AuditReport(
        metadata=json.loads((ROOT / "tests" / "data" / "metadata.json").read_text()),
        results=[AuditorResult(auditor="performance", metrics=(Metric("accuracy", 0.9, 0.85, 0.95, True),),
                               tables=(Table("classification_report", ["class", "f1-score"], [["a", 0.9]]),))],
    )
    (tmp_path / "results.json").write_text(json.dumps(report.to_dict()))
    script = ("import json, sys, audit; from pathlib import Path; "
              "from audit.core.results import AuditReport; from audit.runner import write_report; "
              f"assert audit.__file__.startswith({str(site)!r}), audit.__file__; "
              "r = AuditReport.from_dict(json.loads(Path('results.json').read_text())); "
              "write_report(r, Path('out')); print(Path('out/report.html').read_text())")
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "f1-score" in proc.stdout and "0.900" in proc.stdout and "sec-performance" in proc.stdout
    assert "<h3>Headline metrics</h3>" in proc.stdout  # the performance partial, not the generic one
