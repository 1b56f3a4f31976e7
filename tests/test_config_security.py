"""Hostile and careless settings: every config key, CLI flag and auditor option is typed and
checked before the model loads; YAML cannot expand; numbers are finite and in range; values read
from data stay what they are. Each test names the class of problem it covers (issue 12)."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.cli import main
from audit.config import CONFIG_OPTIONS, AuditConfig
from audit.core.options import YAML_MAX_BYTES, Option, check, load_yaml
from audit.errors import AuditInputError, printable
from tests._tiny import save_tiny_model

# Values of every JSON/YAML type, to throw at every key.
ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.booleans()), max_size=4),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers())),
                    max_size=3),
)


def _accepted(option: Option, value: object) -> bool:
    """What a checked value must look like, written independently of audit.core.options."""
    if value is None:
        return option.nullable
    if option.kind == "bool":
        return type(value) is bool
    if option.kind == "int":
        return type(value) is int and (option.min is None or value >= option.min) and (
            option.max is None or value <= option.max)
    if option.kind == "float":
        return type(value) in (int, float) and math.isfinite(value)
    if option.kind == "str":
        return isinstance(value, str) and (option.choices is None or value in option.choices)
    if option.kind == "str_list":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if option.kind == "mapping":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    return True


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(CONFIG_OPTIONS)), value=ANY_VALUE)
def test_every_config_key_accepts_only_its_declared_type(key, value):
    """Config fuzzer: any value for any key is either accepted as the declared type, or refused
    with AuditInputError naming the key; never another exception, never a truthy string."""
    try:
        config = AuditConfig.from_dict({key: value})
    except AuditInputError as exc:
        assert key in str(exc)
        return
    assert _accepted(CONFIG_OPTIONS[key], getattr(config, key)), (key, value, getattr(config, key))


@pytest.mark.parametrize("key", [k for k, o in CONFIG_OPTIONS.items() if o.kind == "bool"])
@pytest.mark.parametrize("value", ["false", "true", "no", "yes", "0", 0, 1, "off", ""])
def test_quoted_booleans_are_refused_for_every_flag(key, value):
    with pytest.raises(AuditInputError, match=key):
        AuditConfig.from_dict({key: value})


@pytest.mark.parametrize("raw", [
    "out: 123", "model: 123", "auditors: 5", "limit: true", "sensitive: [1, 2]", "timeout: .nan",
    "model_card: [1, 2]", "max_regression: abc", "seed: -1", "seed: 18446744073709551616", "timeout: 1.0e-9",
    "timeout: .inf", "batch_size: 0", "options: {fairness: 3}", "thresholds: [5]", "device: gpu",
    "model_card: {intended_use: [1]}", "max_length: 2.5",
])
def test_wrong_types_in_a_config_file_exit_2_before_the_model_loads(raw, tmp_path, capsys, monkeypatch):
    def no_load(*_a, **_k):
        raise AssertionError("the model was loaded before the config was checked")

    monkeypatch.setattr("audit.engine.target.Target.load", no_load)
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(f"model: {tmp_path}\ndata: {tmp_path / 'x.csv'}\n" + raw + "\n")
    code = main(["run", "--config", str(cfg), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and raw.split(":")[0] in err


def test_quoted_false_never_runs_the_model_folders_code(tmp_path, capsys):
    """The security hole: ``trust_remote_code: "false"`` (a string) ran custom code."""
    model = save_tiny_model(tmp_path / "model")
    sentinel = tmp_path / "pwned"
    (model / "evil.py").write_text(f"open({str(sentinel)!r}, 'w').write('ran')\n")
    import json

    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig",
                          "AutoModelForSequenceClassification": "evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    data = tmp_path / "eval.csv"
    pd.DataFrame({"text": ["good", "bad"], "label": [0, 1]}).to_csv(data, index=False)
    for value in ('"false"', "'no'", '"0"', "0"):
        cfg = tmp_path / "audit.yaml"
        cfg.write_text(f"model: {model}\ndata: {data}\ntrust_remote_code: {value}\n")
        code = main(["run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--quiet"])
        assert code == 2, value
        assert "trust_remote_code" in capsys.readouterr().err
    assert not sentinel.exists()


def test_quoted_false_overwrite_does_not_replace_a_report(tmp_path, capsys):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text('model: m\ndata: d.csv\noverwrite: "false"\n')
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path), "--quiet"]) == 2
    assert "overwrite" in capsys.readouterr().err


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))


@pytest.mark.parametrize("where", ["config", "policy", "option", "lexicon"])
def test_yaml_aliases_are_refused_everywhere_yaml_is_read(where, tmp_path, capsys):
    """A few hundred bytes of nested aliases expanded to a 719 MB results.json."""
    bomb = tmp_path / "bomb.yaml"
    start = time.perf_counter()
    if where == "config":
        bomb.write_text("model: m\ndata: d.csv\nmodel_card:\n  " + ALIAS_BOMB.replace("\n", "\n  "))
        code = main(["run", "--config", str(bomb), "--quiet"])
    elif where == "policy":
        bomb.write_text("rules: []\n" + ALIAS_BOMB)
        code = main(["run", "m", "--data", "d.csv", "--policy", str(bomb), "--out", str(tmp_path / "o"), "--quiet"])
    elif where == "option":
        code = main(["run", "m", "--data", "d.csv", "--option", "fairness.n_bootstrap=&a [*a]", "--quiet"])
    else:
        bomb.write_text(ALIAS_BOMB)
        code = main(["run", "m", "--data", "d.csv", "--option", f"fairness.lexicon={bomb}", "--out",
                     str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "alias" in err, err
    assert time.perf_counter() - start < 30  # refused, not expanded


def test_yaml_size_and_free_text_are_capped(tmp_path):
    with pytest.raises(AuditInputError, match="bytes"):
        load_yaml("x: " + "a" * YAML_MAX_BYTES, where="big.yaml")
    with pytest.raises(AuditInputError, match="model_card.intended_use"):
        AuditConfig.from_dict({"model_card": {"intended_use": "x" * 100_000}})


@pytest.mark.parametrize("flag,value", [
    ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e-9"), ("--timeout", "-3"),
    ("--seed", str(2**40)), ("--seed", "-1"), ("--max-regression", "nan"), ("--max-regression", "-0.1"),
    ("--limit", "0"), ("--batch-size", "-5"),
])
def test_numbers_on_the_command_line_are_checked(flag, value, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("audit.engine.target.Target.load",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    code = main(["run", str(tmp_path), "--data", "d.csv", flag, value, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("option", [
    "fairness.n_bootstrap=abc", "fairness.n_bootstrap=true", "fairness.dp_ratio_min=.nan", "fairness.mitigation='no'",
    "explainability.methods=[nope]", "robustness.recipes=5", "privacy.auc_max=2", "performance.ece_bins=1",
    "privacy.reference_models=abc", "fairness.lexicon=/no/such/file.yaml",
])
@pytest.mark.parametrize("selected", ["performance", None])
def test_auditor_options_are_checked_before_any_work_selected_or_not(option, selected, tmp_path, capsys, monkeypatch):
    """A wrong option failed its section with a TypeError and the run exited 0; an option for an
    auditor not selected was never checked."""
    monkeypatch.setattr("audit.engine.target.Target.load",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    args = ["run", str(tmp_path), "--data", "d.csv", "--option", option, "--out", str(tmp_path / "o"), "--quiet"]
    if selected:
        args += ["--auditors", selected]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and option.split("=")[0].split(".")[1] in err, err


def test_option_checks_never_mutate_what_was_given():
    from audit.auditors.explainability._auditor import ExplainabilityAuditor

    given = {"methods": "saliency,occlusion", "n_steps": 5}
    before = dict(given)
    auditor = ExplainabilityAuditor(**given)
    assert given == before
    assert auditor.options["methods"] == ("saliency", "occlusion")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.text(max_size=200))
def test_printable_never_breaks_a_line(text):
    """Whatever a data value holds, printed it stays on one line (no '::command' at column 0)."""
    shown = printable(text)
    assert len(shown.splitlines()) <= 1
    assert not any(ch in shown for ch in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["bool", "int", "float", "str", "str_list", "label", "mapping"]), value=ANY_VALUE,
       nullable=st.booleans())
def test_check_returns_the_declared_type_or_raises_input_error(kind, value, nullable):
    option = Option(kind=kind, nullable=nullable, min=0 if kind in ("int", "float") else None)
    try:
        out = check("x", value, option)
    except AuditInputError:
        return
    assert _accepted(option, out)
    if kind == "float" and out is not None:
        assert math.isfinite(out) and out >= 0


# -- values read from data stay what they are (missing-value strings)

@pytest.mark.parametrize("name", ["None", "NA", "null", "N/A", "nan", "NaN"])
def test_a_class_named_like_a_missing_value_is_a_class(name, tmp_path):
    from audit.engine.data import load_evalset

    path = tmp_path / "eval.csv"
    path.write_text(f"text,label\nNA,{name}\nnull,other\nNone,{name}\n")
    data = load_evalset(path, label_names=["other", name])
    assert data.texts == ["NA", "null", "None"]  # texts are texts, not missing
    assert list(data.labels) == [1, 0, 1]
    assert data.dropped_empty == 0


def test_missing_sensitive_values_form_an_explicit_group_with_a_count(tmp_path):
    from audit.engine.data import MISSING_GROUP, load_evalset

    path = tmp_path / "eval.csv"
    path.write_text("text,label,gender\na,0,f\nb,1,\nc,0,NA\nd,1,m\n")
    data = load_evalset(path, label_names=["0", "1"], sensitive=["gender"])
    assert list(data.column("gender")) == ["f", MISSING_GROUP, "NA", "m"]
    assert any("1 rows have no value" in n for n in data.notes)
    path = tmp_path / "eval.jsonl"
    path.write_text('{"text": "a", "label": 0, "g": null}\n{"text": "b", "label": 1, "g": "x"}\n')
    data = load_evalset(path, label_names=["0", "1"], sensitive=["g"])
    assert list(data.column("g")) == [MISSING_GROUP, "x"]
