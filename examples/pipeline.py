"""Run rai-audit auditors from Python, e.g. at the end of a training script.

    python examples/pipeline.py MODEL_DIR EVAL.csv [OUT_DIR]

Without arguments it builds the demo model first (offline, ~15 s).
"""

from __future__ import annotations

import sys
import tempfile

from audit import AuditConfig, build_demo, run_audit


def main() -> int:
    if len(sys.argv) >= 3:
        model, data = sys.argv[1], sys.argv[2]
        out = sys.argv[3] if len(sys.argv) > 3 else "rai-audit-report"
        train = None
    else:
        build = build_demo(tempfile.mkdtemp(prefix="rai-demo-"), seed=0)
        model, data, train, out = str(build.model_dir), str(build.eval_path), str(build.train_path), tempfile.mkdtemp()
    config = AuditConfig(
        model=model,
        data=data,
        train_data=train,
        out=out,
        auditors=["performance"],           # or None for every installed auditor
        thresholds=["performance.accuracy >= 0.6"],
        options={"performance": {"n_bootstrap": 500}},
        overwrite=True,
    )
    report = run_audit(config, progress=False)
    accuracy = report.result("performance").metric("accuracy")
    print(f"accuracy {accuracy.value:.3f} (95% CI {accuracy.ci_low:.3f}-{accuracy.ci_high:.3f})")
    for auditor, finding in report.findings():
        print(f"[{finding.severity}] {auditor}: {finding.title}")
    print(f"report written to {out}/report.html")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
