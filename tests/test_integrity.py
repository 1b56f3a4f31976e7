"""Integrity of what a run reads and writes (issue 12): resumed sections are keyed on every input
and cannot be forged, figures are drawn from data and inlined SVG is never trusted, writes never follow a planted
symlink, files we did not write are never replaced, a hostile model folder is refused quickly,
the baseline gate cannot pass silently, and data values cannot inject workflow commands."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from audit import AuditConfig, run_audit
from audit.cli import main
from audit.core.results import AuditorResult, AuditReport, Figure, Finding, Metric
from audit.core.verdicts import PolicyOutcome, PolicyVerdict
from audit.errors import AuditInputError
from audit.report.outdir import LOCK, locked
from tests.conftest import demo_copy, forbid_model_load

# ----------------------------------------------------------------------------------- helpers


@pytest.fixture
def small(demo_planted, tmp_path):
    """120 eval rows of the planted demo, with a sensitive column, and a copy of its model."""
    return demo_copy(demo_planted, tmp_path, rows=120)


def _cfg(small, **kw):
    base = dict(model=str(small["model"]), data=str(small["data"]), out=str(small["out"]),
                auditors=["performance"], options={"performance": {"n_bootstrap": 50}})
    return AuditConfig(**{**base, **kw})


def _interrupted(small, **kw) -> Path:
    """Run once, then put the finished section back as an interrupted run would leave it."""
    partial = small["out"] / ".rai-audit-partial"
    run_audit(_cfg(small, **kw), progress=False)
    return partial


@pytest.fixture
def keep_partial(monkeypatch):
    """Keep the partial folder after a successful run, as if the run had been interrupted."""
    monkeypatch.setattr("audit.core.resume.Partial.clear", lambda self: None)


# ------------------------------------------------------------------------------------ resume


def _resumed(report) -> list[str]:
    return report.metadata["resumed"]


def test_resume_reuses_a_section_only_for_identical_inputs(small, keep_partial):
    _interrupted(small)
    again = run_audit(_cfg(small, resume=True, overwrite=True), progress=False)
    assert _resumed(again) == ["performance"]
    html = (small["out"] / "report.html").read_text()
    assert "Resumed from an interrupted run" in html


@pytest.mark.parametrize("change", ["tokenizer", "max_length", "sensitive_values", "option", "seed", "rows"])
def test_resume_does_not_reuse_a_stale_section(change, small, keep_partial):
    """Each of these changed a section's inputs and the stale section was reused."""
    _interrupted(small, sensitive=["age_group"])
    kw = {"sensitive": ["age_group"]}
    if change == "tokenizer":
        tok = json.loads((small["model"] / "tokenizer_config.json").read_text())
        tok["do_lower_case"] = not tok.get("do_lower_case", True)
        (small["model"] / "tokenizer_config.json").write_text(json.dumps(tok))
    elif change == "max_length":
        kw["max_length"] = 16
    elif change == "sensitive_values":
        frame = pd.read_csv(small["data"])
        frame["age_group"] = frame["age_group"].iloc[::-1].to_numpy()
        frame.to_csv(small["data"], index=False)
    elif change == "option":
        kw["options"] = {"performance": {"n_bootstrap": 60}}
    elif change == "seed":
        kw["seed"] = 3
    else:
        kw["limit"] = 100
    again = run_audit(_cfg(small, resume=True, overwrite=True, **kw), progress=False)
    assert _resumed(again) == []


