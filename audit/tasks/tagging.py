"""Tag schemes and entity spans: which scheme a model's tags follow, where its entities are, and
which transitions break the scheme.

Spans agree exactly with seqeval 1.2.2 (Nakayama, 2018), the reference the NER literature reports
with: ``strict=True`` is seqeval's ``mode="strict"`` with the scheme's class, ``strict=False`` its
default, conlleval-compatible chunking (Tjong Kim Sang & De Meulder, CoNLL-2003). The rules are
re-implemented here (pure, fast, no warnings) and compared with seqeval in the tests on random tag
sequences for every scheme. Schemes: IOB1 (Ramshaw & Marcus, 1995), IOB2, IOE1, IOE2 (Tjong Kim
Sang & Veenstra, 1999), IOBES (Ratinov & Roth, 2009 call it BILOU; seqeval keeps both spellings),
and IO: plain types (or ``I-`` types) without begin/end marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audit.errors import AuditInputError, printable

SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU", "IO")
ALIASES = {"BIO": "IOB2", "BIOES": "IOBES", "BIOUL": "BILOU"}  # other names the same schemes go by
OUTSIDE = "O"
PREFIXES = "BIESLU"  # the one-letter marks a tag may start with, as in ``B-PER``
ALLOWED = {"IOB1": "BI", "IOB2": "BI", "IOE1": "EI", "IOE2": "EI", "IOBES": "BIES", "BILOU": "BILU", "IO": "I"}
LIST_CAP = 12  # labels named in one error line, at most

SCHEME_UNKNOWN = "option --scheme: unknown tag scheme {scheme!r}; known schemes are {known}"
SCHEME_UNDETECTED = ("cannot tell the tag scheme of the model's labels {labels}: {problem}; "
                     "pass --scheme with one of {known}")
SCHEME_MISFIT = "option --scheme {scheme}: the model's labels {labels} use prefixes that {scheme} does not ({allowed})"
TAG_OFF_SCHEME = "tag {tag!r} does not fit the {scheme} scheme (its prefixes: {allowed}, and 'O')"


@dataclass(frozen=True, kw_only=True)
class Span:
    """One entity: its type and its tokens ``[start, end)`` in the sentence. A tag without a type
    (a bare ``B``) gives the type ``'_'``, as in seqeval."""

    type: str
    start: int
    end: int


@dataclass(frozen=True, kw_only=True)
class Violation:
    """A transition the scheme forbids, at token ``position``: ``previous`` is the tag before it
    (None at the start of the sentence) and ``tag`` the tag there (None past the last token, where
    an entity was left open, e.g. an IOE2 ``I-X`` with no ``E-X``)."""

    position: int
    previous: str | None
    tag: str | None


def split_tag(tag: str) -> tuple[str, str]:
    """``'B-PER'`` -> ``('B', 'PER')``; ``'O'`` -> ``('O', '')``; a bare ``'B'`` -> ``('B', '')``;
    a plain type (IO) ``'PER'`` -> ``('', 'PER')``. Only the prefix before the first hyphen is cut,
    so ``'B-creative-work'`` keeps its type whole."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    if len(tag) == 1 and tag in PREFIXES:
        return tag, ""
    if len(tag) >= 2 and tag[0] in PREFIXES and tag[1] == "-":
        return tag[0], tag[2:]
    return "", tag


def normalize_scheme(scheme: str) -> str:
    """The canonical name of a scheme given by a user (any case; BIO, BIOES, BIOUL accepted)."""
    name = str(scheme).strip().upper()
    name = ALIASES.get(name, name)
    if name not in SCHEMES:
        raise AuditInputError(SCHEME_UNKNOWN.format(scheme=printable(scheme, limit=80), known=", ".join(SCHEMES)))
    return name


def _listed(items: Sequence[str], cap: int = LIST_CAP) -> str:
    shown = ", ".join(repr(printable(i, limit=80)) for i in items[:cap])
    return shown + (f" and {len(items) - cap} more" if len(items) > cap else "")


