"""Identity terms: the lexicon, finding mentions in text, and counterfactual term swaps.

The built-in lexicon lives in ``audit/data_files/identity_terms.yaml`` (documented there);
users extend it with their own YAML file in the same format. Mentions are whole words,
case-insensitive, and a hyphenated compound is one word. Swaps follow Garg et al. 2019
("Counterfactual Fairness in Text Classification through Robustness"): a term is replaced by
another term of the same category, keeping the case pattern and the form (singular/plural).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from audit.errors import PATH_MISSING, AuditInputError

LEXICON_NOT_MAPPING = "{path}: expected a mapping of category to a list of terms"
LEXICON_BAD_ENTRY = "{path}: category {category!r}: an entry must be a term or a list of its forms, got {entry!r}"

# Word characters plus the hyphen: "aged" must not match inside "middle-aged".
_BOUNDARY_BEFORE = r"(?<![\w-])"
_BOUNDARY_AFTER = r"(?![\w-])"


@dataclass(frozen=True)
class Term:
    """One identity: its category, its name (the first form) and all its forms."""

    category: str
    forms: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.forms[0]

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        # Longest form first so "african americans" wins over "african american".
        alternatives = "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in sorted(self.forms, key=len, reverse=True))
        return re.compile(f"{_BOUNDARY_BEFORE}(?:{alternatives}){_BOUNDARY_AFTER}", re.IGNORECASE)

    def form_index(self, word: str) -> int:
        """Which form a matched word is (0 when unknown)."""
        norm = " ".join(word.lower().split())
        for i, form in enumerate(self.forms):
            if form == norm:
                return i
        return 0


@dataclass
class Lexicon:
    """Identity terms by category, in file order."""

    categories: dict[str, list[Term]] = field(default_factory=dict)

    @property
    def terms(self) -> list[Term]:
        return [t for terms in self.categories.values() for t in terms]

    def term(self, category: str, name: str) -> Term:
        for t in self.categories[category]:
            if t.name == name:
                return t
        raise KeyError(f"no term {name!r} in category {category!r}")

    def mentions(self, texts: Sequence[str]) -> dict[tuple[str, str], np.ndarray]:
        """For each (category, term name), a boolean array: does each text mention the term?"""
        out = {}
        for t in self.terms:
            out[(t.category, t.name)] = np.fromiter((t.pattern.search(s) is not None for s in texts),
                                                    dtype=bool, count=len(texts))
        return out


def _parse(raw: Any, *, path: str) -> dict[str, list[Term]]:
    if not isinstance(raw, Mapping):
        raise AuditInputError(LEXICON_NOT_MAPPING.format(path=path))
    categories: dict[str, list[Term]] = {}
    for category, entries in raw.items():
        if category == "replace":
            continue
        if not isinstance(entries, list):
            raise AuditInputError(LEXICON_NOT_MAPPING.format(path=path))
        terms = []
        for entry in entries:
            forms = [entry] if isinstance(entry, str) else entry
            if not (isinstance(forms, list) and forms and all(isinstance(f, str) and f.strip() for f in forms)):
                raise AuditInputError(LEXICON_BAD_ENTRY.format(path=path, category=category, entry=entry))
            terms.append(Term(str(category), tuple(" ".join(f.lower().split()) for f in forms)))
        categories[str(category)] = terms
    return categories


def load_lexicon(extra: str | Path | None = None) -> Lexicon:
    """The built-in lexicon, extended (or replaced, with ``replace: true``) by a user YAML file."""
    import yaml

    text = resources.files("audit.data_files").joinpath("identity_terms.yaml").read_text(encoding="utf-8")
    categories = _parse(yaml.safe_load(text), path="identity_terms.yaml")
    if extra is not None:
        path = Path(extra)
        if not path.is_file():
            raise AuditInputError(PATH_MISSING.format(what="identity-term lexicon", path=path))
        from audit.core.options import read_yaml_file

        raw = read_yaml_file(path, what="identity-term lexicon") or {}
        user = _parse(raw, path=str(path))
        if isinstance(raw, Mapping) and raw.get("replace") is True:
            categories = {}
        for category, terms in user.items():
            known = {t.name for t in categories.get(category, [])}
            categories[category] = categories.get(category, []) + [t for t in terms if t.name not in known]
    return Lexicon(categories)


def match_case(template: str, word: str) -> str:
    """``word`` written in the case pattern of ``template`` (lower, UPPER or Title Case)."""
    if template.isupper() and any(c.isalpha() for c in template):
        return word.upper()
    if template[:1].isupper():
        return " ".join(w[:1].upper() + w[1:] for w in word.split(" "))
    return word


@dataclass(frozen=True)
class Swap:
    """A counterfactual variant: the text with ``source`` replaced by ``target``, and where."""

    text: str
    source: str
    target: str
    spans: tuple[tuple[int, int], ...]  # character spans of the inserted words in ``text``


def swap_term(text: str, source: Term, target: Term) -> Swap:
    """Replace every mention of ``source`` in ``text`` by ``target`` (same form, same case)."""
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    length = 0
    for m in source.pattern.finditer(text):
        before = text[pos:m.start()]
        pieces.append(before)
        length += len(before)
        idx = source.form_index(m.group(0))
        new = match_case(m.group(0), target.forms[min(idx, len(target.forms) - 1)])
        pieces.append(new)
        spans.append((length, length + len(new)))
        length += len(new)
        pos = m.end()
    pieces.append(text[pos:])
    return Swap("".join(pieces), source.name, target.name, tuple(spans))


def split_spans(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, highlighted) parts, for a template to mark swapped words."""
    parts: list[tuple[str, bool]] = []
    pos = 0
    for start, end in spans:
        if start > pos:
            parts.append((text[pos:start], False))
        parts.append((text[start:end], True))
        pos = end
    if pos < len(text):
        parts.append((text[pos:], False))
    return parts


def term_spans(text: str, term: Term) -> tuple[tuple[int, int], ...]:
    """Spans of every mention of ``term`` in ``text``."""
    return tuple((m.start(), m.end()) for m in term.pattern.finditer(text))
