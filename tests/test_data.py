"""EvalSet loading: formats, column detection, label mapping, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from audit.engine.data import load_evalset, read_table
from audit.errors import AuditInputError

LABELS = ["negative", "positive"]
ROWS = [{"sentence": f"row {i} was {'good' if i % 2 else 'bad'}", "label": LABELS[i % 2], "group": "ab"[i % 2]}
        for i in range(10)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", ".json"])
def test_reads_every_file_format_to_the_same_rows(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        path.write_text(json.dumps(ROWS))
    else:
        frame.to_parquet(path)
    ev = load_evalset(path, label_names=LABELS)
    assert ev.text_col == "sentence" and ev.label_col == "label"
    assert ev.texts == [r["sentence"] for r in ROWS]
    assert ev.labels.tolist() == [i % 2 for i in range(10)]


def test_reads_a_saved_datasets_folder(tmp_path):
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    ev = load_evalset(tmp_path / "ds", label_names=LABELS)
    assert len(ev) == 10 and ev.labels.tolist()[:2] == [0, 1]


def test_string_labels_map_case_insensitively_and_ints_pass_through(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["POSITIVE", "negative", "Positive"]}).to_csv(path, index=False)
    assert load_evalset(path, label_names=LABELS).labels.tolist() == [1, 0, 1]
    pd.DataFrame({"text": ["a", "b"], "label": [1, 0]}).to_csv(path, index=False)
    assert load_evalset(path, label_names=LABELS).labels.tolist() == [1, 0]


def test_unknown_labels_are_listed_with_the_models_labels(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["positive", "neutral", "meh"]}).to_csv(path, index=False)
    with pytest.raises(AuditInputError, match=r"labels 'meh', 'neutral' in column 'label' are not among the model's "
                                              r"labels 'negative', 'positive'"):
        load_evalset(path, label_names=LABELS)
    pd.DataFrame({"text": ["a"], "label": [7]}).to_csv(path, index=False)
    with pytest.raises(AuditInputError, match="'7'"):
        load_evalset(path, label_names=LABELS)


def test_missing_column_suggests_the_closest(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    with pytest.raises(AuditInputError, match=r"no column 'sentense' \(text\) \(did you mean 'sentence'\?\)"):
        load_evalset(path, text_col="sentense")
    with pytest.raises(AuditInputError, match=r"no column 'gruop' \(sensitive\) \(did you mean 'group'\?\)"):
        load_evalset(path, sensitive=["gruop"])


def test_undetectable_text_column_names_the_option(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"body": ["x"], "label": [0]}).to_csv(path, index=False)
    with pytest.raises(AuditInputError, match="pass --text-col"):
        load_evalset(path)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"text,label\n", "has a header but no rows"),
    (b"text,label\n\xff\xfe bad,1\n", "cannot read it as UTF-8 text: byte 0xff"),
])
def test_bad_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(AuditInputError, match=message) as info:
        read_table(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(AuditInputError, match="data file not found: ./nope.csv"):
        read_table("./nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(AuditInputError, match="unknown data format '.xlsx'"):
        read_table(tmp_path / "x.xlsx")


def test_empty_texts_are_skipped_and_counted(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", None, "  ", "b"], "label": [0, 1, 0, 1]}).to_csv(path, index=False)
    ev = load_evalset(path, label_names=LABELS)
    assert ev.texts == ["a", "b"] and ev.dropped_empty == 2 and ev.labels.tolist() == [0, 1]
    assert ev.frame["row"].tolist() == [0, 3]  # original row numbers are kept
    with pytest.raises(AuditInputError, match=r"row 2 has an empty text in column 'text' \(2 such rows"):
        load_evalset(path, label_names=LABELS, strict=True)


def test_limit_and_seeded_sample(tmp_path):
    path = tmp_path / "d.csv"
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": [i % 2 for i in range(100)]})
    frame.to_csv(path, index=False)
    assert load_evalset(path, limit=5).texts == [f"t{i}" for i in range(5)]
    a = load_evalset(path, sample=10, seed=1).texts
    assert a == load_evalset(path, sample=10, seed=1).texts != load_evalset(path, sample=10, seed=2).texts
    assert len(set(a)) == 10


def test_pair_columns_are_detected(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"sentence1": ["a"], "sentence2": ["b"], "label": [0]}).to_csv(path, index=False)
    ev = load_evalset(path)
    assert ev.pair_col == "sentence2" and ev.pairs == ["b"]


def test_fingerprint_changes_with_the_rows(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    a = load_evalset(path, label_names=LABELS)
    b = load_evalset(path, label_names=LABELS, limit=9)
    assert a.fingerprint == load_evalset(path, label_names=LABELS).fingerprint != b.fingerprint
    assert len(a.fingerprint) == 64 and np.asarray(a.labels).dtype.kind == "i"
