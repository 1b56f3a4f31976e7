"""EvalSet: the rows to audit, from CSV/TSV/JSONL/Parquet, a ``datasets`` folder, or a hub
dataset spec (``name[:config]:split``); columns detected or given; labels mapped to the model's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import (
    COLUMN_MISSING,
    COLUMN_UNDETECTED,
    FILE_EMPTY,
    FILE_NO_ROWS,
    FILE_UNREADABLE,
    FORMAT_UNKNOWN,
    LABELS_UNKNOWN,
    PATH_MISSING,
    AuditInputError,
    did_you_mean,
)

TEXT_NAMES = ("text", "sentence", "sentence1", "review", "content", "comment_text", "comment",
              "document", "question", "premise", "input")
PAIR_NAMES = {"sentence1": "sentence2", "question": "context", "premise": "hypothesis"}
LABEL_NAMES = ("label", "labels", "target", "class", "gold", "y")
FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
MISSING_GROUP = "(missing)"  # the group of rows whose sensitive value is empty or null


@dataclass
class EvalSet:
    """Rows to audit. ``frame`` keeps every column of the used rows (sensitive columns too)."""

    source: str
    frame: pd.DataFrame
    text_col: str
    pair_col: str | None
    label_col: str | None
    texts: list[str]
    pairs: list[str] | None
    labels: np.ndarray | None  # (n,) class ids, or (n, k) 0/1 for multi-label
    label_names: list[str]
    multi_label: bool = False
    dropped_empty: int = 0
    rows_in_file: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def fingerprint(self) -> str:
        """sha256 of the rows actually used (texts, pairs, labels)."""
        h = hashlib.sha256()
        for i, text in enumerate(self.texts):
            h.update(text.encode("utf-8", "surrogatepass"))
            h.update(b"\x1f")
            if self.pairs is not None:
                h.update(self.pairs[i].encode("utf-8", "surrogatepass"))
            h.update(b"\x1f")
            if self.labels is not None:
                h.update(np.asarray(self.labels[i]).tobytes())
            h.update(b"\x1e")
        return h.hexdigest()

    def column(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise AuditInputError(
                COLUMN_MISSING.format(
                    path=self.source, column=name, role="sensitive",
                    hint=did_you_mean(name, map(str, self.frame.columns)),
                    columns=", ".join(map(str, self.frame.columns)),
                )
            )
        return self.frame[name]


def read_table(source: str | Path) -> pd.DataFrame:
    """Read a data file, a ``datasets`` folder, or a hub spec into a DataFrame."""
    source = str(source)
    path = Path(source)
    if path.is_dir():
        return _read_datasets_dir(path)
    if not path.exists():
        if _looks_like_hub_spec(source):
            return _read_hub(source)
        raise AuditInputError(PATH_MISSING.format(what="data file", path=source))
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise AuditInputError(FORMAT_UNKNOWN.format(path=source, suffix=suffix, formats=", ".join(FORMATS)))
    try:
        if path.stat().st_size == 0:
            raise AuditInputError(FILE_EMPTY.format(path=source))
        if suffix in (".csv", ".tsv"):
            # Only an empty cell is missing: a class named "None" or "NA" and a text saying "null"
            # are values (pandas' default would read them as missing).
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", encoding="utf-8",
                                quoting=3 if suffix == ".tsv" else 0, keep_default_na=False, na_values=[""])
        elif suffix == ".jsonl":
            # dtype=False: values stay what JSON says ("007" a string, not 7.0; "NaN" a string, not missing)
            frame = pd.read_json(path, lines=True, encoding="utf-8", dtype=False, convert_dates=False,
                                 keep_default_dates=False)
        elif suffix == ".json":
            frame = pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
        else:
            frame = pd.read_parquet(path)
    except AuditInputError:
        raise
    except pd.errors.EmptyDataError:
        raise AuditInputError(FILE_EMPTY.format(path=source)) from None
    except UnicodeDecodeError as exc:
        raise AuditInputError(
            FILE_UNREADABLE.format(path=source, kind="UTF-8 text",
                                   error=f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}")
        ) from None
    except PermissionError:
        raise AuditInputError(FILE_UNREADABLE.format(path=source, kind=suffix[1:], error="permission denied")) from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for bad files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditInputError(FILE_UNREADABLE.format(path=source, kind=suffix[1:], error=first)) from None
    if len(frame) == 0:
        raise AuditInputError(FILE_NO_ROWS.format(path=source))
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _looks_like_hub_spec(source: str) -> bool:
    parts = source.split(":")
    return 2 <= len(parts) <= 3 and all(parts) and not source.startswith((".", "/"))


def _read_hub(spec: str) -> pd.DataFrame:
    parts = spec.split(":")
    name, split = parts[0], parts[-1]
    config = parts[1] if len(parts) == 3 else None
    try:
        import datasets

        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # noqa: BLE001 - network, missing dataset, bad split
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditInputError(f"{spec}: cannot load the hub dataset: {first}") from None
    return ds.to_pandas()


def _read_datasets_dir(path: Path) -> pd.DataFrame:
    """A folder from ``Dataset.save_to_disk`` (or a DatasetDict: its 'test', 'validation' or
    only split)."""
    try:
        import datasets

        ds = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditInputError(f"{path}: not a data file or a saved `datasets` folder: {first}") from None
    if isinstance(ds, datasets.DatasetDict):
        for split in ("test", "validation", "eval"):
            if split in ds:
                ds = ds[split]
                break
        else:
            if len(ds) != 1:
                raise AuditInputError(f"{path}: a DatasetDict with splits {list(ds)}; name one as {path}/SPLIT")
            ds = next(iter(ds.values()))
    frame = ds.to_pandas()
    if len(frame) == 0:
        raise AuditInputError(FILE_NO_ROWS.format(path=path))
    return frame


def _pick(frame: pd.DataFrame, given: str | None, names: Sequence[str], *, source: str, role: str,
          option: str, required: bool) -> str | None:
    columns = list(frame.columns)
    if given is not None:
        if given not in columns:
            raise AuditInputError(
                COLUMN_MISSING.format(path=source, column=given, role=role,
                                      hint=did_you_mean(given, columns), columns=", ".join(columns))
            )
        return given
    lower = {c.lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    if required:
        raise AuditInputError(COLUMN_UNDETECTED.format(path=source, role=role, option=option,
                                                       columns=", ".join(columns)))
    return None


def load_evalset(
    source: str | Path,
    *,
    label_names: Sequence[str] | None = None,
    multi_label: bool = False,
    text_col: str | None = None,
    pair_col: str | None = None,
    label_col: str | None = None,
    require_labels: bool = False,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    sensitive: Sequence[str] = (),
    strict: bool = False,
    frame: pd.DataFrame | None = None,
) -> EvalSet:
    """Load rows to audit. ``label_names`` are the model's labels in id order; string labels
    map to them case-insensitively, integer labels must lie in range."""
    source = str(source)
    frame = read_table(source) if frame is None else frame  # ``frame``: the table already read from source
    rows_in_file = len(frame)
    tcol = _pick(frame, text_col, TEXT_NAMES, source=source, role="text", option="--text-col", required=True)
    pcol = pair_col
    if pcol is None and tcol.lower() in PAIR_NAMES:
        pcol = _pick(frame, None, [PAIR_NAMES[tcol.lower()]], source=source, role="pair text",
                     option="--pair-col", required=False)
    elif pcol is not None:
        pcol = _pick(frame, pcol, (), source=source, role="pair text", option="--pair-col", required=True)
    lcol = _pick(frame, label_col, LABEL_NAMES, source=source, role="label", option="--label-col",
                 required=require_labels)
    for col in sensitive:
        _pick(frame, col, (), source=source, role="sensitive", option="--sensitive", required=True)

    # Empty or missing texts cannot be scored: drop them and say how many.
    text = frame[tcol]
    empty = text.isna() | (text.astype(str).str.strip() == "")
    dropped = int(empty.sum())
    if strict and dropped:
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise AuditInputError(f"{source}: row {first + 1} has an empty text in column {tcol!r} "
                              f"({dropped} such rows; without --strict they are skipped and counted)")
    frame = frame.loc[~empty]
    if len(frame) == 0:
        raise AuditInputError(f"{source}: every row of column {tcol!r} is empty")
    if limit is not None:
        frame = frame.iloc[:limit]
    if sample is not None and sample < len(frame):
        idx = np.sort(np.random.default_rng(seed).choice(len(frame), size=sample, replace=False))
        frame = frame.iloc[idx]
    frame = frame.reset_index(names="row")
    notes = [f"{dropped} rows with an empty text were skipped"] if dropped else []
    for col in sensitive:  # a missing group value is its own, named group, never 'nan'
        missing = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if missing.any():
            frame[col] = frame[col].astype(object).where(~missing, MISSING_GROUP)
            notes.append(f"column {col!r}: {int(missing.sum())} rows have no value; "
                         f"they form the group {MISSING_GROUP!r}")

    texts = frame[tcol].astype(str).tolist()
    pairs = frame[pcol].fillna("").astype(str).tolist() if pcol else None
    labels = None
    names = list(label_names) if label_names is not None else None
    if lcol is not None:
        labels, names = _map_labels(frame[lcol], names, multi_label=multi_label, source=source, column=lcol)
    if names is None:
        names = []
    return EvalSet(source=source, frame=frame, text_col=tcol, pair_col=pcol, label_col=lcol, texts=texts,
                   pairs=pairs, labels=labels, label_names=names, multi_label=multi_label,
                   dropped_empty=dropped, rows_in_file=rows_in_file, notes=notes)


def _map_labels(series: pd.Series, names: list[str] | None, *, multi_label: bool, source: str,
                column: str) -> tuple[np.ndarray, list[str]]:
    """Map a label column to class ids (or a 0/1 matrix for multi-label)."""
    if series.isna().any():
        bad = int(series.isna().to_numpy().argmax())
        raise AuditInputError(f"{source}: row {bad + 1} has no value in label column {column!r}")
    if names is None:  # no model labels known: use the sorted distinct values
        values = series.explode() if multi_label else series
        names = sorted({str(v) for v in values})
    lookup: dict[str, int] = {n.lower(): i for i, n in enumerate(names)}
    for i in range(len(names)):
        lookup.setdefault(str(i), i)

    def to_id(value: Any) -> int | None:
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer()):
            v = int(value)
            return v if 0 <= v < len(names) else None
        return lookup.get(str(value).strip().lower())

    unknown: list[str] = []
    if multi_label:
        matrix = np.zeros((len(series), len(names)), dtype=int)
        for r, value in enumerate(series):
            items = value if isinstance(value, (list, tuple, np.ndarray)) else [
                s for s in str(value).replace("|", ",").split(",") if s.strip()]
            for item in items:
                idx = to_id(item)
                if idx is None:
                    unknown.append(str(item))
                else:
                    matrix[r, idx] = 1
        ids: np.ndarray = matrix
    else:
        out = []
        for value in series:
            idx = to_id(value)
            if idx is None:
                unknown.append(str(value))
                out.append(-1)
            else:
                out.append(idx)
        ids = np.asarray(out, dtype=int)
    if unknown:
        shown = sorted(set(unknown))
        listed = ", ".join(repr(u) for u in shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
        raise AuditInputError(LABELS_UNKNOWN.format(path=source, unknown=listed, column=column,
                                                    known=", ".join(repr(n) for n in names)))
    return ids, names