def test_a_hand_edited_section_is_not_accepted(small, keep_partial):
    """A forged accuracy passed a policy gate with exit 0."""
    partial = _interrupted(small)
    path = partial / "performance.json"
    saved = json.loads(path.read_text())
    body = json.loads(saved["result"])
    for m in body["metrics"]:
        if m["name"] == "accuracy":
            m["value"] = m["ci_low"] = m["ci_high"] = 1.0
    saved["result"] = json.dumps(body, sort_keys=True)
    path.write_text(json.dumps(saved))
    report = run_audit(_cfg(small, resume=True, overwrite=True, thresholds=["performance.accuracy >= 0.999"]),
                       progress=False)
    assert _resumed(report) == []
    assert report.result("performance").metric("accuracy").value < 0.999 and not report.passed


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"key": 1, "result": 5}', b"\xff\xfe", b""])
def test_a_malformed_section_file_is_skipped_not_a_traceback(content, small, keep_partial):
    partial = _interrupted(small)
    (partial / "performance.json").write_bytes(content)
    report = run_audit(_cfg(small, resume=True, overwrite=True), progress=False)
    assert _resumed(report) == [] and report.result("performance").status == "ok"


def test_a_symlinked_partial_folder_is_refused(small, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    small["out"].mkdir()
    os.symlink(elsewhere, small["out"] / ".rai-audit-partial")
    with pytest.raises(AuditInputError, match="symlink"):
        run_audit(_cfg(small), progress=False)
    assert list(elsewhere.iterdir()) == []


HOSTILE_SVG = [
    '<svg xmlns="http://www.w3.org/2000/svg"><script>document.title="pwned"</script><rect width="1"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="1" onclick="x()"/></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><iframe src="x"/></foreignObject></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<use xlink:href="http://127.0.0.1:9/x.svg#a"/><a href="javascript:alert(1)"><rect/></a></svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(http://127.0.0.1:9/x.css);</style>'
    '<rect style="fill:url(http://127.0.0.1:9/p)"/></svg>',
    '</svg></div><script>alert(1)</script><svg>',
    '<svg xmlns="http://www.w3.org/2000/svg"><text>&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;</text></svg>',
    '<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
    '<image xlink:href="http://127.0.0.1:9/x.png"/><image href="data:image/svg+xml;base64,PHN2Zz4="/></svg>',
    "plain text <b>bold</b>",
]


@pytest.mark.parametrize("svg", HOSTILE_SVG)
def test_svg_a_plugin_inlines_is_rebuilt_from_an_allow_list(svg):
    """Our figures are data, drawn at render time; a plugin's own template may still inline SVG
    (from its extra), and the safe_svg filter rebuilds that from the allow-list."""
    from audit.report.html import environment

    html = environment().from_string("<div>{{ markup | safe_svg }}</div>").render(markup=svg)
    lowered = html.lower()
    for bad in ("<script", "onload", "onclick", "foreignobject", "<iframe", "javascript:", "127.0.0.1", "@import",
                "<!entity", "<b>", "svg+xml"):
        assert bad not in lowered, (bad, html)


HOSTILE_LABEL = '</svg></figure><script>alert(1)</script><svg onload="x()">$\\frac{1}{0}$'


def test_figure_data_cannot_inject_markup():
    """Labels, titles and series names are data: drawn as text, never as markup."""
    from audit.report.html import render_section

    figures = (Figure.bar("b", labels=[HOSTILE_LABEL], values=[0.5], title=HOSTILE_LABEL, xlabel=HOSTILE_LABEL),
               Figure.lines("l", series=[(HOSTILE_LABEL, [0, 1], [0, 1])], title=HOSTILE_LABEL),
               Figure.heatmap("h", cells=[[1]], rows=[HOSTILE_LABEL], columns=[HOSTILE_LABEL]))
    html = render_section(AuditorResult(auditor="plugin", figures=figures))
    assert html.count("<svg") == 3 and "could not be drawn" not in html
    lowered = html.lower()
    assert "<script" not in lowered and "<svg onload" not in lowered and lowered.count("</figure>") == 3
    assert "&lt;script&gt;alert(1)" in lowered and "&lt;svg onload" in lowered  # shown, as text
    assert "$\\frac{1}{0}$" in html  # a "$" in a label is a character, not TeX


def test_figure_data_that_does_not_fit_its_kind_gives_a_note_not_a_broken_page():
    from audit.report.html import render_section

    broken = (Figure("nobars", "bar", {"title": "x"}),
              Figure("ragged", "heatmap", {"rows": ["a", "b"], "columns": ["c"], "cells": [[1], [2, 3]]}),
              Figure("words", "lines", {"series": [{"name": "s", "x": ["<b>1</b>"], "y": [1]}]}),
              Figure("fmt", "heatmap", {"rows": ["a"], "columns": ["b"], "cells": [[1]], "decimals": "{0.__class__}"}))
    html = render_section(AuditorResult(auditor="plugin", figures=broken))
    assert html.count("could not be drawn from its data") == 4 and "<svg" not in html
    assert "<b>1</b>" not in html and "&lt;class" not in html  # the decimals were not used as a format string


def test_drawn_charts_survive_the_svg_check():
    from audit.report import charts
    from audit.report.svg import PLACEHOLDER, sanitize_svg

    svg = charts.draw(Figure.heatmap("cm", cells=[[3, 1], [0, 4]], rows=["a", "b"], columns=["a", "b"],
                                     title="confusion"))
    clean = sanitize_svg(svg)
    assert clean != PLACEHOLDER and clean.startswith("<svg") and clean.count("<path") == svg.count("<path")
    assert svg.count("<image") >= 1 and clean.count("<image") == svg.count("<image")  # imshow's raster
    assert clean.count("data:image/png;base64,") == svg.count("data:image/png;base64,")


# ------------------------------------------------------------------------------ output folder


def test_writes_never_follow_a_planted_symlink(small, tmp_path):
    """Temporary names were predictable (.<file>.tmp-<pid>): a planted symlink made the report
    overwrite another file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = small["out"]
    out.mkdir()
    for name in ("report.html", "results.json", "README.md", ".rai-audit-report.json"):
        for pid in range(os.getpid() - 5, os.getpid() + 50):
            os.symlink(victim, out / f".{name}.tmp-{pid}")
    run_audit(_cfg(small), progress=False)
    assert victim.read_text() == "precious"
    assert (out / "report.html").is_file() and not (out / "report.html").is_symlink()


@pytest.mark.parametrize("planted", ["symlink", "handwritten", "directory"])
def test_a_file_we_did_not_write_is_never_replaced(planted, small, tmp_path, capsys):
    victim = tmp_path / "victim.md"
    victim.write_text("my model card")
    out = small["out"]
    out.mkdir()
    target = out / ("results.json" if planted == "directory" else "README.md")
    if planted == "symlink":
        os.symlink(victim, target)
    elif planted == "handwritten":
        target.write_text("# My hand-written model card\n")
    else:
        target.mkdir()
    before = target.read_text() if target.is_file() else None
    code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(out), "--overwrite",
                 "--auditors", "performance", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "not written by rai-audit" in err, err
    assert victim.read_text() == "my model card"
    if before is not None:
        assert target.read_text() == before


def test_our_own_report_is_replaced_only_with_overwrite_and_an_edited_one_never(small, capsys):
    run_audit(_cfg(small), progress=False)
    args = ["run", str(small["model"]), "--data", str(small["data"]), "--out", str(small["out"]),
            "--auditors", "performance", "--quiet"]
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
    capsys.readouterr()
    (small["out"] / "README.md").write_text("edited by a person\n")
    assert main([*args, "--overwrite"]) == 2 and "not written by rai-audit" in capsys.readouterr().err
    assert (small["out"] / "README.md").read_text() == "edited by a person\n"


@pytest.mark.parametrize("where", ["under_a_file", "out_is_file"])
def test_an_unusable_out_is_refused_before_the_model_loads(where, small, tmp_path, capsys, monkeypatch):
    forbid_model_load(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = blocker / "sub" if where == "under_a_file" else blocker
    code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err, err


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(small, capsys):
    small["out"].mkdir()
    with locked(small["out"]):
        code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(small["out"]),
                     "--auditors", "performance", "--quiet"])
    assert code == 2 and "another rai-audit run" in capsys.readouterr().err
    assert (small["out"] / LOCK).exists() and not (small["out"] / "report.html").exists()


# ------------------------------------------------------------------------------- model folder


@pytest.mark.parametrize("hostile", ["fifo", "device", "directory", "link_out", "tokenizer_fifo"])
def test_a_hostile_model_folder_is_refused_quickly(hostile, small, tmp_path, capsys):
    model = small["model"]
    name = "tokenizer.json" if hostile == "tokenizer_fifo" else "model.safetensors"
    (model / name).unlink()
    if hostile in ("fifo", "tokenizer_fifo"):
        os.mkfifo(model / name)
    elif hostile == "device":
        os.symlink("/dev/zero", model / name)
    elif hostile == "directory":
        (model / name).mkdir()
    else:
        outside = tmp_path / "outside.safetensors"
        shutil.copy(small["model"].parent / "model" / "config.json", outside)
        os.symlink(outside, model / name)
    result: dict[str, int] = {}
    worker = threading.Thread(target=lambda: result.setdefault("code", main(
        ["run", str(model), "--data", str(small["data"]), "--out", str(small["out"]), "--quiet"])), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the FIFO so the thread can end, then fail
        with open(model / name, "wb"):
            pass
        pytest.fail("loading a hostile model folder hung")
    err = capsys.readouterr().err
    assert result["code"] == 2 and name in err and "Traceback" not in err, err


def test_a_tokenizer_with_an_empty_vocabulary_is_a_load_error(small, capsys):
    tok = json.loads((small["model"] / "tokenizer.json").read_text())
    tok["model"]["vocab"] = {}
    (small["model"] / "tokenizer.json").write_text(json.dumps(tok))
    (small["model"] / "vocab.txt").unlink(missing_ok=True)
    code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(small["out"]), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "tokenizer" in err and "Traceback" not in err, err


def test_fingerprint_covers_tokenizer_files(small):
    from audit.engine.target import Target

    before = Target.load(str(small["model"])).fingerprint
    tok = json.loads((small["model"] / "tokenizer_config.json").read_text())
    tok["model_max_length"] = 17
    (small["model"] / "tokenizer_config.json").write_text(json.dumps(tok))
    assert Target.load(str(small["model"])).fingerprint != before


# ------------------------------------------------------------------------------------ baseline


def _report(values: dict[str, float | None], **meta) -> AuditReport:
    metrics = tuple(Metric(k, v, higher_is_better=True) for k, v in values.items())
    return AuditReport(metadata={"model": {}, "data": {}, **meta},
                       results=[AuditorResult(auditor="performance", metrics=metrics)])


def test_nan_never_passes_the_baseline_gate():
    from audit.core.policy import compare_baseline, gate_failed

    now = _report({"accuracy": 0.5, "macro_f1": float("nan")}).results
    with pytest.raises(AuditInputError, match="max_regression"):
        compare_baseline(now, _report({"accuracy": 0.87}), max_regression=float("nan"))
    outcomes = compare_baseline(now, _report({"accuracy": float("nan"), "macro_f1": float("nan")}), max_regression=0.02)
    assert gate_failed(outcomes)  # nothing comparable: the gate has no evidence
    outcomes = compare_baseline(now, _report({"accuracy": 0.4, "macro_f1": 0.8}), max_regression=0.02)
    assert [o.outcome for o in outcomes] == ["pass", "missing"] and gate_failed(outcomes)


def test_an_empty_or_nan_baseline_file_is_an_error(tmp_path, small):
    from audit.runner import load_baseline

    run_audit(_cfg(small), progress=False)
    good = json.loads((small["out"] / "results.json").read_text())
    empty = {**good, "results": []}
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    with pytest.raises(AuditInputError, match="no defined metric"):
        load_baseline(tmp_path / "empty.json")
    text = (small["out"] / "results.json").read_text()
    first_value = json.dumps(good["results"][0]["metrics"][0]["value"])
    (tmp_path / "nan.json").write_text(text.replace(f'"value": {first_value}', '"value": NaN', 1))
    with pytest.raises(AuditInputError, match="NaN"):
        load_baseline(tmp_path / "nan.json")


def test_a_baseline_of_other_data_is_stated_and_strict_makes_it_an_error(small, tmp_path, capsys):
    run_audit(_cfg(small, out=str(tmp_path / "base")), progress=False)
    baseline = str(tmp_path / "base" / "results.json")
    report = run_audit(_cfg(small, baseline=baseline, limit=100), progress=False)
    assert report.metadata["baseline"]["same_data"] is False
    assert "other data" in (small["out"] / "report.html").read_text()
    code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(tmp_path / "s"),
                 "--auditors", "performance", "--limit", "100", "--baseline", baseline, "--baseline-strict", "--quiet"])
    assert code == 2 and "other data" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- injection

INJECTIONS = ["x\n::error title=pwned::forged", "y\r\n::add-mask::secret", "z\n::stop-commands::tok",
              "w\u2028::warning::x", "v\x85::notice::x"]


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_no_printed_value_from_data_or_config_can_start_a_line(fmt, capsys):
    """A sensitive-group name holding a newline and '::error' reached stdout at column 0."""
    from audit.cli import _print_summary

    bad = " ".join(INJECTIONS)
    result = AuditorResult(auditor="fairness", status="ok", reason=bad,
                           metrics=(Metric("demographic_parity_ratio", 0.2, slice=bad, higher_is_better=True),),
                           findings=(Finding("fail", bad, bad),))
    report = AuditReport(metadata={"model": {"name": bad}, "data": {"rows": 3}, "resumed": [],
                                   "baseline": {"warnings": [bad], "notes": [bad]}},
                         results=[result])
    report.policy = PolicyVerdict.of([PolicyOutcome(kind="threshold", rule=bad, severity="fail", value=0.2,
                                                    outcome="fail", reason=f"worst slice: {bad}")])
    _print_summary(report, Path("out"), 1.0, fmt=fmt)
    out = capsys.readouterr().out
    ours = ("::error title=rai-audit", "::warning title=rai-audit", "::notice title=rai-audit")
    for line in out.splitlines():
        assert not line.startswith("::") or line.startswith(ours), line
        assert "::add-mask::" not in line.split("::", 2)[-1] or not line.startswith("::add-mask")
    assert "pwned::forged" not in "\n".join(ln for ln in out.splitlines() if ln.startswith("::error title=pwned"))
    assert not any(ln.startswith(("::error title=pwned", "::add-mask", "::stop-commands", "::warning::", "::notice::"))
                   for ln in out.splitlines())


def test_injection_through_a_real_sensitive_column_end_to_end(small, capsys):
    frame = pd.read_csv(small["data"])
    frame["age_group"] = [INJECTIONS[i % len(INJECTIONS)] for i in range(len(frame))]
    frame.to_csv(small["data"], index=False)
    for fmt in ("text", "github"):
        code = main(["run", str(small["model"]), "--data", str(small["data"]), "--out", str(small["out"]),
                     "--overwrite", "--auditors", "fairness", "--sensitive", "age_group", "--format", fmt,
                     "--option", "fairness.counterfactual=false", "--option", "fairness.mitigation=false",
                     "--option", "fairness.n_bootstrap=20", "--option", "fairness.min_group_size=2",
                     "--threshold", "fairness.demographic_parity_ratio >= 0.99", "--quiet"])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        for line in (out + err).splitlines():
            assert not line.startswith(("::error title=pwned", "::add-mask", "::stop-commands", "::warning::",
                                        "::notice::")), line
