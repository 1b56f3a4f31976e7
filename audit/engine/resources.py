"""Offline resources for TextAttack: NLTK's English stopwords and WordNet, resolved once.

TextAttack reads NLTK's stopwords when it is imported (``StopwordModification`` is built at
import time) and PWWS needs WordNet. Neither may be fetched from the network at run time, so
:func:`ensure_nltk_resources` finds them locally first, in this order:

1. a folder already on NLTK's data path (or our cache folder, from an earlier run);
2. WordNet 3.0 from Debian's ``wordnet-base`` + ``wordnet-sense-index`` (``/usr/share/wordnet``),
   *copied* (NLTK refuses symlinks out of its data folder) into our cache folder as
   ``corpora/wordnet/``, with the ``lexnames`` file NLTK's reader wants (not shipped by Debian;
   its 45 lines are listed in ``lexnames(5WN)``);
3. ``nltk.download`` into the cache folder, with a short socket timeout, unless offline mode is
   set (``RAI_AUDIT_OFFLINE``, ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` = 1);
4. stopwords only: scikit-learn's ``ENGLISH_STOP_WORDS``, written as ``corpora/stopwords/english``
   and recorded as a substitution;
5. else a clear message naming what cannot run and how to provide the resource.

The cache folder is ``$RAI_AUDIT_NLTK_DATA``, else ``$XDG_CACHE_HOME/rai-audit/nltk_data``, else
``~/.cache/rai-audit/nltk_data``; it is appended to ``nltk.data.path``. Nothing happens at import.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_WORDNET = Path("/usr/share/wordnet")
ENV_DATA_DIR = "RAI_AUDIT_NLTK_DATA"
OFFLINE_ENVS = ("RAI_AUDIT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
DOWNLOAD_TIMEOUT_S = 5.0
_LOG = logging.getLogger(__name__)

# The WordNet files NLTK's reader opens (lexnames is generated, see LEXNAMES).
WORDNET_FILES = ("data.adj", "data.adv", "data.noun", "data.verb", "index.adj", "index.adv",
                 "index.noun", "index.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc")
WORDNET_OPTIONAL = ("index.sense", "cntlist.rev", "cntlist", "frames.vrb", "sentidx.vrb", "sents.vrb")

# lexnames(5WN): the 45 lexicographer files, their numbers and syntactic category
# (1 noun, 2 verb, 3 adjective, 4 adverb), in file-number order.
LEXNAMES = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)

WORDNET_MISSING = (
    "{recipes} cannot run: NLTK's WordNet corpus was not found (looked in NLTK's data path, {debian} "
    "and {cache}; no download{why}). Provide it with `apt-get install wordnet-base wordnet-sense-index`, "
    "or `python -m nltk.downloader -d {cache} wordnet`, or set {env} to a folder holding corpora/wordnet"
)
STOPWORDS_MISSING = (
    "TextAttack cannot be imported, so no recipe can run: NLTK's English stopwords were not found "
    "and scikit-learn's list is unavailable. Provide them with `python -m nltk.downloader -d {cache} "
    "stopwords`, or set {env} to a folder holding corpora/stopwords/english"
)
STOPWORDS_SUBSTITUTED = (
    "NLTK's English stopwords were not available; scikit-learn's ENGLISH_STOP_WORDS "
    "(318 words, a different list) were used instead, so TextAttack's stopword constraint differs"
)


@dataclass(frozen=True)
class ResourceStatus:
    """Where each resource came from ('' when missing), substitutions made, and problems."""

    data_dir: Path
    stopwords: str = ""
    wordnet: str = ""
    substitutions: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    checked_wordnet: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def has_stopwords(self) -> bool:
        return bool(self.stopwords)

    @property
    def has_wordnet(self) -> bool:
        return bool(self.wordnet)

    def to_dict(self) -> dict[str, object]:
        return {"data_dir": str(self.data_dir), "stopwords": self.stopwords, "wordnet": self.wordnet,
                "substitutions": list(self.substitutions), "problems": list(self.problems)}


def default_data_dir() -> Path:
    """Our NLTK data folder: $RAI_AUDIT_NLTK_DATA, else the XDG cache, else ~/.cache."""
    if os.environ.get(ENV_DATA_DIR):
        return Path(os.environ[ENV_DATA_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rai-audit" / "nltk_data"


def offline_mode() -> bool:
    """True when any of the offline switches is set to 1 (then nothing is downloaded)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes") for name in OFFLINE_ENVS)


_LOCK = threading.Lock()
_RESOLVED: ResourceStatus | None = None


def ensure_nltk_resources(*, need_wordnet: bool) -> ResourceStatus:
    """Resolve stopwords (and WordNet when asked) once per process; see the module docstring.

    Call this before importing TextAttack. A later call that needs WordNet when the first did not
    resolves WordNet then; otherwise the first answer is returned.
    """
    global _RESOLVED
    with _LOCK:
        if _RESOLVED is not None and (_RESOLVED.checked_wordnet or not need_wordnet):
            return _RESOLVED
        _RESOLVED = resolve_nltk_resources(need_wordnet=need_wordnet)
        return _RESOLVED


