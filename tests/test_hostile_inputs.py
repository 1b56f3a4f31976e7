"""Second round of hostile inputs (issue 12), each a class found by trying to break the first
round's fixes: numbers YAML cannot hold, files named inside model files, baselines with failed
sections, undefined slices, the demo's own folder, JSONL type guessing, options naming columns
and folders, and argparse echoing arguments."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from audit import AuditConfig, run_audit
from audit.cli import main
from audit.core.results import AuditorResult, AuditReport, Metric
from audit.errors import AuditInputError
from tests.conftest import demo_copy, forbid_model_load


@pytest.fixture
def small(demo_planted, tmp_path):
    return demo_copy(demo_planted, tmp_path, rows=80)


def _run(capsys, *args):
    code = main([*map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ settings

@pytest.mark.parametrize("where", ["config", "option", "policy"])
def test_an_integer_yaml_cannot_hold_is_a_one_line_error(where, tmp_path, capsys, monkeypatch):
    forbid_model_load(monkeypatch)
    huge = "9" * 5000
    if where == "config":
        (tmp_path / "c.yaml").write_text(f"model: m\ndata: d.csv\nseed: {huge}\n")
        code, _, err = _run(capsys, "run", "--config", tmp_path / "c.yaml")
    elif where == "option":
        code, _, err = _run(capsys, "run", "m", "--data", "d.csv", "--option", f"performance.n_bootstrap={huge}")
    else:
        (tmp_path / "p.yaml").write_text(f"rules:\n  - {{metric: performance.accuracy, threshold: {huge}}}\n")
        code, _, err = _run(capsys, "run", "m", "--data", "d.csv", "--policy", tmp_path / "p.yaml")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_the_demo_checks_every_setting_before_building(tmp_path, capsys):
    for args in (["--seed", "-1"], ["--timeout", "nan"], ["--option", "fairness.n_bootstrap=0"]):
        code, _, err = _run(capsys, "demo", "--out", tmp_path / "d", *args)
        assert code == 2 and err.count("\n") == 1, err
        assert not (tmp_path / "d").exists()  # nothing built, nothing left behind


def test_selftest_refuses_seeds_out_of_range_and_escapes_arguments(capsys):
    assert main(["selftest", "--seeds", "-1"]) == 2
    assert main(["selftest", "--bogus\n::error::X"]) == 2
    err = capsys.readouterr().err
    assert not any(line.startswith("::") for line in err.splitlines()), err


@pytest.mark.parametrize("argv", [["run", "m", "extra\n::error::PWNED", "--data", "d.csv"],
                                  ["run", "m", "--ou\n::stop-commands::P=1"], ["list", "x\u2028::error::Y"]])
def test_argparse_errors_cannot_inject_workflow_commands(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not any(line.startswith("::") for line in err.splitlines()), err


def test_model_card_fields_are_known_names(tmp_path):
    with pytest.raises(AuditInputError, match=r"unknown field 'intended_usee' \(did you mean 'intended_use'\?\)"):
        AuditConfig(model_card={"intended_usee": "x"})
    with pytest.raises(AuditInputError, match="unknown field"):
        AuditConfig(model_card={"x\n::error::y": "z"})


def test_an_empty_auditor_list_is_an_error_not_every_auditor():
    for value in ("", ",", []):
        with pytest.raises(AuditInputError, match="auditors"):
            AuditConfig(auditors=value)


def test_a_number_yaml_reads_as_text_gets_a_hint():
    with pytest.raises(AuditInputError, match="YAML reads 1e3 as text"):
        AuditConfig.from_dict({"timeout": "1e3"})


@pytest.mark.parametrize("option,text", [
    ("privacy.pii_columns=[nope]", "has no column 'nope'"),
    ("privacy.reference_models=[/nonexistent/ref]", "no such folder"),
])
def test_options_naming_columns_or_folders_are_checked_before_the_model_loads(option, text, small, capsys,
                                                                                 monkeypatch):
    forbid_model_load(monkeypatch)
    code, _, err = _run(capsys, "run", small["model"], "--data", small["data"], "--out", small["out"],
                        "--option", option)
    assert code == 2 and text in err and option.split("=")[0] in err, err


def test_a_missing_data_file_is_found_before_the_model_loads(tmp_path, capsys, monkeypatch):
    forbid_model_load(monkeypatch)
    code, _, err = _run(capsys, "run", tmp_path, "--data", tmp_path / "nope.csv", "--out", tmp_path / "o")
    assert code == 2 and "data file not found" in err


def test_pdf_without_a_browser_fails_before_the_audit(small, capsys, monkeypatch):
    forbid_model_load(monkeypatch)
    monkeypatch.setenv("RAI_AUDIT_CHROMIUM", "/nonexistent/chromium")
    code, _, err = _run(capsys, "run", small["model"], "--data", small["data"], "--out", small["out"], "--pdf")
    assert code == 2 and "RAI_AUDIT_CHROMIUM" in err and not small["out"].exists()


@pytest.mark.parametrize("flag", ["--policy", "--baseline", "--config"])
def test_a_folder_given_as_a_file_says_so(flag, tmp_path, capsys):
    args = ["run"] + ([] if flag == "--config" else ["m", "--data", "d.csv"]) + [flag, str(tmp_path)]
    code, _, err = _run(capsys, *args)
    assert code == 2 and "not found" not in err, err


# ------------------------------------------------------------------ data

def test_jsonl_values_are_not_type_guessed(tmp_path):
    from audit.engine.data import MISSING_GROUP, load_evalset

    path = tmp_path / "e.jsonl"
    rows = [{"text": "007", "label": 0, "g": "01"}, {"text": "0.10", "label": 1, "g": "1"},
            {"text": "1e3", "label": 0, "g": "1.0"}, {"text": "NaN", "label": 1, "g": None}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_evalset(path, label_names=["a", "b"], sensitive=["g"])
    assert data.texts == ["007", "0.10", "1e3", "NaN"]
    assert list(data.column("g")) == ["01", "1", "1.0", MISSING_GROUP]


# ------------------------------------------------------------------ model folder

def _load(model: Path):
    from audit.engine.target import Target

    return Target.load(str(model))


def test_files_named_inside_the_index_or_tokenizer_config_are_checked(small, tmp_path):
    model = small["model"]
    outside = tmp_path / "outside.safetensors"
    shutil.copy(model / "model.safetensors", outside)
    index = {"metadata": {}, "weight_map": {"w": "../outside.safetensors"}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(AuditInputError, match="not a file inside the folder"):
        _load(model)
    (model / "part2.safetensors").symlink_to(outside)
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "part2.safetensors"}}))
    with pytest.raises(AuditInputError, match="link out of the model folder"):
        _load(model)
    (model / "part2.safetensors").unlink()
    os.mkfifo(model / "part2.safetensors")
    with pytest.raises(AuditInputError, match="not a regular file"):
        _load(model)
    (model / "part2.safetensors").unlink()
    (model / "model.safetensors.index.json").unlink()
    tok = json.loads((model / "tokenizer_config.json").read_text())
    shutil.copy(model / "tokenizer.json", tmp_path / "evil_tokenizer.json")
    tok["tokenizer_file"] = str(tmp_path / "evil_tokenizer.json")
    (model / "tokenizer_config.json").write_text(json.dumps(tok))
    with pytest.raises(AuditInputError, match="not a file inside the folder"):
        _load(model)


def test_every_named_shard_is_in_the_fingerprint(small):
    model = small["model"]
    (model / "part1.safetensors").write_bytes(b"one")
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "part1.safetensors"}}))
    from audit.engine.target import _fingerprint

    before = _fingerprint(model, None)
    (model / "part1.safetensors").write_bytes(b"two")
    assert _fingerprint(model, None) != before


def test_hf_cache_blobs_are_allowed_only_in_the_cache_layout(small, tmp_path):
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    shutil.move(str(small["model"] / "model.safetensors"), blobs / "abc")
    plain = tmp_path / "a" / "b"
    shutil.copytree(small["model"], plain)
    (plain / "model.safetensors").symlink_to(blobs / "abc")
    with pytest.raises(AuditInputError, match="link out of the model folder"):
        _load(plain)
    snap = tmp_path / "models--x" / "snapshots" / "rev"
    shutil.copytree(small["model"], snap)
    (tmp_path / "models--x" / "blobs").mkdir()
    shutil.copy(blobs / "abc", tmp_path / "models--x" / "blobs" / "abc")
    (snap / "model.safetensors").symlink_to(tmp_path / "models--x" / "blobs" / "abc")
    assert _load(snap).n_parameters > 0


@pytest.mark.parametrize("break_it", ["token_id", "id2label", "nested_config"])
def test_a_model_that_cannot_predict_is_a_load_error(break_it, small):
    model = small["model"]
    if break_it == "token_id":
        tok = json.loads((model / "tokenizer.json").read_text())
        tok["model"]["vocab"]["zzz"] = 5000
        (model / "tokenizer.json").write_text(json.dumps(tok))
        match = "embedding table"
    elif break_it == "id2label":
        cfg = json.loads((model / "config.json").read_text())
        cfg["id2label"] = {"0": "negative", "5": "positive"}
        cfg["label2id"] = {"negative": 0, "positive": 5}
        (model / "config.json").write_text(json.dumps(cfg))
        match = "id2label|cannot load"
    else:
        (model / "config.json").write_text("[" * 100_000 + "]" * 100_000)
        match = "config.json"
    with pytest.raises(AuditInputError, match=match):
        _load(model)


# ------------------------------------------------------------------ output folder and resume

@pytest.mark.parametrize("planted", [".rai-audit-report.json", ".rai-audit-partial/performance.json"])
def test_a_folder_or_deep_json_where_state_is_kept_is_not_a_traceback(planted, small, capsys):
    out = small["out"]
    (out / planted).mkdir(parents=True)
    args = ["run", small["model"], "--data", small["data"], "--out", out, "--auditors", "performance", "--resume"]
    code, _, err = _run(capsys, *args)
    assert code == 2 and "something else stands there" in err and err.count("\n") == 1, err
    shutil.rmtree(out)
    (out / Path(planted).parent).mkdir(parents=True, exist_ok=True)
    (out / planted).write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = _run(capsys, *args)
    assert code in (0, 2) and "Traceback" not in err, err


def test_the_demo_never_writes_through_a_planted_symlink(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "d"
    (out / "demo-build").mkdir(parents=True)
    (out / "demo-build" / "train.csv").symlink_to(victim)
    code, _, err = _run(capsys, "demo", "--out", out)
    assert code == 2 and "demo build is already there" in err
    shutil.rmtree(out / "demo-build")
    (out / "demo-build").symlink_to(tmp_path)
    code, _, err = _run(capsys, "demo", "--out", out, "--overwrite")
    assert code == 2 and "symlink" in err
    assert victim.read_text() == "precious"


def test_report_files_are_readable_like_any_file_written(small):
    run_audit(AuditConfig(model=str(small["model"]), data=str(small["data"]), out=str(small["out"]),
                          auditors=["performance"]), progress=False)
    mask = os.umask(0)
    os.umask(mask)
    assert (small["out"] / "report.html").stat().st_mode & 0o777 == 0o666 & ~mask


def test_resume_notices_a_changed_file_behind_an_unchanged_option(small, tmp_path, monkeypatch):
    monkeypatch.setattr("audit.core.resume.Partial.clear", lambda self: None)
    lexicon = tmp_path / "lex.yaml"
    lexicon.write_text("testcat: [zorblax, quuxian]\n")
    cfg = dict(model=str(small["model"]), data=str(small["data"]), out=str(small["out"]), auditors=["fairness"],
               options={"fairness": {"lexicon": str(lexicon), "n_bootstrap": 20, "counterfactual": False,
                                     "mitigation": False}})
    run_audit(AuditConfig(**cfg), progress=False)
    lexicon.write_text("testcat: [food, film, hotel]\n")
    again = run_audit(AuditConfig(**cfg, resume=True, overwrite=True), progress=False)
    assert again.metadata["resumed"] == []


# ------------------------------------------------------------------ policy and baseline

def _result(auditor, status="ok", **values):
    metrics = tuple(Metric(k, v, higher_is_better=True, slice=None) for k, v in values.items())
    return AuditorResult(auditor=auditor, status=status, reason="" if status == "ok" else "timed out",
                         metrics=metrics)


def test_a_failed_or_shrunken_section_cannot_pass_the_baseline_gate():
    from audit.core.policy import compare_baseline, gate_failed

    baseline = AuditReport(metadata={}, results=[_result("performance", accuracy=0.9),
                                                 _result("fairness", demographic_parity_ratio=0.9)])
    now = [_result("performance", accuracy=0.9), _result("fairness", status="failed")]
    outcomes = compare_baseline(now, baseline, max_regression=0.02)
    assert gate_failed(outcomes) and any("fairness section failed" in o.reason for o in outcomes)
    now = [_result("performance", accuracy=0.9), _result("fairness")]  # ok, but the metric is gone
    assert gate_failed(compare_baseline(now, baseline, max_regression=0.02))
    now = [_result("performance", accuracy=0.9)]  # fairness not selected: reported, not judged
    outcomes = compare_baseline(now, baseline, max_regression=0.02)
    assert not gate_failed(outcomes) and [o.outcome for o in outcomes] == ["pass", "not_run"]


@pytest.mark.parametrize("order", [[0.9, float("nan")], [float("nan"), 0.9]])
def test_an_undefined_slice_makes_a_worst_slice_rule_missing_whatever_the_order(order):
    from audit.core.policy import evaluate_policy

    metrics = tuple(Metric("demographic_parity_ratio", v, slice=s, higher_is_better=True)
                    for v, s in zip(order, ["g=a", "g=b"], strict=True))
    outcome = evaluate_policy(["fairness.demographic_parity_ratio >= 0.8"],
                              [AuditorResult(auditor="fairness", metrics=metrics)])[0]
    assert outcome.outcome == "missing" and "undefined for slice" in outcome.reason


def test_an_infinite_baseline_value_is_refused(small, tmp_path):
    from audit.runner import load_baseline

    run_audit(AuditConfig(model=str(small["model"]), data=str(small["data"]), out=str(small["out"]),
                          auditors=["performance"]), progress=False)
    data = json.loads((small["out"] / "results.json").read_text())
    text = json.dumps(data).replace('"value": ' + json.dumps(data["results"][0]["metrics"][0]["value"]),
                                    '"value": 1e999', 1)
    (tmp_path / "inf.json").write_text(text)
    with pytest.raises(AuditInputError, match="not a finite number"):
        load_baseline(tmp_path / "inf.json")


def test_a_baseline_mismatch_is_a_workflow_warning(small, tmp_path, capsys):
    run_audit(AuditConfig(model=str(small["model"]), data=str(small["data"]), out=str(tmp_path / "b"),
                          auditors=["performance"]), progress=False)
    code, out, _ = _run(capsys, "run", small["model"], "--data", small["data"], "--out", small["out"],
                        "--auditors", "performance", "--limit", "40", "--baseline", tmp_path / "b" / "results.json",
                        "--format", "github")
    assert any(line.startswith("::warning title=rai-audit baseline::") and "other data" in line
               for line in out.splitlines()), out
