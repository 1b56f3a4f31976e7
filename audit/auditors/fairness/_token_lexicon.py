"""The name lexicon of the token fairness checks: person names and places by group, and which of
the model's entity types are persons and places.

The default is the lexicon shipped with the package (``audit/data_files/entity_lexicon.json``:
names drawn from Faker's person providers, MIT licence, pinned with their version). A group is the
list a name was drawn from (a Faker locale), never anyone's identity; ``female``/``male`` is the
list a first name came from, how that list labels the name, not a person's gender. The option
``name_lexicon`` points at another JSON file of the same shape, checked before the model loads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from audit.errors import AuditInputError, printable
from audit.tasks.tagging import OUTSIDE, split_tag

LEXICON_UNREADABLE = "{path}: cannot read the name lexicon as JSON: {error}"
LEXICON_KEY = "{path}: name lexicon key {key!r}: {problem}"
EXPECTED_OBJECT = "expected an object (a JSON mapping), got {got}"
EXPECTED_NAMES = "expected a list of non-empty strings, got {got}"
EXPECTED_SOME_NAMES = "expected at least one name"
BUILT_IN = "built-in"
DEFAULT_FILE = "entity_lexicon.json"
# The entity types read as persons and places, in any case: CoNLL-2003's PER/LOC, OntoNotes'
# PERSON/GPE, WNUT-17's person/location.
PERSON_TYPES = ("PER", "PERSON", "PERS")
PLACE_TYPES = ("LOC", "LOCATION", "GPE")


@dataclass(frozen=True, kw_only=True)
class NameGroup:
    """One group of the lexicon: first names by list (``female``/``male``), last names, places."""

    first_names: Mapping[str, tuple[str, ...]]
    last_names: tuple[str, ...]
    places: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class NameLexicon:
    """Names and places by group, with where they come from (the file, version and licence)."""

    source: str
    version: str
    licence: str
    groups: Mapping[str, NameGroup]


def load_name_lexicon(path: str | Path | None = None) -> NameLexicon:
    """The lexicon at ``path`` (JSON, the shape of the built-in one), or the built-in one; a
    malformed file is one line of :class:`AuditInputError` naming the file and the key."""
    if path is None:
        from importlib import resources

        text = resources.files("audit.data_files").joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
        return _parse(json.loads(text), where=BUILT_IN)
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AuditInputError(LEXICON_UNREADABLE.format(path=where, error=printable(error, limit=200))) from None
    return _parse(data, where=where)


def _parse(data: Any, *, where: str) -> NameLexicon:
    def fail(key: str, problem: str) -> AuditInputError:
        return AuditInputError(LEXICON_KEY.format(path=where, key=key, problem=problem))

    def mapping(value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise fail(key, EXPECTED_OBJECT.format(got=type(value).__name__))
        return value

    def names(value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.split() for v in value):
            raise fail(key, EXPECTED_NAMES.format(got=printable(json.dumps(value)[:60], limit=80)))
        return tuple(" ".join(v.split()) for v in value)

    top = mapping(data, "(top level)")
    groups = {}
    for group, body in mapping(top.get("groups"), "groups").items():
        body = mapping(body, f"groups.{group}")
        firsts = {gender: names(v, f"groups.{group}.first_names.{gender}")
                  for gender, v in mapping(body.get("first_names"), f"groups.{group}.first_names").items()}
        if not any(firsts.values()):
            raise fail(f"groups.{group}.first_names", EXPECTED_SOME_NAMES)
        groups[str(group)] = NameGroup(first_names=MappingProxyType(firsts),
                                       last_names=names(body.get("last_names", []), f"groups.{group}.last_names"),
                                       places=names(body.get("places", []), f"groups.{group}.places"))
    if not groups:
        raise fail("groups", EXPECTED_SOME_NAMES)
    return NameLexicon(source=where, version=str(top.get("version", "")), licence=str(top.get("licence", "")),
                       groups=MappingProxyType(groups))


def entity_type(tag_names: Sequence[str], *, candidates: Sequence[str]) -> str | None:
    """The model's entity type (as its tags write it) that is one of ``candidates`` in any case,
    the first in ``candidates`` order; None when the model has none."""
    types = {split_tag(str(t))[1] for t in tag_names if t != OUTSIDE} - {""}
    for wanted in candidates:
        for kind in sorted(types):
            if kind.upper() == wanted:
                return kind
    return None
