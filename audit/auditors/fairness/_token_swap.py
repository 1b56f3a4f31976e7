"""Entities swapped in a tagged sentence, with the gold tags re-aligned to the new words.

Name swaps (Mishra, He & Belli 2020) and entity switching (Agarwal et al. 2020, "Entity-Switched
Datasets") put a name or a place of one group where the sentence had another: the replacement may
have more or fewer words than the entity it replaces, so the tags of the span are rewritten for
its new length under the sentence's scheme (an IOB2 two-word name is ``B-PER I-PER``, an IOBES one
``B-PER E-PER``, a one-word one ``S-PER``), and every tag outside the span is kept as it was.

Only strict entities (:func:`audit.tasks.tagging.entity_spans`) are replaced, and the replacement
keeps the entity's type, so the neighbours' tags stay right: the IOB1 ``B-`` that separates two
adjacent entities of one type is kept on the first word of the replacement, the IOE1 ``E-`` on
its last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from audit.tasks.tagging import OUTSIDE, Span, split_tag

EMPTY_REPLACEMENT = "a replacement needs at least one word"
OVERLAPPING_SPANS = "the spans to replace overlap: {first} and {second}"
# The tag of a one-word entity alone in its sentence, per scheme.
_ONE_WORD = {"IOB1": "I", "IOB2": "B", "IOE1": "I", "IOE2": "E", "IOBES": "S", "BILOU": "U", "IO": "I"}


@dataclass(frozen=True, kw_only=True)
class Swapped:
    """A sentence after the swap: its words, its re-aligned gold tags, and where each replacement
    now lies (``spans[i]`` is the new place of the ``i``-th replacement given)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    spans: tuple[Span, ...]


def span_tags(old: Sequence[str], *, length: int, scheme: str) -> list[str]:
    """The tags of an entity of ``length`` words that replaces the entity tagged ``old`` (a strict
    entity of the scheme), same type and same written form (``B-PER``, or a plain IO ``PER``)."""
    if length < 1:
        raise ValueError(EMPTY_REPLACEMENT)
    if len(old) == length:
        return list(old)
    first, kind = split_tag(old[0])
    last = split_tag(old[-1])[0]

    def tag(prefix: str) -> str:
        return f"{prefix}-{kind}" if kind else prefix

    inner = [tag("I")] * length
    if scheme == "IO":
        return [old[0]] * length
    if scheme == "IOB1":  # B- only between two adjacent entities of one type: keep the original's mark
        return [tag(first), *inner[1:]]
    if scheme == "IOB2":
        return [tag("B"), *inner[1:]]
    if scheme == "IOE1":
        return [*inner[:-1], tag(last)]
    if scheme == "IOE2":
        return [*inner[:-1], tag("E")]
    single, end = {"IOBES": ("S", "E"), "BILOU": ("U", "L")}[scheme]
    if length == 1:
        return [tag(single)]
    return [tag("B"), *inner[1:-1], tag(end)]


def swap_entities(*, tokens: Sequence[str], tags: Sequence[str], replacements: Sequence[tuple[Span, Sequence[str]]],
                  scheme: str) -> Swapped:
    """``tokens`` with each ``(span, words)`` of ``replacements`` put in place of the span's words
    (spans of the sentence's strict entities, any order, not overlapping), the tags re-aligned."""
    order = sorted(range(len(replacements)), key=lambda i: replacements[i][0].start)
    for a, b in zip(order, order[1:], strict=False):
        if replacements[a][0].end > replacements[b][0].start:
            raise ValueError(OVERLAPPING_SPANS.format(first=replacements[a][0], second=replacements[b][0]))
    new_tokens: list[str] = []
    new_tags: list[str] = []
    placed: dict[int, Span] = {}
    at = 0
    for i in order:
        span, words = replacements[i]
        new_tokens += tokens[at:span.start]
        new_tags += tags[at:span.start]
        start = len(new_tokens)
        new_tokens += list(words)
        new_tags += span_tags(tags[span.start:span.end], length=len(words), scheme=scheme)
        placed[i] = Span(type=span.type, start=start, end=len(new_tokens))
        at = span.end
    new_tokens += tokens[at:]
    new_tags += tags[at:]
    return Swapped(tokens=tuple(new_tokens), tags=tuple(new_tags), spans=tuple(placed[i] for i in range(len(order))))


def insert_entity(*, before: Sequence[str], words: Sequence[str], after: Sequence[str], kind: str,
                  scheme: str) -> Swapped:
    """A template sentence ``before + words + after`` whose only entity is ``words`` of type
    ``kind`` (written ``B-PER``-style; the template's own words are ``O``)."""
    placeholder = [f"{_ONE_WORD[scheme]}-{kind}"]
    return swap_entities(tokens=[*before, "_", *after], tags=[*[OUTSIDE] * len(before), *placeholder,
                                                                *[OUTSIDE] * len(after)],
                         replacements=[(Span(type=kind, start=len(before), end=len(before) + 1), words)],
                         scheme=scheme)
