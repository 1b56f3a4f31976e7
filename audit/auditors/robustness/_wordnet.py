"""NLTK's WordNet reader, built faster for PWWS and the NER context attack, with the same synsets.

Building ``WordNetCorpusReader`` took PWWS's first build 12.5 s on the 2-core box (bench/README.md):

* **The OMW map** (6 of those seconds): NLTK builds a map from WordNet 3.0 to the loaded version
  in the constructor even when the loaded WordNet is 3.0 itself (it compares the version "3.0"
  with the corpus name "wordnet"), and uses it only to load Open Multilingual Wordnet data, which
  is never downloaded here. :func:`quick_wordnet` skips it when that data is absent.
* **The lemma index** (2.3 s): the constructor parses ``index.{noun,verb,adj,adv}`` (147,000
  lemmas) and scans ``data.adj`` for satellite adjectives, line by line through NLTK's seekable
  stream reader. :func:`quick_wordnet` keeps what the parse produced in a JSON file in our cache
  folder, keyed by the index files' paths, sizes and modification times, NLTK's version and this
  format's, and reads it back in 0.15 s on the next run. JSON, not pickle: reading the cache can
  never run code. A cache that cannot be read, does not match, or is malformed is ignored and the
  files are parsed as before; one that cannot be written is skipped.

Synsets and lemmas through a reader built either way are the same (tests/test_resources.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INDEX_CACHE_FORMAT = 1
POS_KEYS = frozenset("nvasr")


@contextlib.contextmanager
def quick_wordnet(cache_dir: Path | None = None) -> Iterator[None]:
    """While open, a ``WordNetCorpusReader`` built anywhere skips the unused OMW map and reads its
    lemma index from the cache in ``cache_dir`` (default: our NLTK data folder), writing it there
    after a parse."""
    import nltk
    from nltk.corpus.reader import wordnet as wn

    from audit.engine.resources import default_data_dir

    folder = Path(cache_dir) if cache_dir is not None else default_data_dir()
    cls = wn.WordNetCorpusReader
    originals = {name: getattr(cls, name) for name in ("map_wn", "_scan_satellites", "_load_lemma_pos_offset_map")}

    def map_wn(self: Any, version: str = "wordnet") -> Any:
        try:
            nltk.data.find("corpora/omw-1.4")
        except LookupError:  # no OMW data: the map would never be read
            return None
        return originals["map_wn"](self, version)

    def scan_satellites(self: Any) -> None:
        # The constructor scans satellites first, then loads the lemma index: one cache holds both.
        cached = read_index_cache(self, folder)
        if cached is None:
            originals["_scan_satellites"](self)
            self._rai_index_cached = None
            return
        self.satellite_offsets = cached[1]
        self._rai_index_cached = cached[0]

    def load_lemma_pos_offset_map(self: Any) -> None:
        cached = getattr(self, "_rai_index_cached", None)
        if cached is not None:
            self._lemma_pos_offset_map.update(cached)
        else:
            originals["_load_lemma_pos_offset_map"](self)
            write_index_cache(self, folder)
        with contextlib.suppress(AttributeError):
            del self._rai_index_cached

    cls.map_wn = map_wn  # type: ignore[method-assign]
    cls._scan_satellites = scan_satellites  # type: ignore[method-assign]
    cls._load_lemma_pos_offset_map = load_lemma_pos_offset_map  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)


def index_cache_path(reader: Any, folder: Path) -> Path | None:
    """The cache file for ``reader``'s WordNet files (None when they are not plain files, e.g. in
    a zip): its name hashes their paths, sizes and modification times, NLTK's version and ours."""
    import nltk

    parts: list[Any] = [INDEX_CACHE_FORMAT, nltk.__version__]
    for name in ("index.noun", "index.verb", "index.adj", "index.adv", "data.adj"):
        try:
            path = Path(reader.abspath(name).path)
            st = path.stat()
        except (AttributeError, OSError):
            return None
        parts.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
    return folder / f"wordnet-index-{digest}.json"


def read_index_cache(reader: Any, folder: Path) -> tuple[dict[str, dict[str, list[int]]], set[int]] | None:
    """(lemma -> {pos: offsets}, satellite offsets) from the cache, or None when there is no
    usable cache (absent, unreadable, or not of the expected shape)."""
    path = index_cache_path(reader, folder)
    if path is None:
        return None
    enabled = gc.isenabled()
    gc.disable()  # 147,000 small dicts: the collector would run dozens of times for nothing
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        lemmas, satellites = data["lemmas"], data["satellites"]
        if not (isinstance(lemmas, dict) and isinstance(satellites, list) and lemmas
                and all(isinstance(s, int) for s in satellites)):
            return None
        for by_pos in lemmas.values():
            if not (isinstance(by_pos, dict) and by_pos.keys() <= POS_KEYS
                    and all(isinstance(v, list) and all(type(o) is int for o in v) for v in by_pos.values())):
                return None
        return lemmas, set(satellites)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    finally:
        if enabled:
            gc.enable()


def write_index_cache(reader: Any, folder: Path) -> None:
    """Write ``reader``'s parsed lemma index and satellites to the cache (atomically; skipped when
    the folder cannot be written)."""
    path = index_cache_path(reader, folder)
    if path is None:
        return
    data = {"lemmas": reader._lemma_pos_offset_map, "satellites": sorted(reader.satellite_offsets)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".wordnet-index-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError:
        return
