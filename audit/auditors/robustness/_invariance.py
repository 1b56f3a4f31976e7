"""CheckList-style invariance tests (Ribeiro et al. 2020, "Beyond Accuracy: Behavioral Testing of
NLP Models with CheckList", INV tests): label-preserving perturbations that should not change a
sentiment/topic classifier's prediction. Each perturbation returns the changed text, or None
when it does not apply to a text (no number to change, no contraction, ...). Seeded through the
``rng`` passed in; no resources, no downloads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np

# CheckList's contraction pairs (checklist.perturb.Perturb.contractions), a common subset.
CONTRACTIONS = {
    "are not": "aren't", "cannot": "can't", "could not": "couldn't", "did not": "didn't",
    "does not": "doesn't", "do not": "don't", "had not": "hadn't", "has not": "hasn't",
    "have not": "haven't", "he is": "he's", "how is": "how's", "i am": "i'm", "i have": "i've",
    "i will": "i'll", "i would": "i'd", "is not": "isn't", "it is": "it's", "let us": "let's",
    "she is": "she's", "should not": "shouldn't", "that is": "that's", "there is": "there's",
    "they are": "they're", "they have": "they've", "was not": "wasn't", "we are": "we're",
    "we have": "we've", "were not": "weren't", "what is": "what's", "will not": "won't",
    "would not": "wouldn't", "you are": "you're", "you have": "you've", "you will": "you'll",
}
_EXPANSIONS = {v: k for k, v in CONTRACTIONS.items()}

# Common first names (US census), used both to find a name and to swap one in, as CheckList's
# change_names does with its lexicon (we skip its spaCy NER: a capitalised lexicon word, or a word
# right after "named"/"called", counts as a name).
FIRST_NAMES = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Daniel", "Matthew", "Anthony", "Mark", "Steven", "Paul", "Andrew", "Joshua", "Kevin", "Brian",
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Nancy", "Lisa", "Betty", "Sandra", "Ashley", "Emily", "Donna", "Michelle", "Carol", "Amanda",
)
_NAME_SET = set(FIRST_NAMES)
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]?\d)")
_NAMED = re.compile(r"\b(named|called)\s+([A-Za-z][A-Za-z'-]*)")
_CONTRACTED = re.compile(r"\b(" + "|".join(re.escape(k) for k in _EXPANSIONS) + r")\b", re.IGNORECASE)
_EXPANDABLE = re.compile(r"\b(" + "|".join(re.escape(k) for k in CONTRACTIONS) + r")\b", re.IGNORECASE)

MAX_EXCLAMATIONS = 3  # VADER's emphasis counts up to four; a few keep the edit small

Perturbation = Callable[[str, np.random.Generator], "str | None"]


def typo(text: str, rng: np.random.Generator) -> str | None:
    """Swap two neighbouring inner characters of one word of 4+ letters (CheckList add_typos)."""
    words = [m for m in _WORD.finditer(text) if len(m.group()) >= 4]
    if not words:
        return None
    m = words[int(rng.integers(len(words)))]
    w = m.group()
    i = int(rng.integers(1, len(w) - 2))
    if w[i] == w[i + 1]:
        return None
    w2 = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    return text[: m.start()] + w2 + text[m.end():]


def lowercase(text: str, rng: np.random.Generator) -> str | None:
    out = text.lower()
    return out if out != text else None


def uppercase(text: str, rng: np.random.Generator) -> str | None:
    out = text.upper()
    return out if out != text else None


def punctuation(text: str, rng: np.random.Generator) -> str | None:
    """Strip trailing punctuation if there is some, else add a full stop (CheckList punctuation)."""
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?,;:":
        return stripped.rstrip(".!?,;:")
    return stripped + "."


def whitespace(text: str, rng: np.random.Generator) -> str | None:
    """Double one space between words and add a trailing space."""
    gaps = [m.start() for m in re.finditer(r" ", text)]
    if not gaps:
        return text + " "
    g = gaps[int(rng.integers(len(gaps)))]
    return text[:g] + "  " + text[g + 1:] + " "


def contractions(text: str, rng: np.random.Generator) -> str | None:
    """Expand the contractions in the text, or else contract what can be (CheckList contractions)."""

    def keep_case(src: str, repl: str) -> str:
        return repl[0].upper() + repl[1:] if src[0].isupper() else repl

    if _CONTRACTED.search(text):
        return _CONTRACTED.sub(lambda m: keep_case(m.group(), _EXPANSIONS[m.group().lower()]), text)
    if _EXPANDABLE.search(text):
        return _EXPANDABLE.sub(lambda m: keep_case(m.group(), CONTRACTIONS[m.group().lower()]), text)
    return None


def person_name(text: str, rng: np.random.Generator) -> str | None:
    """Replace a person's first name with another (CheckList change_names)."""
    named = _NAMED.search(text)
    if named:
        start, end, old = named.start(2), named.end(2), named.group(2)
    else:
        hits = [m for m in _WORD.finditer(text) if m.group() in _NAME_SET]
        if not hits:
            return None
        m = hits[int(rng.integers(len(hits)))]
        start, end, old = m.start(), m.end(), m.group()
    choices = [n for n in FIRST_NAMES if n.lower() != old.lower()]
    new = choices[int(rng.integers(len(choices)))]
    if old.islower():
        new = new.lower()
    return text[:start] + new + text[end:]


