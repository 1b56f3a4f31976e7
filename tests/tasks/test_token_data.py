"""Token-classification data: CoNLL files as NER corpora write them, tables with list columns and
ClassLabel ids, and one-line errors naming the file and the line (or row)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from audit.errors import AuditInputError
from audit.tasks.token_data import TokenEvalSet, read_token_data
from tests.conftest import SHARED_DATA

MODEL_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [
    (["Anna", "lives", "in", "New", "York"], ["B-PER", "O", "O", "B-LOC", "I-LOC"]),
    (["Hi", "🙂", "Bob"], ["O", "O", "B-PER"]),
    (["Paris", "!"], ["B-LOC", "O"]),
]


def _conll(sentences=SENTENCES, *, sep="\t", blank="", extra=()) -> str:
    blocks = []
    for words, tags in sentences:
        blocks.append("\n".join(sep.join([w, *extra, t]) for w, t in zip(words, tags, strict=True)))
    return (f"\n{blank}\n").join(blocks) + "\n"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _read(path, **kwargs) -> TokenEvalSet:
    return read_token_data(path, tag_names=MODEL_TAGS, **kwargs)


def test_reads_a_conll_file_into_sentences_with_their_first_lines(tmp_path):
    data = _read(_write(tmp_path, "dev.conll", _conll()))
    assert data.tokens == [w for w, _ in SENTENCES] and data.tags == [t for _, t in SENTENCES]
    assert data.first_lines == [1, 7, 11] and len(data) == 3
    assert data.scheme == "IOB2" and data.gold_violations == 0
    assert data.columns.empty and len(data.columns) == 3


@pytest.mark.parametrize("blank", ["\t", "   ", " \t ", "\t\t"])
def test_a_line_holding_only_whitespace_separates_sentences(tmp_path, blank):
    data = _read(_write(tmp_path, "dev.conll", _conll(blank=blank)))
    assert data.tokens == [w for w, _ in SENTENCES]


@pytest.mark.parametrize(("sep", "suffix"), [("\t", ".conll"), (" ", ".txt"), ("   ", ".iob"), (" \t", ".bio"),
                                              ("\t", ".tsv")])
def test_tabs_and_runs_of_spaces_read_the_same(tmp_path, sep, suffix):
    data = _read(_write(tmp_path, f"dev{suffix}", _conll(sep=sep)))
    assert data.tokens == [w for w, _ in SENTENCES] and data.tags == [t for _, t in SENTENCES]


def test_docstart_lines_are_skipped_and_extra_columns_ignored(tmp_path):
    text = "-DOCSTART- -X- -X- O\n\n" + _conll(sep=" ", extra=("NNP", "B-NP")) + "-DOCSTART- -X- -X- O\n"
    data = _read(_write(tmp_path, "eng.testa", text))
    assert data.tokens == [w for w, _ in SENTENCES] and data.tags == [t for _, t in SENTENCES]
    assert data.first_lines == [3, 9, 13]


def test_tag_col_picks_another_column_zero_based(tmp_path):
    text = _conll(sep=" ", extra=("O",))  # column 1 all O, column 2 the NER tags
    data = _read(_write(tmp_path, "dev.conll", text), tag_col=1)
    assert all(set(tags) == {"O"} for tags in data.tags)
    assert _read(_write(tmp_path, "dev.conll", text), tag_col=2).tags == [t for _, t in SENTENCES]


def test_utf8_crlf_bom_and_line_separators_inside_tokens(tmp_path):
    # U+2028 and U+0085 end a line for str.splitlines, not for CoNLL; a tab-separated token may hold a space
    text = "\ufeffWow\tO\r\na\u2028b\tO\r\nx\x85y\tO\r\nNew York\tB-LOC\r\n\r\n🙂\tO\r\n"
    data = _read(_write(tmp_path, "dev.conll", text))
    assert data.tokens == [["Wow", "a\u2028b", "x\x85y", "New York"], ["🙂"]]
    assert data.tags == [["O", "O", "O", "B-LOC"], ["O"]] and data.first_lines == [1, 6]


def test_tags_match_the_models_spelling_case_aside(tmp_path):
    data = _read(_write(tmp_path, "dev.conll", "Anna\tb-per\nlives\to\n"))
    assert data.tags == [["B-PER", "O"]]


def test_an_i_after_o_is_counted_as_a_violation_not_refused(tmp_path):
    data = _read(_write(tmp_path, "dev.conll", "x\tO\nAnna\tI-PER\n\nBob\tB-PER\n"), scheme="IOB2")
    assert data.gold_violations == 1 and data.scheme == "IOB2"


def test_the_scheme_is_detected_from_the_gold_tags_when_the_labels_cannot_tell(tmp_path):
    data = _read(_write(tmp_path, "dev.conll", "Anna\tI-PER\nBob\tB-PER\nin\tO\nRome\tI-LOC\n"))
    assert data.scheme == "IOB1" and data.gold_violations == 0


def test_limit_and_a_seeded_sample_pick_sentences(tmp_path):
    sentences = [([f"w{i}", "x"], ["B-PER", "O"]) for i in range(30)]
    path = _write(tmp_path, "dev.conll", _conll(sentences))
    assert [s[0] for s in _read(path, limit=4).tokens] == ["w0", "w1", "w2", "w3"]
    first = _read(path, sample=5, seed=3)
    assert first.tokens == _read(path, sample=5, seed=3).tokens and len(first) == 5
    assert first.tokens != _read(path, sample=5, seed=4).tokens
    assert first.first_lines == [1 + 3 * int(words[0][1:]) for words in first.tokens]  # 2 lines and a blank each
    assert first.first_lines == sorted(first.first_lines)


def test_fingerprint_follows_tokens_and_tags(tmp_path):
    one = _read(_write(tmp_path, "a.conll", _conll()))
    same = _read(_write(tmp_path, "b.conll", _conll(sep=" ")))
    other = _read(_write(tmp_path, "c.conll", _conll().replace("B-PER\n", "O\n", 1)))
    assert one.fingerprint == same.fingerprint != other.fingerprint


def _rows(tag_of=lambda t: t):
    return [{"tokens": w, "ner_tags": [tag_of(t) for t in tags], "group": g}
            for (w, tags), g in zip(SENTENCES, ["a", "b", "a"], strict=True)]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_reads_tables_with_string_tags_and_keeps_the_other_columns(tmp_path, suffix):
    path = tmp_path / f"dev{suffix}"
    frame = pd.DataFrame(_rows())
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".json":
        path.write_text(json.dumps(_rows(), ensure_ascii=False), encoding="utf-8")
    else:
        frame.to_parquet(path)
    data = _read(path)
    assert data.tokens == [w for w, _ in SENTENCES] and data.tags == [t for _, t in SENTENCES]
    assert data.first_lines is None and data.columns["group"].tolist() == ["a", "b", "a"]
    assert list(data.columns.columns) == ["group"]


def test_a_tsv_with_a_tokens_header_is_a_table(tmp_path):
    lines = ["tokens\tner_tags\tgroup"] + [f"{json.dumps(w, ensure_ascii=False)}\t{' '.join(t)}\tg"
                                          for w, t in SENTENCES]
    data = _read(_write(tmp_path, "dev.tsv", "\n".join(lines) + "\n"))
    assert data.tokens == [w for w, _ in SENTENCES] and data.tags == [t for _, t in SENTENCES]


DATASET_NAMES = ["B-LOC", "O", "I-PER", "I-LOC", "B-PER"]  # not the model's order


def _dataset(names=DATASET_NAMES):
    import datasets

    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
                                  "group": datasets.Value("string")})
    return datasets.Dataset.from_list(_rows(names.index), features=features)


def test_classlabel_ids_map_through_the_datasets_own_names(tmp_path):
    import datasets

    datasets.disable_progress_bars()
    ds = _dataset()
    ds.save_to_disk(str(tmp_path / "single"))
    datasets.DatasetDict({"train": ds, "validation": ds}).save_to_disk(str(tmp_path / "dict"))
    ds.to_parquet(str(tmp_path / "dev.parquet"))
    for source in ("single", "dict", "dev.parquet"):
        data = _read(tmp_path / source)
        assert data.tags == [t for _, t in SENTENCES], source
        assert data.columns["group"].tolist() == ["a", "b", "a"]


def test_integer_tags_without_names_are_refused(tmp_path):
    path = tmp_path / "dev.jsonl"
    pd.DataFrame(_rows(MODEL_TAGS.index)).to_json(path, orient="records", lines=True)
    with pytest.raises(AuditInputError, match=r"dev.jsonl: row 1: column 'ner_tags' holds integer tag ids, but"):
        _read(path)


def _bad_cases():
    ok = "Anna\tB-PER\nlives\tO\n"
    return [
        ("no-tag.conll", ok + "\nBob\n", {}, r"no-tag.conll: line 4: a token without a tag \('Bob'\)"),
        ("unknown.conll", ok + "\nBob\tB-ORG\nin\tI-ORG\nRome\tB-XX\n", {},
         r"unknown.conll: line 4: tag 'B-ORG' is not among the model's tags; unknown tags in the data: "
         r"'B-ORG', 'I-ORG', 'B-XX'; the model's tags: 'O', 'B-PER'"),
        ("empty.conll", "", {}, r"empty.conll: the file is empty"),
        ("blank.conll", " \n\t\n", {}, r"blank.conll: the file is empty"),
        ("docstart.conll", "-DOCSTART- O\n\n", {}, r"docstart.conll: no sentences"),
        ("cols.conll", ok + "Rome\tB-LOC\n", {"tag_col": 2},
         r"cols.conll: line 1: no column 2 for --tag-col \(0-based"),
        ("zero.conll", ok, {"tag_col": 0}, r"option --tag-col: 0 is the token column; it is 0-based"),
        ("latin1.conll", None, {}, r"latin1.conll: cannot read it as UTF-8 text: byte 0xe9 on line 3"),
        ("lengths.jsonl", [{"tokens": ["a", "b"], "ner_tags": ["O"]}], {},
         r"lengths.jsonl: row 1: 2 tokens in column 'tokens' but 1 tags in column 'ner_tags'"),
        ("unknown.jsonl", [{"tokens": ["a"], "ner_tags": ["O"]}, {"tokens": ["b"], "ner_tags": ["B-ORG"]}], {},
         r"unknown.jsonl: row 2: tag 'B-ORG' is not among"),
        ("missing.jsonl", [{"words": ["a"], "ner_tags": ["O"]}], {},
         r"missing.jsonl: no column 'tokens' \(tokens, --tokens-col\); columns are words, ner_tags"),
        ("notlist.jsonl", [{"tokens": 3, "ner_tags": ["O"]}], {}, r"notlist.jsonl: row 1: column 'tokens' holds int"),
        ("table.jsonl", [{"tokens": ["a"], "ner_tags": ["O"]}], {"tag_col": 1}, r"--tag-col is for CoNLL files"),
        ("nosent.jsonl", [{"tokens": [], "ner_tags": []}], {}, r"nosent.jsonl: no sentences"),
        ("scheme.conll", ok, {"scheme": "IOE2"}, r"option --scheme IOE2: the model's labels 'B-PER', 'B-LOC'"),
    ]


@pytest.mark.parametrize(("name", "content", "options", "message"), _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_bad_input_is_one_line_naming_the_file_and_the_line(tmp_path, name, content, options, message):
    path = tmp_path / name
    if content is None:
        path.write_bytes("Anna\tB-PER\n\ncaf\u00e9\tO\n".encode("latin-1"))
    elif isinstance(content, list):
        path.write_text("\n".join(json.dumps(row) for row in content) + "\n", encoding="utf-8")
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AuditInputError, match=message) as info:
        _read(path, **options)
    assert "\n" not in str(info.value)


def test_integer_ids_need_classlabel_names_and_must_lie_among_them(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    datasets.disable_progress_bars()
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.Value("int64"))})
    datasets.Dataset.from_list([{"tokens": ["a"], "ner_tags": [0]}], features=features).to_parquet(
        str(tmp_path / "ids.parquet"))
    with pytest.raises(AuditInputError, match=r"ids.parquet: row 1: column 'ner_tags' holds integer tag ids"):
        _read(tmp_path / "ids.parquet")
    names = {"ner_tags": {"feature": {"names": ["O", "B-PER"], "_type": "ClassLabel"}, "_type": "List"}}
    table = pa.Table.from_pylist([{"tokens": ["a"], "ner_tags": [1]}, {"tokens": ["b"], "ner_tags": [7]}])
    table = table.replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": names}})})
    pq.write_table(table, tmp_path / "range.parquet")
    with pytest.raises(AuditInputError, match=r"range.parquet: row 2: tag id 7 in column 'ner_tags' is outside the "
                                              r"dataset's 2 tag names"):
        _read(tmp_path / "range.parquet")


@pytest.mark.integration
def test_reads_wnut17_dev_as_iob2():
    path = SHARED_DATA / "wnut17" / "dev.conll"
    if not path.exists():
        pytest.skip("shared WNUT-17 data absent")
    kinds = ["corporation", "creative-work", "group", "location", "person", "product"]
    data = read_token_data(path, tag_names=["O"] + [f"{p}-{k}" for k in kinds for p in "BI"])
    assert len(data) == 1009 and sum(len(t) for t in data.tokens) == 15733
    assert data.scheme == "IOB2" and data.first_lines[:2] == [1, 14]
    assert {t for tags in data.tags for t in tags} >= {"B-creative-work", "I-creative-work", "O"}


def test_table_rows_without_tokens_are_skipped_and_counted_and_columns_stay_aligned(tmp_path):
    rows = [{"tokens": [], "ner_tags": [], "group": "none"}, *_rows()]
    path = tmp_path / "dev.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    data = _read(path, sample=2, seed=1)
    assert data.dropped_empty == 1 and len(data) == 2
    by_first = {w[0]: g for (w, _), g in zip(SENTENCES, ["a", "b", "a"], strict=True)}
    assert data.columns["group"].tolist() == [by_first[words[0]] for words in data.tokens]