def detect_scheme(*, labels: Sequence[str], sequences: Sequence[Sequence[str]] | None = None) -> str:
    """The scheme of a model's labels (its ``id2label`` values), from the prefixes they use. The
    label set alone cannot tell IOB1 from IOB2 (both use B and I) nor IOE1 from IOE2: then the gold
    ``sequences`` decide by how entities start (IOB1 opens with ``I-`` and keeps ``B-`` for an entity
    right after one of its type) or end (IOE1), by majority, so a few annotation slips do not flip
    it; without evidence the modern default (IOB2, IOE2) is taken. Only ``I-`` types, or plain
    types, are IO."""
    labels = [str(label) for label in labels]
    prefixes = {split_tag(label)[0] for label in labels if label != OUTSIDE}

    def fail(problem: str) -> AuditInputError:
        return AuditInputError(SCHEME_UNDETECTED.format(labels=_listed(labels), problem=problem,
                                                        known=", ".join(SCHEMES)))

    if not labels:
        raise fail("there are none")
    if prefixes <= {""} or prefixes == {"I"}:
        return "IO"
    if "" in prefixes:
        plain = [label for label in labels if label != OUTSIDE and not split_tag(label)[0]]
        raise fail(f"plain types ({_listed(plain)}) mixed with prefixed ones")
    if prefixes <= set("BI"):
        return "IOB2" if prefixes == {"B"} else _refine(sequences or (), opener="B", iob=True)
    if prefixes <= set("EI"):
        return "IOE2" if prefixes == {"E"} else _refine(sequences or (), opener="E", iob=False)
    if prefixes <= set("BIES") and ("S" in prefixes or {"B", "E"} <= prefixes):
        return "IOBES"
    if prefixes <= set("BILU") and ("U" in prefixes or {"B", "L"} <= prefixes):
        return "BILOU"
    raise fail(f"the prefixes {', '.join(sorted(prefixes))} fit none of the schemes")


def _refine(sequences: Sequence[Sequence[str]], *, opener: str, iob: bool) -> str:
    """IOB1 vs IOB2 (``iob``) or IOE1 vs IOE2: count the entity starts (ends) marked with ``I-``
    against those marked with ``opener`` where no same-type entity is adjacent."""
    votes_i = votes_mark = 0
    for seq in sequences:
        parts = [split_tag(str(tag)) for tag in seq]
        if not iob:
            parts.reverse()  # an IOE end, read backwards, is an IOB start
        prev = (OUTSIDE, "")
        for cur in parts:
            if cur[0] in ("I", opener) and not (prev[0] in ("I", opener) and prev[1] == cur[1]):
                if cur[0] == "I":
                    votes_i += 1
                else:
                    votes_mark += 1
            prev = cur
    if votes_i > votes_mark:
        return "IOB1" if iob else "IOE1"
    return "IOB2" if iob else "IOE2"


def resolve_scheme(*, labels: Sequence[str], scheme: str | None = None,
                   sequences: Sequence[Sequence[str]] | None = None) -> str:
    """The scheme to use: ``scheme`` (the user's ``--scheme``) checked against the model's labels,
    or, when None, the detected one."""
    if scheme is None:
        return detect_scheme(labels=labels, sequences=sequences)
    name = normalize_scheme(scheme)
    allowed = set(ALLOWED[name]) | ({""} if name == "IO" else set())
    misfit = [str(label) for label in labels if label != OUTSIDE and split_tag(str(label))[0] not in allowed]
    if misfit:
        marks = ", ".join(f"{p}-" for p in ALLOWED[name]) + (", plain types" if name == "IO" else "")
        raise AuditInputError(SCHEME_MISFIT.format(scheme=name, labels=_listed(misfit), allowed=marks))
    return name