def resolve_nltk_resources(*, need_wordnet: bool, data_dir: Path | None = None,
                           wordnet_source: Path = DEBIAN_WORDNET, search_nltk_path: bool = True,
                           download: bool | None = None) -> ResourceStatus:
    """The uncached resolution (tests call it with a temporary ``data_dir``).

    ``download=None`` downloads unless :func:`offline_mode`. ``data_dir`` is appended to
    ``nltk.data.path`` when it holds anything.
    """
    import nltk

    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    allow_download = (not offline_mode()) if download is None else download
    why_no_download = "" if allow_download else ": offline mode"
    substitutions: list[str] = []
    problems: list[str] = []

    stop_src = _find_in_dir(data_dir, "stopwords") or (_find_on_nltk_path("stopwords") if search_nltk_path else "")
    if not stop_src and allow_download and _download("stopwords", data_dir):
        stop_src = f"downloaded into {data_dir}"
    if not stop_src:
        if _write_sklearn_stopwords(data_dir):
            stop_src = "scikit-learn ENGLISH_STOP_WORDS (substitution)"
            substitutions.append(STOPWORDS_SUBSTITUTED)
        else:
            problems.append(STOPWORDS_MISSING.format(cache=data_dir, env=ENV_DATA_DIR))

    wn_src = ""
    if need_wordnet:
        wn_src = _find_in_dir(data_dir, "wordnet") or (_find_on_nltk_path("wordnet") if search_nltk_path else "")
        if not wn_src and _copy_debian_wordnet(wordnet_source, data_dir):
            wn_src = f"Debian WordNet 3.0 ({wordnet_source}), copied into {data_dir}"
        if not wn_src and allow_download and _download("wordnet", data_dir):
            wn_src = f"downloaded into {data_dir}"
        if not wn_src:
            problems.append(WORDNET_MISSING.format(recipes="PWWS", debian=wordnet_source, cache=data_dir,
                                                   why=why_no_download, env=ENV_DATA_DIR))

    if data_dir.is_dir() and str(data_dir) not in nltk.data.path:
        nltk.data.path.append(str(data_dir))
    return ResourceStatus(data_dir=data_dir, stopwords=stop_src, wordnet=wn_src,
                          substitutions=tuple(substitutions), problems=tuple(problems),
                          checked_wordnet=need_wordnet)


def _find_in_dir(data_dir: Path, name: str) -> str:
    corpus = data_dir / "corpora" / name
    if name == "stopwords":
        ok = (corpus / "english").is_file()
    else:
        ok = all((corpus / f).is_file() for f in (*WORDNET_FILES, "lexnames"))
    return f"{corpus}" if ok else ""


def _find_on_nltk_path(name: str) -> str:
    import nltk

    try:
        found = nltk.data.find(f"corpora/{name}")
    except LookupError:
        return ""
    return f"NLTK data path ({found})"


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per line, as lexnames(5WN) lists."""
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def _copy_debian_wordnet(source: Path, data_dir: Path) -> bool:
    """Copy the WordNet database into ``data_dir/corpora/wordnet`` (atomically, via a temp dir)."""
    if not all((source / f).is_file() for f in WORDNET_FILES):
        return False
    corpora = data_dir / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=corpora))
    try:
        for name in (*WORDNET_FILES, *WORDNET_OPTIONAL):
            if (source / name).is_file():
                shutil.copyfile(source / name, tmp / name)  # a copy: NLTK rejects symlinks
        (tmp / "lexnames").write_text(lexnames_text(), encoding="ascii")
        target = corpora / "wordnet"
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not _find_in_dir(data_dir, "wordnet"):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bool(_find_in_dir(data_dir, "wordnet"))


def _write_sklearn_stopwords(data_dir: Path) -> bool:
    try:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    except ImportError:
        return False
    folder = data_dir / "corpora" / "stopwords"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".english.{os.getpid()}"
    tmp.write_text("".join(f"{w}\n" for w in sorted(ENGLISH_STOP_WORDS)), encoding="utf-8")
    tmp.replace(folder / "english")
    return True


def _download(package: str, data_dir: Path) -> bool:
    """``nltk.download`` with a short socket timeout and nothing printed; False on any failure.

    NLTK prints a failed download (``[nltk_data] Error loading stopwords: <urlopen error ...>``)
    even with ``quiet=True``, to the ``sys.stderr`` it bound when it was imported (so redirecting
    ``sys.stderr`` alone misses it): its output goes to a buffer that is only logged at debug
    level. What the user needs (a substitution, or how to provide the resource) is in the status.
    """
    import contextlib
    import io
    import socket

    import nltk

    data_dir.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            ok = bool(nltk.download(package, download_dir=str(data_dir), quiet=True, raise_on_error=False,
                                    print_error_to=said))
    except Exception:  # noqa: BLE001 - any network failure means "not available"
        ok = False
    finally:
        socket.setdefaulttimeout(previous)
    if said.getvalue().strip():
        _LOG.debug("nltk.download(%r): %s", package, said.getvalue().strip())
    # NLTK leaves some corpora zipped (corpora/wordnet.zip); its reader opens those too.
    return ok and (bool(_find_in_dir(data_dir, package)) or (data_dir / "corpora" / f"{package}.zip").is_file())
