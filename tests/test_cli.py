"""End to end through the command line: files written, schema valid, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from audit.cli import main
from audit.runner import validate_results
from tests._text import one_line


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def small_eval(demo_planted, tmp_path):
    """200 rows of the demo's eval data, to keep end-to-end runs quick."""
    path = tmp_path / "eval.csv"
    pd.read_csv(demo_planted.eval_path).iloc[:200].to_csv(path, index=False)
    return path


def test_run_writes_all_three_files_and_valid_json(demo_planted, small_eval, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = run_cli(capsys, "run", str(demo_planted.model_dir), "--data", str(small_eval), "--out", str(out),
                              "--auditors", "performance", "--threshold", "performance.accuracy >= 0.5", "--quiet")
    assert code == 0, stdout
    assert {p.name for p in out.iterdir()} >= {"report.html", "results.json", "README.md"}
    data = json.loads((out / "results.json").read_text())
    validate_results(data)
    assert data["passed"] is True and data["metadata"]["data"]["rows"] == 200
    assert data["results"][0]["auditor"] == "performance"
    # the gate's and the compliance map's verdicts are stored, for a pipeline to read
    (rule,) = data["policy"]
    assert (rule["kind"], rule["auditor"], rule["metric"], rule["outcome"]) == ("threshold", "performance", "accuracy",
                                                                                "pass")
    art15 = next(c for c in data["compliance"]["clauses"] if c["id"] == "EU AI Act Art. 15")
    assert art15["verdict"] == "evidence" and {"metric": "accuracy", "policy_outcome": "pass"}.items() <= next(
        e for e in art15["evidence"] if e["metric"] == "accuracy").items()
    html = (out / "report.html").read_text()
    assert "Content-Security-Policy" in html and "<script" not in html and "Classification report" in one_line(html)
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "model-index:" in card and "type: accuracy" in one_line(card)


def test_failed_threshold_exits_1_and_existing_report_is_kept(demo_planted, small_eval, tmp_path, capsys):
    out = tmp_path / "report"
    args = ["run", str(demo_planted.model_dir), "--data", str(small_eval), "--out", str(out), "--auditors",
            "performance", "--quiet"]
    code, stdout, _ = run_cli(capsys, *args, "--threshold", "performance.accuracy >= 0.99")
    assert code == 1 and "FAILED" in stdout
    before = (out / "results.json").read_text()
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "pass --overwrite" in err
    assert (out / "results.json").read_text() == before
    code, _, err = run_cli(capsys, *args, "--overwrite", "--threshold", "performance.acuracy >= 0.1")
    assert code == 2 and "no metric 'acuracy' (did you mean 'accuracy'?)" in err  # caught before the run
    code, out_text, _ = run_cli(capsys, *args, "--overwrite", "--threshold", "performance.accuracy >= 0.99: warn",
                                "--format", "github")
    assert code == 0  # a warn rule reports but does not fail the run
    assert "::warning title=rai-audit policy::performance.accuracy >= 0.99: warn: fail" in out_text


@pytest.mark.parametrize(("case", "message"), [
    ("missing_path", "data file not found"),
    ("missing_column", "no column 'txt' (text) (did you mean 'text'?)"),
    ("unknown_labels", "labels 'meh' in column 'label' are not among the model's labels"),
    ("empty_file", "the file is empty"),
    ("no_tokenizer", "has no tokenizer files"),
    ("bad_threshold", "cannot read rule"),
    ("unknown_auditor", "unknown auditor 'fairnes' (did you mean 'fairness'?)"),
    ("unknown_option", "unknown option 'n_boot'"),
    ("missing_model", "model folder not found"),
])
def test_bad_input_exits_2_with_one_line(case, message, demo_planted, small_eval, tmp_path, capsys):
    import shutil

    model, data, extra = str(demo_planted.model_dir), str(small_eval), []
    if case == "missing_path":
        data = str(tmp_path / "nope.csv")
    elif case == "missing_column":
        extra = ["--text-col", "txt"]
    elif case == "unknown_labels":
        frame = pd.read_csv(small_eval)
        frame.loc[3, "label"] = "meh"
        frame.to_csv(data := str(tmp_path / "bad.csv"), index=False)
    elif case == "empty_file":
        (tmp_path / "empty.csv").write_text("")
        data = str(tmp_path / "empty.csv")
    elif case == "no_tokenizer":
        shutil.copytree(demo_planted.model_dir, tmp_path / "m")
        for f in (tmp_path / "m").glob("*token*"):
            f.unlink()
        (tmp_path / "m" / "vocab.txt").unlink(missing_ok=True)
        model = str(tmp_path / "m")
    elif case == "bad_threshold":
        extra = ["--threshold", "accuracy is high"]
    elif case == "unknown_auditor":
        extra = ["--auditors", "fairnes"]
    elif case == "unknown_option":
        extra = ["--option", "performance.n_boot=10"]
    elif case == "missing_model":
        model = "./no/such/model"
    code, _, err = run_cli(capsys, "run", model, "--data", data, "--out", str(tmp_path / "o"), "--quiet", *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rai-audit: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err


def test_unknown_yaml_key_is_named_with_a_suggestion(tmp_path, capsys):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text("model: m\ndata: d.csv\nsensitve: [gender]\n")
    code, _, err = run_cli(capsys, "run", "--config", str(cfg))
    assert code == 2 and "unknown option 'sensitve' (did you mean 'sensitive'?)" in err


def test_config_file_with_cli_overrides(demo_planted, small_eval, tmp_path, capsys):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(f"model: {demo_planted.model_dir}\ndata: {small_eval}\nauditors: [performance]\nseed: 3\n"
                   "options:\n  performance:\n    n_bootstrap: 50\nthresholds:\n  - performance.accuracy >= 0.1\n")
    code, _, _ = run_cli(capsys, "run", "--config", str(cfg), "--seed", "5", "--out", str(tmp_path / "o"), "--quiet")
    assert code == 0
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["metadata"]["seed"] == 5 and data["metadata"]["config"]["options"]["performance"]["n_bootstrap"] == 50


def test_list_is_instant_and_imports_no_torch():
    code = ("import sys; from audit.cli import main; rc = main(['list']); "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "performance" in proc.stdout and "classification report" in proc.stdout


def test_help_exits_0():
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "run" in proc.stdout and "demo" in proc.stdout


@pytest.mark.parametrize(("args", "rc", "where", "text"), [
    (["list"], 0, "stdout", "classification report"),
    (["run", "--data", "absent.csv", "no-such-model-folder"], 2, "stderr", "rai-audit: error:"),
    (["--help"], 0, "stdout", "demo"),
    (["run", "--profile", "bogus"], 2, "stderr", "invalid choice"),
])
def test_the_console_script_skips_the_teardown_but_not_what_an_exit_must_do(tmp_path: Path, args: list[str], rc: int,
                                                                             where: str, text: str) -> None:
    """entry() ends with os._exit after main(): still with main's exit code and all its output, a
    non-daemon thread's work finished, atexit handlers run and temporary folders removed."""
    marker, late = tmp_path / "atexit-ran", tmp_path / "thread-finished"
    code = (f"import atexit, pathlib, sys, tempfile, threading, time\n"
            f"tmp = tempfile.TemporaryDirectory(); pathlib.Path(tmp.name, 'f').write_text('x')\n"
            f"print(tmp.name, file=sys.stderr)\n"
            f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'ran')\n"
            f"late = pathlib.Path({str(late)!r})\n"
            f"threading.Thread(target=lambda: (time.sleep(0.5), late.write_text('done'))).start()\n"
            f"sys.argv = ['rai-audit'] + {args!r}\n"
            f"from audit.cli import entry\nentry()\nraise AssertionError('entry returned')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == rc, proc.stderr
    assert text in getattr(proc, where)
    assert marker.read_text() == "ran" and late.read_text() == "done"
    assert not Path(proc.stderr.splitlines()[0]).exists()  # the TemporaryDirectory's finalizer ran


def test_summary_keeps_finding_severity_apart_from_the_policy_verdict(demo_planted, small_eval, tmp_path, capsys):
    """'fairness ok 1 fail, 4 warn' then 'verdict: PASSED' read as a contradiction: the summary,
    the HTML and the README card now say both things in words, from one source."""
    from audit.core.policy import describe_verdict
    from audit.core.results import AuditReport

    out = tmp_path / "report"
    code, stdout, _ = run_cli(capsys, "run", str(demo_planted.model_dir), "--data", str(small_eval), "--out", str(out),
                              "--auditors", "performance", "--threshold", "performance.accuracy >= 0.1",
                              "--threshold", "performance.ece <= 0.0001: warn", "--quiet")
    assert code == 0
    report = AuditReport.from_dict(json.loads((out / "results.json").read_text()))
    verdict = describe_verdict(report)
    assert verdict["policy"] == "2 rules judged, 1 warn-level rule not met, no blocking rule failed"
    assert "serious finding" in verdict["findings"] and "warning" in verdict["findings"]
    assert f"policy: PASSED — {verdict['policy']}" in stdout and "fail, " not in stdout
    html = " ".join((out / "report.html").read_text().split())
    assert verdict["findings"] in html and verdict["policy"] in html
    card = (out / "README.md").read_text()
    assert verdict["findings"] in card and verdict["policy"] in card
