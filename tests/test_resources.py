"""Offline NLTK resources: WordNet from Debian's database, stopwords with a recorded substitution,
clear messages when something is missing, resolution once and never at import."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from audit.engine import resources

DEBIAN = resources.DEBIAN_WORDNET


@pytest.fixture
def isolated_nltk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the folders a test appends to nltk.data.path out of the rest of the session."""
    import nltk

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))


def test_lexnames_lists_the_45_lexicographer_files() -> None:
    lines = resources.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"
    numbers = [int(line.split("\t")[0]) for line in lines]
    assert numbers == list(range(45))
    assert {line.split("\t")[2] for line in lines} == {"1", "2", "3", "4"}


@pytest.mark.filterwarnings("ignore:The multilingual functions are not available:UserWarning")
@pytest.mark.skipif(not (DEBIAN / "data.noun").is_file(),
                    reason="Debian's wordnet-base is not installed (/usr/share/wordnet absent)")
def test_wordnet_loads_offline_from_the_cache_built_from_debian(tmp_path: Path, isolated_nltk_path: None) -> None:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    status = resources.resolve_nltk_resources(need_wordnet=True, data_dir=tmp_path, search_nltk_path=False,
                                              download=False)
    assert status.has_wordnet and "Debian" in status.wordnet
    corpus = tmp_path / "corpora" / "wordnet"
    assert not any(p.is_symlink() for p in corpus.iterdir())  # NLTK rejects symlinks out of its folder
    root = nltk.data.find("corpora/wordnet", paths=[str(tmp_path)])
    wn = WordNetCorpusReader(root, None)
    dog = wn.synsets("dog")[0]
    assert dog.name() == "dog.n.01"
    assert dog.lexname() == "noun.animal"  # read through the generated lexnames file
    assert "good" in {lemma.name() for s in wn.synsets("good") for lemma in s.lemmas()}
    assert str(tmp_path) in nltk.data.path

    again = resources.resolve_nltk_resources(need_wordnet=True, data_dir=tmp_path, search_nltk_path=False,
                                             download=False)
    assert again.wordnet == str(corpus)  # reused, not copied again


WORDS = ("good", "bad", "movie", "run", "quickly", "funny", "terrible", "actor", "plot", "boring", "dull", "big")


def _synonyms(reader: Any) -> list[Any]:
    return [[(s.name(), [lemma.name() for lemma in s.lemmas()]) for s in reader.synsets(word)] for word in WORDS]


@pytest.mark.filterwarnings("ignore:The multilingual functions are not available:UserWarning")
@pytest.mark.skipif(not (DEBIAN / "data.noun").is_file(),
                    reason="Debian's wordnet-base is not installed (/usr/share/wordnet absent)")