def number(text: str, rng: np.random.Generator) -> str | None:
    """Change every number by a random factor in [0.8, 1.2], never to itself (CheckList change_number)."""
    if not _NUMBER.search(text):
        return None

    def change(m: re.Match[str]) -> str:
        s = m.group()
        value = float(s)
        new = value * float(rng.uniform(0.8, 1.2))
        if "." in s:
            out = f"{new:.{len(s.split('.')[1])}f}"
        else:
            out = str(max(int(round(new)), 0))
        if out == s:
            out = str(int(value) + 1) if "." not in s else f"{value + 1:.{len(s.split('.')[1])}f}"
        return out

    return _NUMBER.sub(change, text)


def exclamation(text: str, rng: np.random.Generator) -> str | None:
    """End the text with one to three exclamation marks (in place of a full stop): emphasis that
    makes a sentiment more intense without changing its direction, so an INV test in CheckList's
    sense (Hutto & Gilbert 2014, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis
    of Social Media Text", its punctuation heuristic; Teh et al. 2015, "Sentiment analysis tools
    should take account of the number of exclamation marks!!!", with human raters). Not applied
    to a text that already ends with "!" or "?"."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in "!?":
        return None
    return stripped.rstrip(".") + "!" * int(rng.integers(1, MAX_EXCLAMATIONS + 1))


# Order matters for reproducibility: apply_all draws from one rng in this order, so a new family
# goes last and leaves the earlier families' perturbed texts as they were.
PERTURBATIONS: dict[str, Perturbation] = {
    "typo": typo,
    "lowercase": lowercase,
    "uppercase": uppercase,
    "punctuation": punctuation,
    "whitespace": whitespace,
    "contractions": contractions,
    "person_name": person_name,
    "number": number,
    "exclamation": exclamation,
}


def apply_all(texts: list[str], *, rng: np.random.Generator,
              kinds: tuple[str, ...] = tuple(PERTURBATIONS)) -> list[tuple[str, int, str]]:
    """(perturbation, row index, perturbed text) for every row a perturbation applies to and changes."""
    out = []
    for kind in kinds:
        fn = PERTURBATIONS[kind]
        for i, text in enumerate(texts):
            new = fn(text, rng)
            if new is not None and new != text:
                out.append((kind, i, new))
    return out


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927); (nan, nan) when n == 0."""
    if n == 0:
        return (float("nan"), float("nan"))
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
