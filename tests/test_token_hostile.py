"""Adversarial checks of token-classification (NER) support: hostile and malformed data, odd
models, the headline numbers against seqeval, and the run options (resume, baseline, limit,
policy, demo overwrite). Each test states the behaviour the README and issue 15 promise; a
failing test here is a finding, reported with its name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit import AuditConfig, run_audit
from audit.cli import main
from audit.errors import AuditInputError
from audit.tasks.token_data import read_token_data
from tests._tiny import TAGS, random_iob2_sentences, save_tiny_model, save_tiny_token_model

WORDS = ["Alice", "met", "Bob", "in", "Paris", "and", "New", "York", "today"]


def _sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    return random_iob2_sentences(n, words=WORDS, max_len=8, seed=seed)


def _conll(path: Path, sentences, *, newline: str = "\n") -> Path:
    lines = []
    for words, tags in sentences:
        lines += [f"{w} {t}" for w, t in zip(words, tags, strict=True)] + [""]
    path.write_bytes(newline.join(lines).encode("utf-8"))
    return path


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main([*args, "--quiet"])
    return code, capsys.readouterr().err


def _one_line_error(code: int, err: str, path: Path) -> None:
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err
    assert str(path) in err, err


@pytest.fixture(scope="module")
def token_model(tmp_path_factory) -> Path:
    return save_tiny_token_model(tmp_path_factory.mktemp("tok") / "model", max_length=16)


def _read(path: Path | str, **kw):
    return read_token_data(path, tag_names=TAGS, **kw)


# --------------------------------------------------------------------------- hostile CoNLL text


def test_crlf_and_bom_conll_reads_the_same_as_lf(tmp_path):
    sents = _sentences(5)
    lf = _read(_conll(tmp_path / "lf.conll", sents))
    crlf_path = _conll(tmp_path / "crlf.conll", sents, newline="\r\n")
    crlf_path.write_bytes(b"\xef\xbb\xbf" + crlf_path.read_bytes())
    crlf = _read(crlf_path)
    assert crlf.tokens == lf.tokens and crlf.tags == lf.tags and crlf.first_lines == lf.first_lines


def test_old_mac_cr_only_line_endings_are_not_silently_misread(tmp_path):
    """A file with bare CR line ends is one long line: reading it as one sentence of one token
    (tag taken from the last field) silently audits garbage; expected an error or a correct read."""
    path = _conll(tmp_path / "cr.conll", [(["Alice", "met", "Bob"], ["B-PER", "O", "B-PER"])], newline="\r")
    try:
        data = _read(path)
    except AuditInputError:
        return
    assert data.tokens == [["Alice", "met", "Bob"]], data.tokens


def test_lone_tab_line_at_the_end_and_empty_sentences_between_separators(tmp_path):
    path = tmp_path / "d.conll"
    path.write_text("-DOCSTART- -X- O O\n\nAlice B-PER\n\n\n \t \n-DOCSTART- O\nBob B-PER\nmet O\n\t", encoding="utf-8")
    data = _read(path)
    assert data.tokens == [["Alice"], ["Bob", "met"]] and data.first_lines == [3, 8]


def test_only_docstart_is_one_line_error(tmp_path, token_model, capsys):
    path = tmp_path / "only.conll"
    path.write_text("-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n", encoding="utf-8")
    _one_line_error(*_cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys), path)


@pytest.mark.parametrize("line", ["Alice\tB PER", "Alice\tB-PER extra\tO O", "Alice\tb_per"])
def test_tag_column_holding_spaces_or_junk_is_refused_with_line(tmp_path, token_model, capsys, line):
    path = tmp_path / "sp.conll"
    path.write_text(f"met\tO\n{line}\n", encoding="utf-8")
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    if "extra" in line:  # "B-PER extra" then "O O": the tag is the last tab field, 'O O'
        _one_line_error(code, err, path)
        assert "line 2" in err
        return
    _one_line_error(code, err, path)
    assert "line 2" in err, err


def test_empty_middle_tab_column_shifts_tag_col(tmp_path):
    """``Alice<TAB><TAB>NNP<TAB>B-PER``: an empty POS column. With --tag-col 3 (the 4th tab
    column) the tag is B-PER; dropping empty tab fields shifts the columns, so column 3 does not
    exist on that line (or a wrong column is read)."""
    path = tmp_path / "empty_col.conll"
    path.write_text("Alice\t\tNNP\tB-PER\nmet\tVB\tNNP\tO\n", encoding="utf-8")
    data = _read(path, tag_col=3)
    assert data.tags == [["B-PER", "O"]]


@pytest.mark.parametrize("token", ["<script>alert(1)</script>", "a\x00b", "\u202eevil", "zero\u200bwidth",
                                   "\U0001f600", "\x1b[31mred", "line\u2028sep", "&amp;"])
def test_hostile_tokens_are_read_verbatim(tmp_path, token):
    path = tmp_path / "h.conll"
    path.write_text(f"{token}\tB-PER\nmet\tO\n", encoding="utf-8")
    data = _read(path)
    assert data.tokens == [[token, "met"]]


def test_hostile_tokens_are_escaped_in_the_html_examples(tmp_path, token_model):
    """The example sentences of the HTML report show tokens; a ``<script>`` token must be escaped
    (and the report must never contain a live <script> carrying it)."""
    payload = "<script>alert('x')</script>"
    img = '<img src=x onerror=alert(1)>'
    sents = [([payload, "met", img, "in", "Paris"], ["B-PER", "O", "B-PER", "O", "B-LOC"])] * 6
    path = _conll(tmp_path / "x.conll", sents)
    out = tmp_path / "out"
    run_audit(AuditConfig(model=str(token_model), data=str(path), out=str(out), auditors=["performance"],
                          options={"performance": {"n_bootstrap": 50}}), progress=False)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert payload not in html and img not in html
    assert "&lt;script&gt;alert(" in html  # shown, escaped
    card = (out / "README.md").read_text(encoding="utf-8")
    assert payload not in card and img not in card


def test_a_very_long_line_and_a_long_sentence_are_windowed_not_truncated(tmp_path, token_model):
    """A 10,000-word sentence with a 16-token model: every word gets a prediction (windowed), and a
    single 200,000-character token is read as one word."""
    from audit.engine.target import Target

    words = ["Alice", "met", "Bob"] * 3334
    huge = "x" * 200_000
    path = tmp_path / "long.conll"
    path.write_text("\n".join(f"{w} O" for w in words) + f"\n\n{huge} O\n", encoding="utf-8")
    data = _read(path)
    assert [len(t) for t in data.tokens] == [len(words), 1]
    target = Target.load(str(token_model))
    pred = target.predict_words(data.tokens)
    assert [len(p) for p in pred.preds] == [len(words), 1]
    assert pred.windowed[0] and not pred.windowed[1]


# --------------------------------------------------------------------------- hostile JSONL


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_tags_as_a_string_are_not_silently_split(tmp_path, token_model, capsys):
    """In JSONL a list column holding a string is a format error (``"ner_tags": "B-PER O"``); the
    text-table convenience of splitting on whitespace should not apply to JSON, where types are
    explicit. Observed: silently split into tags."""
    path = _jsonl(tmp_path / "s.jsonl", [{"tokens": ["Alice", "met"], "ner_tags": "B-PER O"}])
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)


@pytest.mark.parametrize(("tokens", "tags", "expect"), [
    ([["Alice"], ["met"]], ["B-PER", "O"], "row 1"),  # nested token lists
    (["Alice", None], ["B-PER", "O"], "row 1"),  # a null token
    (["Alice", "met"], [["B-PER"], ["O"]], "row 1"),  # nested tag lists
    (["Alice", "met"], ["B-PER", None], "row 1"),  # a null tag
    (["Alice", 3], ["B-PER", "O"], "row 1"),  # a number as a token
])
def test_jsonl_malformed_cells_are_one_line_errors_naming_the_row(tmp_path, token_model, capsys, tokens, tags, expect):
    path = _jsonl(tmp_path / "m.jsonl", [{"tokens": ["Bob"], "ner_tags": ["B-PER"]},
                                         {"tokens": tokens, "ner_tags": tags}])
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)
    assert "row 2" in err, err


def test_integer_tags_without_classlabel_names_are_refused(tmp_path, token_model, capsys):
    path = _jsonl(tmp_path / "i.jsonl", [{"tokens": ["Alice", "met"], "ner_tags": [1, 0]}])
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)
    assert "integer tag ids" in err


def test_tags_in_other_case_map_to_the_models_spelling(tmp_path):
    path = tmp_path / "c.conll"
    path.write_text("Alice b-per\nmet o\nParis B-loc\n", encoding="utf-8")
    assert _read(path).tags == [["B-PER", "O", "B-LOC"]]


@pytest.mark.parametrize("col", ["0", "7", "-1"])
def test_tag_col_zero_or_out_of_range_is_one_line(tmp_path, token_model, capsys, col):
    path = _conll(tmp_path / "t.conll", _sentences(2))
    code, err = main(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--tag-col", col, "--quiet"]), capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1 and "tag" in err and "col" in err, err
    if col == "7":
        assert str(path) in err and "line 1" in err, err


@pytest.mark.parametrize("scheme", ["IOE2", "IO"])
def test_scheme_whose_prefixes_the_labels_lack_is_one_line(tmp_path, token_model, capsys, scheme):
    path = _conll(tmp_path / "t.conll", _sentences(2))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--scheme", scheme], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1 and "--scheme" in err, err


def test_tag_col_zero_from_the_cli_explains_that_column_0_is_the_token(tmp_path, token_model, capsys):
    """token_data.TAG_COL_INVALID explains '0-based (column 0 holds the token)', but the config
    validation (min=1) answers first with 'option tag_col: expected an integer >= 1', which names
    neither the flag as typed (--tag-col) nor why 0 is wrong."""
    path = _conll(tmp_path / "t.conll", _sentences(2))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--tag-col", "0"], capsys)
    assert code == 2 and "--tag-col" in err and "0-based" in err, err


@pytest.mark.parametrize("scheme", ["IOBES", "BILOU"])
def test_a_scheme_under_which_the_gold_data_holds_no_entity_is_refused(tmp_path, token_model, capsys, scheme):
    """--scheme IOBES on an IOB2 model and IOB2 data: B/I fit IOBES's prefixes, but strict IOBES
    drops every gold entity, so every number would be 0 with a 0-0 interval. Refused in one line."""
    path = _conll(tmp_path / "t.conll", _sentences(30))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--scheme", scheme], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"under the {scheme} scheme the gold tags hold no entity" in err and str(path) in err, err


def test_scheme_io_on_an_iob2_model_is_accepted_or_refused_cleanly(tmp_path, token_model, capsys):
    """--scheme IO allows only I- (and plain) tags; a B- model must be refused, not crash."""
    path = _conll(tmp_path / "t.conll", _sentences(2))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--scheme", "IO"], capsys)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err


# --------------------------------------------------------------------------- odd models


def test_data_in_another_scheme_than_the_model_is_one_line(tmp_path, capsys):
    """An IOBES model given IOB2-only data is fine (a subset); IOB2 model given S-/E- data names the
    unknown tags with a line number."""
    model = save_tiny_token_model(tmp_path / "m", labels=TAGS, max_length=16)
    path = tmp_path / "d.conll"
    path.write_text("Alice S-PER\nmet O\nNew B-LOC\nYork E-LOC\n", encoding="utf-8")
    code, err = _cli(["run", str(model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)
    assert "line 1" in err and "S-PER" in err and "E-LOC" in err, err


def test_io_model_with_plain_labels_audits(tmp_path):
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB1

    from audit.engine.target import Target

    labels = ["O", "PER", "LOC"]
    model = save_tiny_token_model(tmp_path / "m", labels=labels, max_length=16)
    sents = [(w, [t.split("-")[-1] if t != "O" else "O" for t in tags]) for w, tags in _sentences(30)]
    path = _conll(tmp_path / "d.conll", sents)
    report = run_audit(AuditConfig(model=str(model), data=str(path), out=str(tmp_path / "o"),
                                   auditors=["performance"], options={"performance": {"n_bootstrap": 50}}),
                       progress=False)
    perf = report.result("performance")
    assert perf.status == "ok" and perf.extra["scheme"] == "IO", perf.reason
    target = Target.load(str(model))
    pred = [[f"I-{labels[i]}" if labels[i] != "O" else "O" for i in p]
            for p in target.predict_words([w for w, _ in sents]).preds]
    gold = [[f"I-{t}" if t != "O" else "O" for t in tags] for _, tags in sents]
    expected = f1_score(gold, pred, mode="strict", scheme=IOB1, zero_division=0)
    assert perf.metric("entity_f1_micro").value == pytest.approx(expected, abs=1e-12)


def test_model_without_architectures_is_detected_by_its_labels(tmp_path):
    model = save_tiny_token_model(tmp_path / "m", architectures=False, max_length=16)
    path = _conll(tmp_path / "d.conll", _sentences(10))
    report = run_audit(AuditConfig(model=str(model), data=str(path), out=str(tmp_path / "o"),
                                   auditors=["performance"], options={"performance": {"n_bootstrap": 50}}),
                       progress=False)
    assert report.metadata["model"]["task"] == "token-classification"


def test_token_model_given_a_text_label_csv_is_one_line(tmp_path, token_model, capsys):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello world,0\nbye,1\n", encoding="utf-8")
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)
    assert "tokens" in err, err


def test_sequence_model_given_a_conll_txt_file_is_one_line(tmp_path, capsys):
    model = save_tiny_model(tmp_path / "seq", max_length=16)
    path = _conll(tmp_path / "d.txt", _sentences(3))
    code, err = _cli(["run", str(model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    _one_line_error(code, err, path)


def _slow_only(model: Path) -> None:
    """Replace the fast tokenizer with a slow BertTokenizer's files (vocab.txt, no tokenizer.json)."""
    from transformers import AutoTokenizer, BertTokenizer

    fast = AutoTokenizer.from_pretrained(model)
    vocab = sorted(fast.get_vocab().items(), key=lambda kv: kv[1])
    (model / "vocab.txt").write_text("\n".join(t for t, _ in vocab) + "\n", encoding="utf-8")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (model / name).unlink(missing_ok=True)
    BertTokenizer(str(model / "vocab.txt")).save_pretrained(model)