def _parse(tags: Sequence[str], scheme: str) -> list[tuple[str, str]]:
    """(prefix, type) per tag, checked against the scheme: IO tags become ``I`` tags, a missing type
    becomes ``'_'`` (seqeval's). A tag off the scheme is a caller's bug (data readers and
    :func:`resolve_scheme` check the user's tags first), hence ValueError."""
    if scheme not in ALLOWED:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
    allowed = ALLOWED[scheme]
    out = []
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "" and scheme == "IO":
            prefix = "I"
        if prefix != OUTSIDE and prefix not in allowed:
            raise ValueError(TAG_OFF_SCHEME.format(tag=tag, scheme=scheme, allowed=", ".join(allowed)))
        out.append((prefix, kind or "_"))
    return out


def seqeval_scheme(scheme: str) -> Any:
    """seqeval's class for ``mode="strict"``. IO maps to IOB1 with its tags written ``I-TYPE``
    (:func:`seqeval_tags`): IOB1 opens an entity at an ``I-`` after O or after another type and
    continues it over the same type, which is exactly IO's reading; IOB2 would drop every entity."""
    from seqeval import scheme as schemes  # imported on use: nothing heavy at import time

    name = normalize_scheme(scheme)
    return getattr(schemes, "IOB1" if name == "IO" else name)


def seqeval_tags(tags: Sequence[str], *, scheme: str, strict: bool = True) -> list[str]:
    """The tags as seqeval wants them: IO's plain types get an ``I-`` prefix (seqeval reads a tag's
    first letter as its prefix); for the default mode (``strict=False``), which knows only B, I, E
    and S, BILOU's L and U are written E and S, their IOBES equivalents."""
    to_lenient = {"L": "E", "U": "S"} if (scheme == "BILOU" and not strict) else {}
    out = []
    for (prefix, _), tag in zip(_parse(tags, scheme), tags, strict=True):
        written, kind = split_tag(tag)
        if prefix == OUTSIDE or (written == prefix and prefix not in to_lenient):
            out.append(tag)
        else:
            mark = to_lenient.get(prefix, prefix)
            out.append(f"{mark}-{kind}" if kind else mark)
    return out


# seqeval 1.2.2's strict rules (seqeval/scheme.py), one item per pattern: previous prefix, current
# prefix, and the type condition ('*' any, '=' same type, '!' another type); '.' is any prefix.
# Kept as they are, quirks included (seqeval's own TODO says IOE1 misses cases: an E- right after O
# never opens an entity), because the reported numbers must be seqeval's.
_RULES_TEXT = {
    #        start                         inside             end
    "IOB1": ("OI* II! BI* IB= BB=", "BI= II=", "II! IO* IB* BO* BI! BB="),
    "IOE1": ("OI* II! EI* EE=", "II= IE=", "II! IO* IE! EI= EE="),
    "IOB2": (".B*", "BI= II=", "IO* II! IB* BO* BI! BB*"),
    "IOE2": ("OI* OE* EI* EE* II! IE!", "IE= II=", "E.*"),
    "IOBES": (".B* .S*", "BI= BE= II= IE=", "S.* E.*"),
    "BILOU": (".B* .U*", "BI= BL= II= IL=", "U.* L.*"),
}
_RULES_TEXT["IO"] = _RULES_TEXT["IOB1"]
_ANY_PREFIX = "O" + PREFIXES


def _compile(text: str) -> list[tuple[str, str, str]]:
    return [(_ANY_PREFIX if p == "." else p, _ANY_PREFIX if c == "." else c, cond) for p, c, cond in text.split()]


_RULES = {name: tuple(_compile(part) for part in parts) for name, parts in _RULES_TEXT.items()}


