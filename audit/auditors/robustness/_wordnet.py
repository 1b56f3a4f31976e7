"""NLTK's WordNet reader, built faster for PWWS and the NER context attack, with the same synsets.

Building ``WordNetCorpusReader`` took PWWS's first build 12.5 s on the 2-core box (bench/README.md):

* **The OMW map** (6 of those seconds): NLTK builds a map from WordNet 3.0 to the loaded version
  in the constructor even when the loaded WordNet is 3.0 itself (it compares the version "3.0"
  with the corpus name "wordnet"), and uses it only to load Open Multilingual Wordnet data, which
  is never downloaded here. :func:`quick_wordnet` skips it when that data is absent.
* **The lemma index** (2.3 s): the constructor parses ``index.{noun,verb,adj,adv}`` (147,000
  lemmas) and scans ``data.adj`` for satellite adjectives through NLTK's seekable stream reader,
  whose ``readline`` is pure Python. :func:`quick_wordnet` parses the same lines the same way
  through Python's own file reading (0.5 s). A file it cannot read as a plain file (a zipped
  corpus), or a line it cannot parse, goes back to NLTK's own code, which raises NLTK's error.
  (A JSON cache of the parsed index was tried first: 0.15 s to read, but a file in a cache
  folder is one more input that can be planted or damaged; parsing the corpus itself cannot.)

Synsets and lemmas through a reader built either way are the same (tests/test_resources.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quick_wordnet() -> Iterator[None]:
    """While open, a ``WordNetCorpusReader`` built anywhere skips the unused OMW map and parses its
    lemma index and satellite adjectives with Python's file reading."""
    import nltk
    from nltk.corpus.reader import wordnet as wn

    cls = wn.WordNetCorpusReader
    originals = {name: getattr(cls, name) for name in ("map_wn", "_scan_satellites", "_load_lemma_pos_offset_map")}

    def map_wn(self: Any, version: str = "wordnet") -> Any:
        try:
            nltk.data.find("corpora/omw-1.4")
        except LookupError:  # no OMW data: the map would never be read
            return None
        return originals["map_wn"](self, version)

    def scan_satellites(self: Any) -> None:
        try:
            self.satellite_offsets = satellite_offsets(_plain_path(self, "data.adj"))
        except Exception:  # noqa: BLE001 - NLTK's own scan decides (and raises its own error)
            originals["_scan_satellites"](self)

    def load_lemma_pos_offset_map(self: Any) -> None:
        try:
            parsed = {}
            for suffix in self._FILEMAP.values():
                lemma_offsets(_plain_path(self, f"index.{suffix}"), self.satellite_offsets, into=parsed)
        except Exception:  # noqa: BLE001 - NLTK's own parse decides (and raises its own error)
            originals["_load_lemma_pos_offset_map"](self)
            return
        self._lemma_pos_offset_map.update(parsed)

    cls.map_wn = map_wn  # type: ignore[method-assign]
    cls._scan_satellites = scan_satellites  # type: ignore[method-assign]
    cls._load_lemma_pos_offset_map = load_lemma_pos_offset_map  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)


def _plain_path(reader: Any, name: str) -> str:
    """The path of one of ``reader``'s files; AttributeError for a file inside a zip."""
    return str(reader.abspath(name).path)


def satellite_offsets(path: str) -> set[int]:
    """The offsets of the satellite adjective synsets in ``data.adj`` (NLTK's ``_scan_satellites``)."""
    offsets = set()
    with open(path, encoding="utf8") as fp:
        for line in fp:
            if not line.strip() or line.startswith(" "):
                continue
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "s":
                offsets.add(int(fields[0]))
    return offsets


def lemma_offsets(path: str, satellites: set[int], *, into: dict[str, dict[str, list[int]]]) -> None:
    """Each lemma's synset offsets per part of speech from one ``index.*`` file, into ``into``, as
    NLTK's ``_load_lemma_pos_offset_map`` parses them: ``lemma pos n_synsets n_pointers
    pointers... n_senses n_tagged offsets...``; an adjective's satellites (``s``) are its offsets
    among ``satellites``, in index order. ValueError on a line that does not parse."""
    with open(path, encoding="utf8") as fp:
        for number, line in enumerate(fp, start=1):
            if line.startswith(" "):
                continue
            parts = line.split()
            lemma, pos = parts[0], parts[1]
            n_synsets, n_pointers = int(parts[2]), int(parts[3])
            at = 4 + n_pointers
            offsets = [int(x) for x in parts[at + 2:at + 2 + n_synsets]]
            if n_synsets <= 0 or int(parts[at]) != n_synsets or len(offsets) != n_synsets:
                raise ValueError(f"{path}, line {number}: not an index line")
            into.setdefault(lemma, {})[pos] = offsets
            if pos == "a":
                into[lemma]["s"] = [o for o in offsets if o in satellites]