def test_slow_tokenizer_token_model_is_converted_or_refused_in_one_line(tmp_path, capsys):
    model = save_tiny_token_model(tmp_path / "m", max_length=16)
    _slow_only(model)
    path = _conll(tmp_path / "d.conll", _sentences(3))
    code, err = _cli(["run", str(model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--auditors", "performance"], capsys)
    assert "Traceback" not in err, err
    assert code == 0 or (code == 2 and err.count("\n") == 1 and "fast tokenizer" in err), (code, err)


def test_tokenizer_config_without_vocab_says_what_is_missing(tmp_path, capsys):
    """A folder with tokenizer_config.json (BertTokenizer) but no vocab.txt / tokenizer.json.
    Observed: 'cannot load the model: stat: path should be string, bytes, os.PathLike or integer,
    not NoneType' -- blames the model, names no file."""
    model = save_tiny_token_model(tmp_path / "m", max_length=16)
    (model / "tokenizer.json").unlink()
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    cfg["tokenizer_class"] = "BertTokenizer"
    (model / "tokenizer_config.json").write_text(json.dumps(cfg))
    path = _conll(tmp_path / "d.conll", _sentences(3))
    code, err = _cli(["run", str(model), "--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "NoneType" not in err and ("vocab" in err or "tokenizer" in err), err


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("scheme", ["IOBES", "BILOU", "IOE2"])
def test_headline_equals_seqeval_strict_for_other_schemes(tmp_path, scheme):
    """An untrained model in IOBES/BILOU/IOE2 predicts scheme-breaking garbage; the headline must
    still be exactly seqeval strict on the same word predictions."""
    import seqeval.scheme as schemes
    from seqeval.metrics import f1_score, precision_score, recall_score

    from audit.engine.target import Target
    from audit.tasks.tagging import seqeval_tags

    marks = {"IOBES": "BIES", "BILOU": "BILU", "IOE2": "IE"}[scheme]
    labels = ["O"] + [f"{m}-{t}" for t in ("PER", "LOC") for m in marks]
    rng = np.random.default_rng(1)
    sents = []
    for _ in range(40):
        n = int(rng.integers(2, 7))
        words = [str(w) for w in rng.choice(WORDS, size=n)]
        single = {"IOBES": "S", "BILOU": "U", "IOE2": "E"}[scheme]
        tags = [f"{single}-{rng.choice(['PER', 'LOC'])}" if rng.random() < 0.4 else "O" for _ in range(n)]
        sents.append((words, tags))
    model = save_tiny_token_model(tmp_path / "m", labels=labels, max_length=16, seed=3)
    path = _conll(tmp_path / "d.conll", sents)
    report = run_audit(AuditConfig(model=str(model), data=str(path), out=str(tmp_path / "o"),
                                   auditors=["performance"], options={"performance": {"n_bootstrap": 50}}),
                       progress=False)
    perf = report.result("performance")
    assert perf.status == "ok" and perf.extra["scheme"] == scheme, perf.reason
    target = Target.load(str(model))
    pred = [[labels[i] for i in p] for p in target.predict_words([w for w, _ in sents]).preds]
    gold = [t for _, t in sents]
    cls = getattr(schemes, scheme)
    g = [seqeval_tags(t, scheme=scheme) for t in gold]
    p = [seqeval_tags(t, scheme=scheme) for t in pred]
    for name, fn in (("entity_f1_micro", f1_score), ("entity_precision_micro", precision_score),
                     ("entity_recall_micro", recall_score)):
        expected = fn(g, p, mode="strict", scheme=cls, zero_division=0)
        assert perf.metric(name).value == pytest.approx(expected, abs=1e-12), name


def test_bootstrap_intervals_are_deterministic_and_contain_the_point(tmp_path, token_model):
    path = _conll(tmp_path / "d.conll", _sentences(60))
    got = []
    for k in range(2):
        report = run_audit(AuditConfig(model=str(token_model), data=str(path), out=str(tmp_path / f"o{k}"),
                                       auditors=["performance"], seed=7,
                                       options={"performance": {"n_bootstrap": 200}}), progress=False)
        perf = report.result("performance")
        got.append({m.name: (m.value, m.ci_low, m.ci_high) for m in perf.metrics})
    assert got[0] == got[1]
    for name in ("entity_f1_micro", "entity_precision_micro", "entity_recall_micro", "entity_f1_macro"):
        value, low, high = got[0][name]
        assert low is not None and high is not None, name
        assert low <= value <= high, (name, low, value, high)


# --------------------------------------------------------------------------- run options


def test_limit_and_sample_with_token_data(tmp_path, token_model):
    path = _conll(tmp_path / "d.conll", _sentences(50))
    report = run_audit(AuditConfig(model=str(token_model), data=str(path), out=str(tmp_path / "o"),
                                   auditors=["performance"], limit=30, sample=10,
                                   options={"performance": {"n_bootstrap": 20}}), progress=False)
    assert report.metadata["data"]["sentences"] == 10


def test_policy_threshold_on_entity_metrics_gates(tmp_path, token_model, capsys):
    path = _conll(tmp_path / "d.conll", _sentences(30))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--auditors", "performance", "--threshold",
                      "performance.entity_f1_micro >= 0.99 on ci_low: fail"], capsys)
    assert code == 1, err
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o2"),
                      "--auditors", "performance", "--threshold", "performance.entity_f1_mikro >= 0.5"], capsys)
    assert code == 2 and "entity_f1_micro" in err and err.count("\n") == 1, err


def test_baseline_from_a_sequence_model_is_a_clear_message(tmp_path, token_model, capsys, demo_planted):
    seq_out = tmp_path / "seq"
    code, _ = _cli(["run", str(demo_planted.model_dir), "--data", str(demo_planted.eval_path), "--out", str(seq_out),
                    "--auditors", "performance", "--limit", "40"], capsys)
    assert code in (0, 1)
    path = _conll(tmp_path / "d.conll", _sentences(20))
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "o"),
                      "--auditors", "performance", "--baseline", str(seq_out / "results.json")], capsys)
    # Either an error naming the task mismatch, or a run that states it; never a silent pass
    # comparing nothing, never a traceback.
    assert "Traceback" not in err, err
    if code == 2:
        assert "token" in err.lower() and err.count("\n") == 1, err
    else:
        results = json.loads((tmp_path / "o" / "results.json").read_text())
        text = json.dumps(results["metadata"].get("baseline", {})) + json.dumps(results.get("policy", {}))
        assert "task" in text.lower() or "sequence" in text.lower(), text[:2000]
        assert code == 1, "a baseline that compares nothing must fail"