def _matches(patterns: list[tuple[str, str, str]], prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    for p, c, cond in patterns:
        if prev[0] in p and cur[0] in c and (cond == "*" or (prev[1] == cur[1]) == (cond == "=")):
            return True
    return False


def entity_spans(tags: Sequence[str], *, scheme: str, strict: bool = True) -> list[Span]:
    """The entities of one sentence's tags. ``strict``: seqeval's strict mode, where a chunk that
    breaks the scheme (an IOB2 ``I-X`` after O, an IOBES ``B-X`` never closed by ``E-X``) is no
    entity. Otherwise conlleval's lenient reading, where such a chunk still counts."""
    parsed = _parse(tags, scheme)
    if not strict:
        return _lenient(parsed, bilou=scheme == "BILOU")
    start, inside, end = _RULES[scheme]
    ext = [*parsed, (OUTSIDE, "_")]  # the sentence closes with an O, as in seqeval
    spans: list[Span] = []
    i, prev = 0, (OUTSIDE, "_")
    while i < len(ext):
        tok = ext[i]
        if _matches(start, prev, tok):
            j, last = i + 1, tok
            while _matches(inside, last, ext[j]):  # the closing O is never inside, so j stays in range
                last = ext[j]
                j += 1
            if _matches(end, ext[j - 1], ext[j]):
                spans.append(Span(type=tok[1], start=i, end=j))
            i = j
        else:
            i += 1
        prev = ext[i - 1]
    return spans


def _lenient(parsed: list[tuple[str, str]], *, bilou: bool) -> list[Span]:
    """seqeval's default ``get_entities`` (conlleval's chunk start/end rules); BILOU is read as IOBES."""
    spans: list[Span] = []
    prev_tag, prev_type, begin = OUTSIDE, "", 0
    for i, (tag, kind) in enumerate([*parsed, (OUTSIDE, "_")]):
        if bilou:
            tag = {"L": "E", "U": "S"}.get(tag, tag)
        ended = (prev_tag in "ES" or (prev_tag in "BI" and tag in "BSO")
                 or (prev_tag != OUTSIDE and prev_type != kind))
        if ended:
            spans.append(Span(type=prev_type, start=begin, end=i))
        started = (tag in "BS" or (prev_tag in "ESO" and tag in "EI") or (tag != OUTSIDE and prev_type != kind))
        if started:
            begin = i
        prev_tag, prev_type = tag, kind
    return spans


# What each scheme forbids: a tag with a prefix in the first set needs, just before it, one in the
# second set of the same type (IOB2: I-X only after B-X or I-X); or a tag with a prefix in the
# first set needs, just after it, one in the second of the same type (IOE2: I-X only before I-X or
# E-X). IOB1/IOE1 use B-/E- only between two adjacent entities of one type.
_NEEDS_BEFORE = {"IOB1": ("B", "BI"), "IOB2": ("I", "BI"), "IOBES": ("IE", "BI"), "BILOU": ("IL", "BI")}
_NEEDS_AFTER = {"IOE1": ("E", "EI"), "IOE2": ("I", "EI"), "IOBES": ("BI", "IE"), "BILOU": ("BI", "IL")}


def violations(tags: Sequence[str], *, scheme: str) -> list[Violation]:
    """The transitions in one sentence that the scheme forbids, one per position: an ``I-X`` after
    O or after ``B-Y`` under IOB2, an IOBES ``B-X`` not followed by ``I-X``/``E-X``, ... The
    sentence is bounded by O on both sides. IO has none."""
    parsed = _parse(tags, scheme)
    before, after = _NEEDS_BEFORE.get(scheme), _NEEDS_AFTER.get(scheme)
    out = []
    bounded = [(OUTSIDE, ""), *parsed, (OUTSIDE, "")]
    for pos in range(len(parsed) + 1):
        prev, cur = bounded[pos], bounded[pos + 1]
        same = prev[1] == cur[1]
        bad = ((before is not None and cur[0] in before[0] and not (prev[0] in before[1] and same))
               or (after is not None and prev[0] in after[0] and not (cur[0] in after[1] and same)))
        if bad:
            out.append(Violation(position=pos, previous=tags[pos - 1] if pos else None,
                                 tag=tags[pos] if pos < len(tags) else None))
    return out