def test_quick_wordnet_skips_the_omw_map_parses_the_same_index_and_gives_the_same_synonyms(
        tmp_path: Path, isolated_nltk_path: None) -> None:
    """quick_wordnet skips NLTK's WordNet-3.0-to-itself map (read only for OMW data, absent here)
    and parses the lemma index with Python's own file reading: the same index, satellites and
    synsets as NLTK's reader; an index line it cannot parse goes back to NLTK, whose error it is."""
    import shutil

    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader, WordNetError

    from audit.auditors.robustness import _wordnet

    resources.resolve_nltk_resources(need_wordnet=True, data_dir=tmp_path, search_nltk_path=False, download=False)
    root = nltk.data.find("corpora/wordnet", paths=[str(tmp_path)])
    full = WordNetCorpusReader(root, None)
    with _wordnet.quick_wordnet():
        quick = WordNetCorpusReader(root, None)
    assert full.map30 and quick.map30 is None  # the map was built before, and is not now
    for name in ("map_wn", "_scan_satellites", "_load_lemma_pos_offset_map"):  # the class is restored
        assert "quick" not in getattr(WordNetCorpusReader, name).__qualname__
    assert quick._lemma_pos_offset_map == full._lemma_pos_offset_map
    assert quick.satellite_offsets == full.satellite_offsets and quick.satellite_offsets
    assert any("s" in by_pos for by_pos in quick._lemma_pos_offset_map.values())
    assert _synonyms(quick) == _synonyms(full)

    # A damaged index line: NLTK's own parse runs and raises NLTK's error, naming the file and line.
    damaged = tmp_path / "damaged" / "wordnet"
    shutil.copytree(Path(root.path), damaged)
    index = damaged / "index.adv"
    lines = index.read_text(encoding="utf8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if not line.startswith(" "))
    lines[at] = lines[at].replace(lines[at].split()[2], "x", 1)
    index.write_text("".join(lines), encoding="utf8")
    with _wordnet.quick_wordnet(), pytest.raises(WordNetError, match=r"index\.adv, line"):
        WordNetCorpusReader(nltk.data.find("wordnet", paths=[str(damaged.parent)]), None)


def test_stopwords_fall_back_to_scikit_learn_and_record_the_substitution(tmp_path: Path,
                                                                        isolated_nltk_path: None) -> None:
    from nltk.corpus.reader import WordListCorpusReader
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    status = resources.resolve_nltk_resources(need_wordnet=False, data_dir=tmp_path, search_nltk_path=False,
                                              download=False)
    assert status.has_stopwords and "scikit-learn" in status.stopwords
    assert status.substitutions == (resources.STOPWORDS_SUBSTITUTED,)
    words = WordListCorpusReader(str(tmp_path / "corpora" / "stopwords"), ["english"]).words("english")
    assert set(words) == set(ENGLISH_STOP_WORDS)


def test_missing_wordnet_names_the_recipe_and_how_to_provide_it(tmp_path: Path, isolated_nltk_path: None) -> None:
    status = resources.resolve_nltk_resources(need_wordnet=True, data_dir=tmp_path / "cache",
                                              wordnet_source=tmp_path / "no-wordnet", search_nltk_path=False,
                                              download=False)
    assert not status.has_wordnet
    (problem,) = status.problems
    assert problem.startswith("PWWS cannot run")
    assert "apt-get install wordnet-base wordnet-sense-index" in problem
    assert resources.ENV_DATA_DIR in problem


def test_cache_folder_follows_the_override_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(resources.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.default_data_dir() == tmp_path / "xdg" / "rai-audit" / "nltk_data"
    monkeypatch.setenv(resources.ENV_DATA_DIR, str(tmp_path / "mine"))
    assert resources.default_data_dir() == tmp_path / "mine"


def test_resolution_happens_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[bool] = []

    def fake(*, need_wordnet: bool) -> resources.ResourceStatus:
        calls.append(need_wordnet)
        return resources.ResourceStatus(data_dir=tmp_path, stopwords="x", wordnet="y" if need_wordnet else "",
                                        checked_wordnet=need_wordnet)

    monkeypatch.setattr(resources, "_RESOLVED", None)
    monkeypatch.setattr(resources, "resolve_nltk_resources", fake)
    resources.ensure_nltk_resources(need_wordnet=False)
    resources.ensure_nltk_resources(need_wordnet=False)
    resources.ensure_nltk_resources(need_wordnet=True)  # WordNet was not checked the first time
    resources.ensure_nltk_resources(need_wordnet=True)
    resources.ensure_nltk_resources(need_wordnet=False)
    assert calls == [False, True]


def test_importing_our_modules_does_no_work() -> None:
    code = ("import sys; import audit.engine.resources, audit.auditors.robustness._attacks, "
            "audit.auditors.robustness._invariance, audit.auditors.robustness._auditor; "
            "print(sorted(m for m in ('nltk', 'textattack', 'torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# In a fresh process with no NLTK data anywhere and no network, as on a new machine: the robustness
# step's resource path (resolve, import TextAttack, build both default recipes) must print nothing
# of NLTK's downloader. Every connection is refused inside the child, whatever the machine's network.
_NO_NETWORK_CHILD = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:1])
    raise ConnectionRefusedError(111, "refusing to connect (test)")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
import numpy as np
from audit.auditors.robustness import _attacks as A
ta, status = A.import_textattack(need_wordnet=True)
wrapper = A.make_wrapper(lambda texts, pairs: np.full((len(texts), 2), 0.5), None)
for name in ("deepwordbug", "pwws"):
    if name == "pwws" and not status.has_wordnet:
        continue
    A.build_attack(ta, A.RECIPES[name], wrapper, query_budget=None, batch_size=8)
print("STOPWORDS", status.stopwords, file=sys.__stdout__)
print("ATTEMPTS", len(attempts), file=sys.__stdout__)
"""


@pytest.mark.slow
def test_a_failed_download_prints_no_nltk_network_error(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in (*resources.OFFLINE_ENVS, resources.ENV_DATA_DIR, "NLTK_DATA", "TA_CACHE_DIR")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), NLTK_DATA=str(tmp_path / "none"))
    proc = subprocess.run([sys.executable, "-c", _NO_NETWORK_CHILD], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=600)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert "STOPWORDS scikit-learn" in said  # nothing was found, so the substitution was made ...
    assert int(re.search(r"^ATTEMPTS (\d+)$", proc.stdout, re.M).group(1)) > 0  # ... after a download was tried
    noise = [line for line in said.splitlines() if "[nltk_data]" in line or "urlopen" in line]
    assert noise == []