def test_baseline_and_resume_with_a_token_model(tmp_path, token_model, capsys):
    path = _conll(tmp_path / "d.conll", _sentences(30))
    base = tmp_path / "base"
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(base), "--auditors",
                      "performance"], capsys)
    assert code == 0, err
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(tmp_path / "again"),
                      "--auditors", "performance", "--baseline", str(base / "results.json")], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "again" / "results.json").read_text())
    compared = json.dumps(results["policy"])
    assert "entity_f1_micro" in compared, compared[:1500]
    code, err = _cli(["run", str(token_model), "--data", str(path), "--out", str(base), "--auditors",
                      "performance", "--resume", "--overwrite"], capsys)
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.slow
def test_token_demo_twice_into_the_same_out(tmp_path, capsys):
    """The second demo into the same --out is refused in one line (overwrite rules as for `run`),
    and with --overwrite it runs again (exit 1: the planted model fails its gate)."""
    out = tmp_path / "demo"
    # performance alone: the refusal is about --out, and the gate that makes exit 1 is on entity F1 (the
    # whole token demo with every auditor runs in tests/test_token_audit.py).
    demo = ["demo", "--task", "token-classification", "--out", str(out), "--quiet", "--auditors", "performance"]
    first = main(demo)
    capsys.readouterr()
    second = main(demo)
    err = capsys.readouterr().err
    assert first == 1 and second == 2 and err.count("\n") == 1 and "--overwrite" in err, err
    third = main([*demo, "--overwrite"])
    err = capsys.readouterr().err
    assert third == 1 and "Traceback" not in err, err
    assert (out / "results.json").exists()
