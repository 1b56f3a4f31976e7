"""The one exception type for the user's mistakes (exit 2, one line, no traceback).

Messages are module constants so tests can match them (STYLE: error messages as constants).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AuditInputError(Exception):
    """Bad input from the user: a path, a file, a column, an option. The CLI prints it on one
    line and exits with status 2."""


PATH_MISSING = "{what} not found: {path}"
FILE_EMPTY = "{path}: the file is empty"
FILE_NO_ROWS = "{path}: the file has a header but no rows"
FILE_UNREADABLE = "{path}: cannot read it as {kind}: {error}"
FORMAT_UNKNOWN = "{path}: unknown data format {suffix!r}; expected one of {formats}"
COLUMN_MISSING = "{path}: no column {column!r} ({role}){hint}; columns are {columns}"
COLUMN_UNDETECTED = "{path}: cannot find the {role} column; pass {option} (columns are {columns})"
LABELS_UNKNOWN = "{path}: labels {unknown} in column {column!r} are not among the model's labels {known}"
OPTION_INVALID = "option {option}: {problem}"
OPTION_UNKNOWN = "{where}: unknown option {option!r}{hint}; known options are {known}"
MODEL_NO_TOKENIZER = "{path}: the model folder has no tokenizer files (tokenizer.json, vocab.txt, ...)"
MODEL_LOAD_FAILED = "{path}: cannot load the model: {error}"
MODEL_REMOTE_CODE = ("{path}: the model needs custom code from the model folder; "
                     "pass --trust-remote-code only if you trust it")
OUT_EXISTS = "{path}: a report is already there; pass --overwrite to replace it, or choose another --out"
AUDITOR_UNKNOWN = "unknown auditor {name!r}{hint}; available: {known}"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
OUT_FOREIGN = ("{path}: this file was not written by rai-audit (or was changed since); it is never replaced, "
               "not even with --overwrite: move it away or choose another --out")
OUT_LOCKED = ("{path}: another rai-audit run is writing into this folder (lock {lock}); "
              "wait for it or choose another --out")
OUT_UNWRITABLE = "{path}: cannot write the report there: {problem}"


def printable(text: object, *, limit: int = 2000) -> str:
    """Text from data or a model's config made safe to print on one line: control characters
    (newlines included) shown escaped, so no value can start a line of its own (a CI runner reads
    lines starting with '::' as workflow commands), and capped in length."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif code < 32 or code == 127 or 0x80 <= code < 0xA0 or code in (0x2028, 0x2029):
            out.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"
