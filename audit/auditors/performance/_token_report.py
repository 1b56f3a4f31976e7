"""The entity-level and token-level reports of a token classifier, as the field prints them.

Entity level: seqeval (Nakayama 2018), the reference every NER paper's numbers are compared with.
Strict matching under the tagging scheme (an entity counts only if its type and both boundaries
match, and only chunks that are well-formed under the scheme are entities) is the headline;
seqeval's default mode, compatible with CoNLL-2000's ``conlleval`` script (Tjong Kim Sang and
Buchholz 2000), which repairs ill-formed chunks (``O I-PER`` starts a PER), is shown beside it
because published numbers use it. Token level: scikit-learn's ``classification_report`` over
the word tags, with ``O`` shown as a diagnostic row outside the averages (its huge support would
otherwise drown every entity tag).

Plain types without prefixes (scheme ``IO``) have no seqeval scheme: each tag ``T`` is read as
``I-T`` under IOB1, whose chunks are then the maximal runs of one type, which is all IO can
express (two adjacent entities of one type merge, in the data as in the predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from audit.tasks.tagging import OUTSIDE, seqeval_scheme, seqeval_tags

if TYPE_CHECKING:
    import pandas as pd

AVERAGES = ("micro avg", "macro avg", "weighted avg")
REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")
DIGITS = 4  # the token report's text, as the model card prints it
STRICT_LABEL = "strict (seqeval mode='strict' under the scheme)"
LENIENT_LABEL = "lenient (seqeval default mode, conlleval-compatible; not the headline)"
O_NOTE = "O is a diagnostic row: it is not in the averages."


def _as_seqeval(sequences: Sequence[Sequence[str]], scheme: str, *, strict: bool) -> list[list[str]]:
    """The sentences as seqeval reads them (:func:`audit.tasks.tagging.seqeval_tags` on each)."""
    return [seqeval_tags(seq, scheme=scheme, strict=strict) for seq in sequences]


def strict_spans(sequences: Sequence[Sequence[str]], scheme: str) -> list[list[tuple[str, int, int]]]:
    """Per sentence, the strict entities as (type, start, end), ``end`` exclusive, in order:
    exactly seqeval's ``Entities`` under the scheme, the spans its strict report counts."""
    from seqeval.scheme import Entities

    entities = Entities(_as_seqeval(sequences, scheme, strict=True), seqeval_scheme(scheme)).entities
    return [[(e.tag, e.start, e.end) for e in sentence] for sentence in entities]


def entity_reports(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(strict, lenient) entity reports: seqeval's ``classification_report`` as a DataFrame,
    one row per entity type (sorted) then the micro, macro and weighted averages.

    With no entity in gold nor predictions the macro average is a mean over no types: NaN
    (seqeval's value; its NumPy warning is silenced)."""
    import warnings

    from seqeval.metrics import classification_report

    frames = []
    for lenient in (False, True):
        g, p = _as_seqeval(gold, scheme, strict=not lenient), _as_seqeval(pred, scheme, strict=not lenient)
        kwargs = {} if lenient else {"mode": "strict", "scheme": seqeval_scheme(scheme)}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            report = classification_report(g, p, output_dict=True, zero_division=0, **kwargs)
        frame = _report_frame(report, index_name="entity type")
        frame.attrs["matching"] = LENIENT_LABEL if lenient else STRICT_LABEL
        frames.append(frame)
    return frames[0], frames[1]


def token_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], tag_names: Sequence[str]
                 ) -> tuple[pd.DataFrame, str]:
    """scikit-learn's ``classification_report`` over the word tags, as (DataFrame, text).

    The averages are over every tag but ``O`` (sklearn's ``labels=``); the ``O`` row is shown
    in ``tag_names`` order, with ``diagnostic`` True, and inserted into the text in the same
    format plus a one-line note. When ``O`` never occurs, sklearn prints ``accuracy`` instead
    of ``micro avg`` (then the two are equal); the table keeps its row, as sklearn does."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import classification_report, precision_recall_fscore_support

    # Tags as their positions in tag_names: the same report, about 8 times faster on 50,000
    # words than sklearn sorting strings.
    code = {t: i for i, t in enumerate(tag_names)}
    y_true = np.array([code[t] for seq in gold for t in seq], dtype=np.int64)
    y_pred = np.array([code[t] for seq in pred for t in seq], dtype=np.int64)
    labels = [t for t in tag_names if t != OUTSIDE]
    kwargs = {"labels": [code[t] for t in labels], "target_names": labels, "zero_division": 0}
    report = classification_report(y_true, y_pred, output_dict=True, **kwargs)
    text = classification_report(y_true, y_pred, digits=DIGITS, **kwargs)
    frame = _report_frame(report, index_name="tag")
    frame.insert(len(frame.columns), "diagnostic", False)
    if OUTSIDE not in tag_names:
        return frame, text
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[code[OUTSIDE]], average=None,
                                                 zero_division=0)
    o_row = pd.DataFrame([[float(p[0]), float(r[0]), float(f[0]), int(s[0]), True]], columns=frame.columns,
                         index=pd.Index([OUTSIDE], name="tag"))
    at = list(tag_names).index(OUTSIDE)  # the O row's place among the tag rows
    frame = pd.concat([frame.iloc[:at], o_row, frame.iloc[at:]])
    # sklearn's row format (sklearn/metrics/_classification.py): names right-aligned to the
    # widest of the labels and "weighted avg"; "O" never widens it.
    width = max(max(len(t) for t in labels), len("weighted avg"), DIGITS)
    o_line = f"{OUTSIDE:>{width}s} " + "".join(f" {v:>9.{DIGITS}f}" for v in (p[0], r[0], f[0])) + f" {s[0]:>9}\n"
    lines = text.splitlines(keepends=True)
    lines.insert(2 + at, o_line)  # after the header and its blank line
    return frame, "".join(lines) + "\n" + O_NOTE + "\n"


def _report_frame(report: dict, *, index_name: str) -> pd.DataFrame:
    """A classification-report dict as a DataFrame of plain floats and int supports; sklearn's
    ``accuracy`` scalar becomes a row with only f1-score (the accuracy) and the total support."""
    import pandas as pd

    rows, names = [], []
    total = 0
    for name, values in report.items():
        if isinstance(values, dict):
            rows.append([float(values["precision"]), float(values["recall"]), float(values["f1-score"]),
                         int(values["support"])])
            total = int(values["support"]) if name in AVERAGES else total
        else:
            rows.append([float("nan"), float("nan"), float(values), None])
        names.append(name)
    frame = pd.DataFrame(rows, columns=list(REPORT_COLUMNS), index=pd.Index(names, name=index_name))
    if "accuracy" in frame.index:
        frame.loc["accuracy", "support"] = total
    frame["support"] = frame["support"].astype("int64")
    return frame
