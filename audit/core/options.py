"""Declared settings: each config key, CLI flag and auditor option has one :class:`Option` (type,
range, choices, default, one-line help), checked at the door, before any model is loaded
(scikit-learn's ``_parameter_constraints``, declared once instead of a validator per class).

Checks are strict on purpose: a YAML ``"false"`` is a string, not a boolean, so it is refused
rather than read as truthy (a quoted ``trust_remote_code: "false"`` must never run a model's
code); numbers must be finite; counts are integers, never booleans. :func:`check` returns the
normalised value and never mutates what it was given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import OPTION_INVALID, AuditInputError

KINDS = ("bool", "int", "float", "str", "str_list", "label", "mapping", "file", "any")
# numpy's and Python's generators take seeds in [0, 2**32) everywhere we pass one.
SEED_MAX = 2**32 - 1
# Free text a config may carry into the report (model-card fields): long enough for a paragraph
# or two, short enough that a config cannot blow the report up.
TEXT_MAX = 4000
LIST_MAX = 1000


@dataclass(frozen=True, kw_only=True)
class Option:
    """One setting: its kind, default, range and help. ``nullable`` allows None (YAML null)."""

    kind: str
    default: Any = None
    help: str = ""
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    split: bool = False  # str_list: also accept "a,b,c"
    non_empty: bool = False  # str_list: at least one item
    max_chars: int = TEXT_MAX
    must_exist: str | None = None  # str / str_list: "file" or "dir" that must exist
    column: bool = False  # str_list: names columns of the eval data (checked once the data is read)
    keys: tuple[str, ...] | None = None  # mapping: the allowed keys

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown option kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    def describe(self) -> str:
        """A short human description of what is accepted, for errors and ``list --options``."""
        what = {
            "bool": "true or false",
            "int": "an integer",
            "float": "a finite number",
            "str": "a string",
            "str_list": "a list of strings",
            "label": "a label name or index",
            "mapping": "a mapping of names to text",
            "file": "the path of an existing file",
            "any": "any value",
        }[self.kind]
        if self.choices is not None:
            what = ("one of " if self.kind == "str" else "a list of some of ") + ", ".join(self.choices)
        if self.kind == "str_list" and self.non_empty:
            what = what.replace("a list", "a non-empty list", 1)
        bounds = []
        if self.min is not None:
            bounds.append(f"{'>' if self.min_exclusive else '>='} {_fmt(self.min)}")
        if self.max is not None:
            bounds.append(f"<= {_fmt(self.max)}")
        if bounds:
            what += " " + " and ".join(bounds)
        if self.nullable:
            what += ", or null"
        return what


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _bad(name: str, option: Option, value: Any) -> AuditInputError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    hint = ""
    if option.kind in ("int", "float") and isinstance(value, str):
        try:
            float(value)
            hint = (" (a string: YAML reads 1e3 as text; write 1000 or 1.0e+3)" if "e" in value.lower()
                    else " (a string: write the number without quotes)")
        except ValueError:
            pass
    return AuditInputError(OPTION_INVALID.format(option=name,
                                                 problem=f"expected {option.describe()}, got {shown}{hint}"))


def _exists(name: str, value: str, kind: str | None) -> None:
    if kind == "file" and not Path(value).is_file():
        raise AuditInputError(OPTION_INVALID.format(option=name, problem=f"no such file: {value}"))
    if kind == "dir" and not Path(value).is_dir():
        raise AuditInputError(OPTION_INVALID.format(option=name, problem=f"no such folder: {value}"))


def check(name: str, value: Any, option: Option) -> Any:
    """The value, normalised (tuples for lists), or AuditInputError naming ``name``."""
    if option.kind == "any":  # a plugin's undeclared option (``defaults`` without ``params``)
        return value
    if value is None:
        if option.nullable:
            return None
        raise _bad(name, option, value)
    kind = option.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad(name, option, value)
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(name, option, value)
        if kind == "int" and not isinstance(value, int):
            raise _bad(name, option, value)
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(name, option, value)
        if option.min is not None and (value < option.min or (option.min_exclusive and value == option.min)):
            raise _bad(name, option, value)
        if option.max is not None and value > option.max:
            raise _bad(name, option, value)
        return value
    if kind in ("str", "file"):
        if not isinstance(value, str) or not value.strip() or "\x00" in value or len(value) > option.max_chars:
            raise _bad(name, option, value)
        if option.choices is not None and value not in option.choices:
            raise _bad(name, option, value)
        _exists(name, value, "file" if kind == "file" else option.must_exist)
        return value
    if kind == "label":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value):
            raise _bad(name, option, value)
        return value
    if kind == "str_list":
        items = value
        if isinstance(items, str) and option.split:
            items = [s.strip() for s in items.split(",") if s.strip()]
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or len(items) > LIST_MAX:
            raise _bad(name, option, value)
        if not all(isinstance(s, str) and s and "\x00" not in s and len(s) <= option.max_chars for s in items):
            raise _bad(name, option, value)
        if option.non_empty and not items:
            raise _bad(name, option, value)
        if option.choices is not None:
            unknown = [s for s in items if s not in option.choices]
            if unknown:
                raise AuditInputError(OPTION_INVALID.format(
                    option=name, problem=f"unknown value {unknown[0]!r}; expected {', '.join(option.choices)}"))
        for item in items:
            _exists(name, item, option.must_exist)
        return tuple(dict.fromkeys(items))
    # mapping: names to free text (model-card fields)
    if not isinstance(value, Mapping) or len(value) > 100:
        raise _bad(name, option, value)
    out: dict[str, str] = {}
    if option.keys is not None:
        from audit.errors import did_you_mean

        for key in value:
            if key not in option.keys:
                raise AuditInputError(OPTION_INVALID.format(
                    option=name, problem=f"unknown field {str(key)[:40]!r}{did_you_mean(str(key), option.keys)}; "
                                         f"known fields are {', '.join(option.keys)}"))
    for key, text in value.items():
        if not isinstance(key, str) or not isinstance(text, (str, int, float)) or isinstance(text, bool):
            raise AuditInputError(OPTION_INVALID.format(
                option=f"{name}.{key}", problem=f"expected text, got {type(text).__name__}"))
        text = str(text)
        if len(text) > option.max_chars:
            raise AuditInputError(OPTION_INVALID.format(
                option=f"{name}.{key}", problem=f"at most {option.max_chars} characters, got {len(text)}"))
        out[key] = text
    return out


def check_all(values: Mapping[str, Any], options: Mapping[str, Option], *, prefix: str = "") -> dict[str, Any]:
    """Every declared option checked (unset ones take their default); a new dict."""
    return {key: check(f"{prefix}{key}", values.get(key, opt.default), opt) for key, opt in options.items()}


# A config, policy or lexicon is a page of settings, not a data set: 1 MiB is far above any real one.
YAML_MAX_BYTES = 1 << 20
YAML_NO_ALIASES = "{where}: YAML anchors and aliases (&name / *name) are not allowed in rai-audit files"
YAML_TOO_BIG = "{where}: the file is {size:,} bytes; at most {limit:,} are read"


def load_yaml(text: str, *, where: str) -> Any:
    """``yaml.safe_load`` for files and values the user gives, bounded: no aliases (a few hundred
    bytes of nested aliases expand to gigabytes), at most YAML_MAX_BYTES, one-line errors."""
    import yaml

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > YAML_MAX_BYTES:
        raise AuditInputError(YAML_TOO_BIG.format(where=where, size=size, limit=YAML_MAX_BYTES))
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise AuditInputError(YAML_NO_ALIASES.format(where=where))
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AuditInputError(f"{where}: not valid YAML: {first}") from None
    except RecursionError:
        raise AuditInputError(f"{where}: not valid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more than 4,300 digits
        raise AuditInputError(f"{where}: not valid YAML: {str(exc).splitlines()[0][:120]}") from None


def read_yaml_file(path: Path, *, what: str) -> Any:
    """A YAML file the user gave, through :func:`load_yaml`; unreadable files are one-line errors."""
    try:
        if not path.exists():
            raise AuditInputError(f"{what} not found: {path}")
        if not path.is_file():
            raise AuditInputError(f"{path}: the {what} is not a regular file")
        size = path.stat().st_size
        if size > YAML_MAX_BYTES:
            raise AuditInputError(YAML_TOO_BIG.format(where=path, size=size, limit=YAML_MAX_BYTES))
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AuditInputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    return load_yaml(text, where=str(path))
