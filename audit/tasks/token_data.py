"""TokenEvalSet: sentences to audit for a token classifier, as words and gold tags, read from a
CoNLL file or from a table (JSONL, JSON, Parquet, a ``datasets`` folder, a TSV/CSV with list
columns), with the tags checked against the model's and the tag scheme resolved."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.engine.data import read_table
from audit.errors import (
    COLUMN_MISSING,
    FILE_EMPTY,
    FILE_UNREADABLE,
    OPTION_INVALID,
    PATH_MISSING,
    AuditInputError,
    did_you_mean,
    printable,
)
from audit.tasks.tagging import OUTSIDE, entity_spans, normalize_scheme, resolve_scheme, violations

TABLE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")  # and .tsv when its header names the tokens column
DOCSTART = "-DOCSTART-"  # CoNLL-2003's document separator line
SHOWN_CAP = 12  # tags named in one error line, at most
_SPACES = re.compile(" +")

TAG_MISSING = ("{path}: line {line}: a token without a tag ({token!r}); expected the token, then its tag, "
               "separated by tabs or spaces")
TAG_COL_ABSENT = ("{path}: line {line}: no column {col} for --tag-col (0-based: column 0 is the token); "
                  "the line has {n} columns")
TAG_COL_INVALID = "{col} is {problem}; it is 0-based (column 0 holds the token), so tags are in column 1 or later"
TAG_COL_TABLE = "--tag-col is for CoNLL files; {path} is a table: name its tags column with --tags-col"
TAGS_UNKNOWN = ("{path}: {where}: tag {first!r} is not among the model's tags; unknown tags in the data: {unknown}; "
                "the model's tags: {known}")
LENGTH_MISMATCH = "{path}: row {row}: {n_tokens} tokens in column {tokens!r} but {n_tags} tags in column {tags!r}"
NOT_A_LIST = "{path}: row {row}: column {column!r} holds {kind}, not a list of {what}"
TOKEN_NOT_TEXT = "{path}: row {row}: column {column!r} holds a {kind} among its tokens; tokens are strings"
TYPED_SUFFIXES = (".jsonl", ".json", ".parquet")  # tables whose cells carry their own types
NO_GOLD_ENTITY = ("{path}: under the {scheme} scheme the gold tags hold no entity ({violations:,} transitions it "
                  "forbids): the data is not tagged in {scheme}; check --scheme")
IDS_UNNAMED = ("{path}: row {row}: column {column!r} holds integer tag ids, but the data carries no tag names "
               "(a datasets ClassLabel feature); write the tags as strings")
ID_OUT_OF_RANGE = "{path}: row {row}: tag id {value} in column {column!r} is outside the dataset's {n} tag names"
NO_SENTENCES = "{path}: no sentences (only {what})"


@dataclass(frozen=True, kw_only=True)
class TokenEvalSet:
    """Sentences to audit. ``first_lines``: the 1-based line of each sentence's first token in a
    CoNLL file (None for tables); ``columns``: one row per sentence with a table's other columns
    (a sensitive attribute, an id), no columns for CoNLL; ``gold_violations``: transitions in the
    gold tags that the scheme forbids (counted, not refused: published corpora have some)."""

    source: str
    tokens: list[list[str]]
    tags: list[list[str]]
    first_lines: list[int] | None
    columns: pd.DataFrame
    scheme: str
    gold_violations: int
    dropped_empty: int = 0  # table rows with no tokens, skipped

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def fingerprint(self) -> str:
        """sha256 of the sentences used (tokens, tags, other columns), as ``EvalSet.fingerprint``."""
        h = hashlib.sha256()
        for words, tags in zip(self.tokens, self.tags, strict=True):
            for part in (words, tags):
                for item in part:
                    h.update(item.encode("utf-8", "surrogatepass"))
                    h.update(b"\x1f")
                h.update(b"\x1d")
            h.update(b"\x1e")
        if len(self.columns.columns):
            h.update(self.columns.to_json(orient="split", default_handler=str).encode("utf-8", "surrogatepass"))
        return h.hexdigest()


def read_token_data(
    source: str | Path,
    *,
    tag_names: Sequence[str],
    scheme: str | None = None,
    tokens_col: str = "tokens",
    tags_col: str = "ner_tags",
    tag_col: int | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> TokenEvalSet:
    """Read gold-tagged sentences. ``tag_names``: the model's tags (``id2label`` in id order); a gold
    tag must be one of them (case aside). ``scheme``: the user's ``--scheme``, else detected from
    the model's tags and the gold sentences. ``tag_col``: the CoNLL column holding the tag, 0-based
    (0 is the token), the last column when None. ``limit``/``sample``: the first N sentences, then
    a seeded random N of them, as ``load_evalset`` does with rows."""
    source = str(source)
    path = Path(source)
    scheme = normalize_scheme(scheme) if scheme is not None else None  # a bad option fails before the file is read
    if tag_col is not None and (isinstance(tag_col, bool) or not isinstance(tag_col, int) or tag_col < 1):
        problem = "the token column" if tag_col == 0 else "not a column number"
        raise AuditInputError(OPTION_INVALID.format(
            option="--tag-col", problem=TAG_COL_INVALID.format(col=printable(tag_col, limit=40), problem=problem)))
    columns: pd.DataFrame | None = None
    first_lines: list[int] | None = None
    dropped = 0
    if _is_table(path, tokens_col):
        if tag_col is not None:
            raise AuditInputError(TAG_COL_TABLE.format(path=source))
        tokens, raw_tags, columns, dropped, places = _read_table(source, tokens_col=tokens_col, tags_col=tags_col)
    else:
        tokens, raw_tags, first_lines = _read_conll(path, source=source, tag_col=tag_col)
        places = None
    tags = _check_tags(raw_tags, tag_names, source=source, places=places, first_lines=first_lines)
    name = resolve_scheme(labels=tag_names, scheme=scheme, sequences=tags)
    if any(t != OUTSIDE for seq in tags for t in seq) and not any(entity_spans(seq, scheme=name) for seq in tags):
        raise AuditInputError(NO_GOLD_ENTITY.format(path=source, scheme=name, violations=sum(
            len(violations(seq, scheme=name)) for seq in tags)))

    keep = np.arange(len(tokens))
    if limit is not None:
        keep = keep[:limit]
    if sample is not None and sample < len(keep):
        keep = keep[np.sort(np.random.default_rng(seed).choice(len(keep), size=sample, replace=False))]
    tokens = [tokens[i] for i in keep]
    tags = [tags[i] for i in keep]
    first_lines = [first_lines[i] for i in keep] if first_lines is not None else None
    frame = columns.iloc[keep].reset_index(drop=True) if columns is not None else pd.DataFrame(index=range(len(keep)))
    return TokenEvalSet(source=source, tokens=tokens, tags=tags, first_lines=first_lines, columns=frame,
                        scheme=name, gold_violations=sum(len(violations(seq, scheme=name)) for seq in tags),
                        dropped_empty=dropped)


def _is_table(path: Path, tokens_col: str) -> bool:
    if path.is_dir():
        return True
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return True
    if not path.exists():
        return not path.suffix  # a hub spec (name:config:split) is read by read_table; else PATH_MISSING below
    if suffix == ".tsv":  # a table only when its header row names the tokens column
        with open(path, "rb") as handle:
            header = handle.readline().decode("utf-8", "replace").rstrip("\r\n")
        return tokens_col in [field.strip() for field in header.split("\t")]
    return False


def _read_conll(path: Path, *, source: str, tag_col: int | None) -> tuple[list[list[str]], list[list[str]], list[int]]:
    """One token per line, tag in the last column (or ``tag_col``); sentences end at a blank line,
    one holding only whitespace too (WNUT-17's train file has lines holding a lone tab)."""
    if not path.exists():
        raise AuditInputError(PATH_MISSING.format(what="data file", path=source))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AuditInputError(FILE_UNREADABLE.format(path=source, kind="text", error=exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise AuditInputError(FILE_UNREADABLE.format(
            path=source, kind="UTF-8 text", error=f"byte 0x{raw[exc.start]:02x} on line {line}")) from None
    if not text.strip():
        raise AuditInputError(FILE_EMPTY.format(path=source))
    # Line ends: "\n", "\r\n", and a lone "\r" (old Mac files), which would otherwise glue lines.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    first_lines: list[int] = []
    words: list[str] = []
    marks: list[str] = []
    # split on "\n" only: str.splitlines would also break at U+2028, U+0085 and other characters
    # that noisy user text holds inside tokens.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        fields = _fields(line)
        if not fields or fields[0] == DOCSTART:
            if words:
                tokens.append(words)
                tags.append(marks)
                words, marks = [], []
            continue
        if len(fields) == 1:
            raise AuditInputError(TAG_MISSING.format(path=source, line=number, token=printable(fields[0], limit=80)))
        col = len(fields) - 1 if tag_col is None else tag_col
        if col >= len(fields):
            raise AuditInputError(TAG_COL_ABSENT.format(path=source, line=number, col=col, n=len(fields)))
        if not words:
            first_lines.append(number)
        words.append(fields[0])
        marks.append(fields[col])
    if words:
        tokens.append(words)
        tags.append(marks)
    if not tokens:
        raise AuditInputError(NO_SENTENCES.format(path=source, what=f"blank lines and {DOCSTART} lines"))
    return tokens, tags, first_lines


def _fields(line: str) -> list[str]:
    """A CoNLL line's columns: split on tabs when it has any (a token may then hold a space), else
    on runs of spaces. A line of whitespace alone has none."""
    if not line.strip():
        return []
    if "\t" in line:  # tab-separated: an empty column keeps its place, so --tag-col means one column
        parts = [p.strip(" ") for p in line.rstrip("\t").split("\t")]
        return parts if parts and parts[0] else [p for p in parts if p]
    return [p for p in _SPACES.split(line.strip(" ")) if p]


def _read_table(source: str, *, tokens_col: str, tags_col: str
                ) -> tuple[list[list[str]], list[list[Any]], pd.DataFrame, int, list[str]]:
    frame = read_table(source)
    for column, role in ((tokens_col, "tokens, --tokens-col"), (tags_col, "tags, --tags-col")):
        if column not in frame.columns:
            raise AuditInputError(COLUMN_MISSING.format(
                path=source, column=column, role=role, hint=did_you_mean(column, frame.columns),
                columns=", ".join(frame.columns)))
    names = _tag_names(Path(source), tags_col)
    typed = Path(source).is_dir() or Path(source).suffix.lower() in TYPED_SUFFIXES
    tokens, tags, rows = [], [], []
    for row, (words, marks) in enumerate(zip(frame[tokens_col], frame[tags_col], strict=True), start=1):
        words = _as_list(words, source=source, row=row, column=tokens_col, what="tokens", typed=typed)
        marks = _as_list(marks, source=source, row=row, column=tags_col, what="tags", typed=typed)
        bad = next((w for w in words if not isinstance(w, str)), None) if typed else None
        if bad is not None or any(w is None for w in words):
            raise AuditInputError(TOKEN_NOT_TEXT.format(path=source, row=row, column=tokens_col,
                                                        kind=printable(type(bad).__name__, limit=40)))
        if len(words) != len(marks):
            raise AuditInputError(LENGTH_MISMATCH.format(path=source, row=row, n_tokens=len(words), tokens=tokens_col,
                                                         n_tags=len(marks), tags=tags_col))
        if not words:
            continue
        tokens.append([str(w) for w in words])
        tags.append([_tag_value(m, names, source=source, row=row, column=tags_col) for m in marks])
        rows.append(row)
    if not tokens:
        raise AuditInputError(NO_SENTENCES.format(path=source, what=f"rows with no tokens in column {tokens_col!r}"))
    others = frame.drop(columns=[tokens_col, tags_col]).iloc[[r - 1 for r in rows]].reset_index(drop=True)
    return tokens, tags, others, len(frame) - len(rows), [f"row {r}" for r in rows]


def _as_list(value: Any, *, source: str, row: int, column: str, what: str, typed: bool = False) -> list[Any]:
    """A list cell; from a text table (TSV, CSV), a JSON or Python list literal, or words split on
    whitespace. A missing cell is an empty list. In a ``typed`` table (JSON, Parquet, datasets),
    where a cell's type is explicit, only a real list is a list."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str) and not typed:
        text = value.strip()
        if not text.startswith("["):
            return text.split()
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, list):
                return parsed
    raise AuditInputError(NOT_A_LIST.format(path=source, row=row, column=column, what=what,
                                            kind=printable(type(value).__name__, limit=40)))


def _tag_value(value: Any, names: list[str] | None, *, source: str, row: int, column: str) -> Any:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if names is None:
            raise AuditInputError(IDS_UNNAMED.format(path=source, row=row, column=column))
        if not 0 <= int(value) < len(names):
            raise AuditInputError(ID_OUT_OF_RANGE.format(path=source, row=row, value=int(value), column=column,
                                                         n=len(names)))
        return names[int(value)]
    return str(value)


def _tag_names(path: Path, column: str) -> list[str] | None:
    """The names of a ClassLabel tags column, from a ``datasets`` folder's ``dataset_info.json`` or
    the ``huggingface`` metadata that ``Dataset.to_parquet`` writes; None when there are none."""
    info: Any = None
    try:
        if path.is_dir():
            info_path = path / "dataset_info.json"
            if not info_path.exists() and (path / "dataset_dict.json").exists():
                splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
                # the split read_table reads: test, validation, eval, or the only one
                chosen = next((s for s in ("test", "validation", "eval") if s in splits), splits[0] if splits else "")
                info_path = path / chosen / "dataset_info.json"
            info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else None
        elif path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            info = json.loads(meta[b"huggingface"]).get("info") if b"huggingface" in meta else None
    except (OSError, ValueError, KeyError, AttributeError, IndexError):
        return None
    feature = (info or {}).get("features", {}).get(column) if isinstance(info, dict) else None
    return _class_names(feature)


def _class_names(feature: Any) -> list[str] | None:
    """The ``names`` of the first ClassLabel inside a serialised feature (``List``/``Sequence`` of
    ClassLabel, however the datasets version spells the wrapper)."""
    if isinstance(feature, dict):
        if feature.get("_type") == "ClassLabel" and isinstance(feature.get("names"), list):
            return [str(n) for n in feature["names"]]
        for value in feature.values():
            found = _class_names(value)
            if found is not None:
                return found
    elif isinstance(feature, list):
        for value in feature:
            found = _class_names(value)
            if found is not None:
                return found
    return None


def _check_tags(tags: list[list[Any]], tag_names: Sequence[str], *, source: str, places: list[str] | None,
                first_lines: list[int] | None) -> list[list[str]]:
    """Gold tags in the model's spelling (matched exactly, else case-insensitively); tags the model
    does not know are one error naming the first place and every unknown tag."""
    known = [str(n) for n in tag_names]
    lookup = {n: n for n in known}
    lowered: dict[str, list[str]] = {}
    for n in known:
        lowered.setdefault(n.lower(), []).append(n)
    for low, spellings in lowered.items():
        if len(spellings) == 1:
            lookup.setdefault(low, spellings[0])
    out: list[list[str]] = []
    unknown: dict[str, str] = {}
    for i, seq in enumerate(tags):
        mapped = []
        for j, tag in enumerate(seq):
            name = lookup.get(tag) or lookup.get(tag.lower())
            if name is None and tag not in unknown:
                # a CoNLL sentence's tokens are on consecutive lines; a table names its row
                unknown[tag] = f"line {first_lines[i] + j}" if first_lines is not None else places[i]
            mapped.append(name)
        out.append(mapped)
    if unknown:
        listed = list(unknown)
        first = listed[0]
        shown = ", ".join(repr(printable(t, limit=80)) for t in listed[:SHOWN_CAP])
        if len(listed) > SHOWN_CAP:
            shown += f" and {len(listed) - SHOWN_CAP} more"
        model = ", ".join(repr(printable(t, limit=80)) for t in known[:SHOWN_CAP * 4])
        if len(known) > SHOWN_CAP * 4:
            model += f" and {len(known) - SHOWN_CAP * 4} more"
        raise AuditInputError(TAGS_UNKNOWN.format(path=source, where=unknown[first], first=printable(first, limit=80),
                                                  unknown=shown, known=model))
    return out
