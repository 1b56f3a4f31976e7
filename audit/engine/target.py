"""Target: the model under audit, its tokenizer and device, loaded safely.

Loading never runs code from the model folder unless ``trust_remote_code`` is given; pickle
checkpoints (``pytorch_model.bin``) are read only with ``torch.load(weights_only=True)``;
safetensors is preferred (transformers' own loader does this when told ``weights_only``). All
forward passes of the audit go through :meth:`predict_logits` (sequence classifiers) or
:meth:`predict_words` (token classifiers), which batch (see :mod:`audit.engine.inference`) and
cache by exact input.

The task is read from the model's config (see :func:`detect_task`): a ``*ForTokenClassification``
architecture is a token classifier, loaded with ``AutoModelForTokenClassification``, and needs a
fast tokenizer (word alignment uses its ``word_ids()``).

Over the ~400 lines a module should hold because the folder checks that keep a model's code from
running (file allow-list, symlinks, sizes, tokenizer vocabulary) live beside the loader they guard.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from audit.engine.inference import PassStats, predict_logits
from audit.errors import (
    MODEL_LOAD_FAILED,
    MODEL_NO_TOKENIZER,
    MODEL_REMOTE_CODE,
    OPTION_INVALID,
    PATH_MISSING,
    AuditInputError,
)
from audit.tasks import SEQUENCE, TASKS, TOKEN
from audit.tasks.alignment import WordPredictions, predict_words

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model",
                   "vocab.json", "sentencepiece.bpe.model", "tokenizer.model")
# A tokenizer is its vocabulary: tokenizer_config.json alone cannot split a word.
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "vocab.json", "sentencepiece.bpe.model",
                    "tokenizer.model", "spm.model", "bpe.codes")
MODEL_NO_VOCABULARY = "{path}: the tokenizer has no vocabulary file (one of {files})"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
# Below this many parameters a CPU forward pass is too small to split across threads: one thread
# is faster (measured 15x on the demo model on a busy 2-core machine, and never slower).
SMALL_MODEL_PARAMETERS = 10_000_000
CONFIG_MAX_BYTES = 16 << 20  # the largest real config.json files are a few hundred kB
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Prefixes of tagging schemes (IOB1/IOB2, IOE, IOBES, BILOU) for reading the task off the labels.
_TAG_PREFIX = re.compile(r"^[BIESLU][-_].+")
WRONG_PASS = "{method} does not serve a {task} model; use {other}"  # an auditor's bug, not the user's
TOKENIZER_NOT_FAST = ("{path}: a token-classification model needs a fast tokenizer (tokenizer.json, read by the "
                      "tokenizers library): word alignment uses its word_ids(), which {kind} lacks")


@dataclass
class Target:
    """A loaded classifier. Use :meth:`load`; the constructor takes already-built objects."""

    model: Any
    tokenizer: Any
    device: str = "cpu"
    dtype: str = "float32"
    name: str = ""
    max_length: int = 512
    max_tokens: int = 8192
    max_batch: int = 64
    fingerprint: str = ""
    stats: PassStats = field(default_factory=PassStats)
    _cache: dict[tuple[str, str | None], np.ndarray] = field(default_factory=dict, repr=False)
    cache_hits: int = 0
    truncated_rows: int = 0
    task: str = ""  # audit.tasks.SEQUENCE or TOKEN; read from the model's class when not given
    _word_cache: dict[tuple[tuple[str, ...], str, int | None], _WordEntry] = field(default_factory=dict, repr=False)
    # Where the forward passes run: None here, or an audit.engine.ray_engine.RayEngine (--engine ray),
    # whose batches are the ones planned here, so the cache holds the same logits either way.
    engine: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.task:
            name = type(self.model).__name__
            self.task = TOKEN if name.endswith("ForTokenClassification") else SEQUENCE

    @cached_property
    def n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    @property
    def num_threads(self) -> int | None:
        """1 for small models on CPU (see SMALL_MODEL_PARAMETERS), else torch's default."""
        if self.device != "cpu":
            return None
        return 1 if self.n_parameters < SMALL_MODEL_PARAMETERS else None

    @property
    def multi_label(self) -> bool:
        return getattr(self.model.config, "problem_type", None) == "multi_label_classification"

    @property
    def label_names(self) -> list[str]:
        id2label = self.model.config.id2label
        return [str(id2label[i]) for i in range(self.model.config.num_labels)]

    @property
    def problem_type(self) -> str:
        if self.task == TOKEN:
            return "token-tagging"
        if self.multi_label:
            return "multi-label"
        return "binary" if self.model.config.num_labels == 2 else "multi-class"

    @classmethod
    def load(
        cls,
        source: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "float32",
        trust_remote_code: bool = False,
        max_length: int | None = None,
        max_tokens: int = 8192,
        max_batch: int = 64,
        task: str | None = None,
    ) -> Target:
        """Load a classifier and its tokenizer from a local folder or a hub id.

        ``task`` (``audit.tasks.SEQUENCE`` or ``TOKEN``) overrides what :func:`detect_task` reads
        from the config, e.g. for a bare encoder that gets a new head."""
        import torch
        from transformers import (
            AutoConfig,
            AutoModelForSequenceClassification,
            AutoModelForTokenClassification,
            AutoTokenizer,
        )

        if task is not None and task not in TASKS:
            raise AuditInputError(OPTION_INVALID.format(
                option="task", problem=f"must be one of {', '.join(TASKS)}, got {task!r}"))
        device = _resolve_device(device, torch)
        if dtype == "float16" and device == "cpu":
            raise AuditInputError(OPTION_INVALID.format(
                option="dtype", problem="float16 needs a GPU; use bfloat16 or float32 on CPU"))
        path = Path(source)
        local = path.exists()
        if not local and (source.startswith((".", "/", "~")) or not _HUB_ID.match(source)):
            raise AuditInputError(PATH_MISSING.format(what="model folder", path=source))
        if local:
            _check_local_folder(path, trust_remote_code=trust_remote_code)
        common = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            config = AutoConfig.from_pretrained(source, **common)
            task = task or detect_task(config)
            tokenizer = AutoTokenizer.from_pretrained(source, **common)
            if task == TOKEN:
                tokenizer = _word_ready(tokenizer, source, common)
            kwargs: dict[str, Any] = {"config": config, **common}
            # Pickle checkpoints are read tensors-only (torch.load(weights_only=True)), so no pickled
            # code runs; safetensors is preferred when both are present.
            kwargs["weights_only"] = True
            if local and any((path / f).exists() for f in WEIGHT_FILES[:2]):
                kwargs["use_safetensors"] = True
            auto = AutoModelForTokenClassification if task == TOKEN else AutoModelForSequenceClassification
            model = auto.from_pretrained(source, **kwargs)
        except AuditInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - transformers raises many types
            raise AuditInputError(MODEL_LOAD_FAILED.format(path=source, error=_first_line(exc))) from None
        _check_tokenizer(tokenizer, source)
        _check_model_fits(model, tokenizer, source)
        model.eval()
        model.to(device)
        limit = _max_length(tokenizer, model.config)
        if max_length is not None:
            limit = min(limit, max_length)
        return cls(model=model, tokenizer=tokenizer, device=device, dtype=dtype, name=source,
                   max_length=limit, max_tokens=max_tokens, max_batch=max_batch, task=task,
                   fingerprint=_fingerprint(path, model) if local else _fingerprint(None, model))

    def predict_logits(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                       progress: bool = False, desc: str = "predict") -> np.ndarray:
        """Logits for each text, from the cache where this exact input was scored before."""
        if self.task != SEQUENCE:
            raise TypeError(WRONG_PASS.format(method="predict_logits", task=self.task, other="predict_words"))
        keys = [(t, pairs[i] if pairs is not None else None) for i, t in enumerate(texts)]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        self.cache_hits += len(keys) - sum(1 for k in keys if k not in self._cache)
        if todo:
            t_texts = [k[0] for k in todo]
            t_pairs = [k[1] or "" for k in todo] if pairs is not None else None
            logits, truncated = predict_logits(
                self.model, self.tokenizer, t_texts, t_pairs, max_length=self.max_length,
                max_tokens=self.max_tokens, max_batch=self.max_batch, device=self.device,
                dtype=self.dtype, progress=progress, desc=desc, stats=self.stats, num_threads=self.num_threads,
                forward=self._forward)
            self.truncated_rows += int(truncated.sum())
            for k, row in zip(todo, logits, strict=True):
                self._cache[k] = row
        num_labels = self.model.config.num_labels
        if not keys:
            return np.zeros((0, num_labels), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

    def reset_cache(self, entries: dict[tuple[str, str | None], np.ndarray] | None = None) -> None:
        """Forget every cached sequence logit, then hold ``entries`` ((text, pair) -> logits). The
        attacks score each example from such a clean cache (robustness._attack_chunks: why)."""
        self._cache = dict(entries or {})

    @property
    def _forward(self) -> Any:
        """The batch loop of the configured engine (None: the local one)."""
        if self.engine is None:
            return None
        return functools.partial(self.engine.forward_batches, num_threads=self.num_threads)

    def predict_words(self, sentences: Sequence[Sequence[str]], *, aggregation: str = "first",
                      stride: int | None = None, progress: bool = False,
                      desc: str = "predict words") -> WordPredictions:
        """Tag probabilities per word of each sentence (a token classifier's
        :func:`audit.tasks.alignment.predict_words` through this target's device, budget and
        threads), from the cache where this exact sentence was scored before with the same
        ``aggregation`` and ``stride``. The counts and ``stats`` returned cover the sentences
        asked for; ``stats`` counts only the forward work this call did."""
        if self.task != TOKEN:
            raise TypeError(WRONG_PASS.format(method="predict_words", task=self.task, other="predict_logits"))
        keys = [(tuple(s), aggregation, stride) for s in sentences]
        todo = list(dict.fromkeys(k for k in keys if k not in self._word_cache))
        self.cache_hits += len(keys) - sum(1 for k in keys if k not in self._word_cache)
        # Called even with nothing to do, so bad options are refused whatever the cache holds. Each
        # sentence's result is independent of the others in the pass, so caching per sentence is exact.
        out = predict_words(model=self.model, tokenizer=self.tokenizer, sentences=[k[0] for k in todo],
                            max_length=self.max_length, stride=stride, aggregation=aggregation,
                            max_tokens=self.max_tokens, max_batch=self.max_batch, device=self.device,
                            dtype=self.dtype, num_threads=self.num_threads, progress=progress, desc=desc,
                            forward=self._forward)
        self.stats.merge(out.stats)
        for j, k in enumerate(todo):
            out.probs[j].flags.writeable = False  # shared by every later caller of this sentence
            self._word_cache[k] = _WordEntry(probs=out.probs[j], windowed=bool(out.windowed[j]),
                                             empty_words=int(out.empty_words[j]), cut_words=int(out.cut_words[j]))
        entries = [self._word_cache[k] for k in keys]
        return WordPredictions(probs=[e.probs for e in entries],
                               windowed=np.array([e.windowed for e in entries], dtype=bool),
                               empty_words=np.array([e.empty_words for e in entries], dtype=np.int64),
                               cut_words=np.array([e.cut_words for e in entries], dtype=np.int64), stats=out.stats)


@dataclass(frozen=True, kw_only=True)
class _WordEntry:
    """One cached sentence of :meth:`Target.predict_words`."""

    probs: np.ndarray
    windowed: bool
    empty_words: int
    cut_words: int


def detect_task(config: Any) -> str:
    """The task a model's config declares: TOKEN when ``architectures`` names a
    ``*ForTokenClassification`` class, SEQUENCE for ``*ForSequenceClassification``. With neither
    (no ``architectures``, or only a bare encoder such as ``BertModel``), the labels decide: an
    ``O`` label with every other label carrying a tagging-scheme prefix (``B-``, ``I-``, ``E-``,
    ``S-``, ``L-``, ``U-``) is a tag set, so TOKEN; anything else stays SEQUENCE, as every
    model was read before token classification existed. Pass ``task=`` to override."""
    for arch in getattr(config, "architectures", None) or []:
        if str(arch).endswith("ForTokenClassification"):
            return TOKEN
        if str(arch).endswith("ForSequenceClassification"):
            return SEQUENCE
    labels = [str(v) for v in (getattr(config, "id2label", None) or {}).values()]
    others = [x for x in labels if x != "O"]
    if "O" in labels and others and all(_TAG_PREFIX.match(x) for x in others):
        return TOKEN
    return SEQUENCE


def _word_ready(tokenizer: Any, source: str, common: dict[str, Any]) -> Any:
    """The tokenizer, able to encode pre-split words: fast (an exit-2 error otherwise), and, for
    byte-level BPE tokenizers (GPT-2, RoBERTa), reloaded with ``add_prefix_space=True``, as the
    Hugging Face token-classification script does, so each word is encoded as after a space."""
    from transformers import AutoTokenizer

    if not getattr(tokenizer, "is_fast", False):
        raise AuditInputError(TOKENIZER_NOT_FAST.format(path=source, kind=type(tokenizer).__name__))
    if getattr(tokenizer, "add_prefix_space", None) is False:
        tokenizer = AutoTokenizer.from_pretrained(source, add_prefix_space=True, **common)
    return tokenizer


TOKENIZER_BROKEN = "{path}: the tokenizer cannot encode text: {problem}"


def _check_tokenizer(tokenizer: Any, source: str) -> None:
    """A tokenizer that cannot encode a plain sentence (an empty vocabulary, a missing unknown
    token) is a load error now, not a traceback at prediction time."""
    try:
        size = len(tokenizer)
        ids = tokenizer("a quick check, 123")["input_ids"]
    except Exception as exc:  # noqa: BLE001 - tokenizers raise many types
        raise AuditInputError(TOKENIZER_BROKEN.format(path=source, problem=_first_line(exc))) from None
    if size == 0 or not ids:
        raise AuditInputError(TOKENIZER_BROKEN.format(path=source, problem="its vocabulary is empty"))


def _check_model_fits(model: Any, tokenizer: Any, source: str) -> None:
    """Labels numbered 0..n-1, and every token id the tokenizer can produce inside the model's
    embedding table: otherwise the first batch fails with an IndexError deep in torch."""
    id2label = getattr(model.config, "id2label", None) or {}
    n = int(getattr(model.config, "num_labels", 0) or 0)
    if n < 1 or sorted(int(k) for k in id2label) != list(range(n)):
        raise AuditInputError(MODEL_LOAD_FAILED.format(
            path=source, error=f"id2label must number the labels 0..{max(n - 1, 0)}, got ids {sorted(id2label)[:10]}"))
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    top = max(vocab.values(), default=-1)
    if rows is not None and top >= rows:
        raise AuditInputError(TOKENIZER_BROKEN.format(
            path=source, problem=f"it produces token id {top}, but the model's embedding table has {rows} rows"))


def _resolve_device(device: str, torch: Any) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise AuditInputError(OPTION_INVALID.format(
            option="device", problem="cuda was asked for but no CUDA GPU is available"))
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AuditInputError(OPTION_INVALID.format(
            option="device", problem="mps was asked for but is not available here"))
    return device


def _check_local_folder(path: Path, *, trust_remote_code: bool) -> None:
    if not path.is_dir():
        raise AuditInputError(f"{path}: expected a model folder (with config.json), got a file")
    config_file = path / "config.json"
    if not os.path.lexists(config_file):
        raise AuditInputError(f"{path}: the model folder has no config.json")
    _model_files(path)  # every file loading reads is a regular file inside the folder
    if config_file.stat().st_size > CONFIG_MAX_BYTES:
        raise AuditInputError(f"{config_file}: {config_file.stat().st_size:,} bytes is not a model config")
    config = _json_file(config_file)
    if "auto_map" in config and not trust_remote_code:
        raise AuditInputError(MODEL_REMOTE_CODE.format(path=path))
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        raise AuditInputError(MODEL_NO_TOKENIZER.format(path=path))
    if not any((path / f).exists() for f in VOCABULARY_FILES):
        raise AuditInputError(MODEL_NO_VOCABULARY.format(path=path, files=", ".join(VOCABULARY_FILES)))
    if not any((path / f).exists() for f in WEIGHT_FILES):
        raise AuditInputError(f"{path}: the model folder has no weights (model.safetensors or pytorch_model.bin)")


def _max_length(tokenizer: Any, config: Any) -> int:
    candidates = [512]
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        candidates = [tml]
    mpe = getattr(config, "max_position_embeddings", None)
    if isinstance(mpe, int) and mpe > 0:
        # RoBERTa-style models offset positions by padding_idx + 1.
        offset = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else 0
        candidates.append(mpe - offset)
    return min(candidates)


# Tokenizer files beyond TOKENIZER_FILES that change how text is split (all are hashed).
TOKENIZER_EXTRA = ("special_tokens_map.json", "added_tokens.json", "merges.txt", "spm.model", "bpe.codes")
MODEL_FILE_BAD = "{path}: {problem}; a model folder holds regular files only"


def _model_files(path: Path) -> list[Path]:
    """Every file of the folder that loading reads (config, tokenizer, weights and shards), in a
    fixed order, each checked to be a regular file inside the folder (see _checked)."""
    names = ["config.json", *TOKENIZER_FILES, *TOKENIZER_EXTRA, *WEIGHT_FILES]
    shards = sorted(p.name for p in path.glob("model-*.safetensors")) + sorted(
        p.name for p in path.glob("pytorch_model-*.bin"))
    present = [_checked(path, path / n) for n in dict.fromkeys([*names, *shards]) if os.path.lexists(path / n)]
    # Files named inside those files: an index's shards, a tokenizer config's *_file entries.
    named: list[str] = []
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if os.path.lexists(path / index):
            weight_map = _json_file(path / index).get("weight_map") or {}
            if not isinstance(weight_map, dict):
                raise AuditInputError(MODEL_FILE_BAD.format(path=path / index,
                                                            problem="its weight_map is not a mapping"))
            named += sorted({str(v) for v in weight_map.values()})
    if os.path.lexists(path / "tokenizer_config.json"):
        config = _json_file(path / "tokenizer_config.json")
        named += sorted(str(v) for k, v in config.items() if str(k).endswith("_file") and isinstance(v, str) and v)
    for name in dict.fromkeys(named):
        if Path(name).is_absolute() or ".." in Path(name).parts or not os.path.lexists(path / name):
            raise AuditInputError(MODEL_FILE_BAD.format(
                path=path, problem=f"it names {name[:80]!r}, which is not a file inside the folder"))
        file = _checked(path, path / name)
        if file not in present:
            present.append(file)
    return present


def _json_file(path: Path) -> dict[str, Any]:
    """A small JSON object from the model folder, or a one-line error."""
    _checked(path.parent, path)
    if path.stat().st_size > CONFIG_MAX_BYTES:
        raise AuditInputError(f"{path}: {path.stat().st_size:,} bytes is too large for this file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise AuditInputError(f"{path}: not valid JSON: {_first_line(exc)}") from None
    if not isinstance(data, dict):
        raise AuditInputError(f"{path}: expected a JSON object")
    return data


def _checked(folder: Path, file: Path) -> Path:
    """``file`` if it is a regular file inside ``folder`` (a symlink may point into the folder or,
    as in the Hugging Face cache, into the ``blobs`` folder beside the snapshots); a one-line
    error for a directory, device, FIFO or a link out of the folder."""
    root = folder.resolve()
    try:
        real = file.resolve(strict=True)
        mode = os.stat(real).st_mode
    except (OSError, RuntimeError) as exc:
        raise AuditInputError(MODEL_FILE_BAD.format(
            path=file, problem=f"cannot be read ({exc.__class__.__name__})")) from None
    allowed = [root]
    if root.parent.name == "snapshots":  # the Hugging Face cache: models--x/snapshots/<rev> -> ../../blobs
        allowed.append(root.parent.parent / "blobs")
    if not any(real == a or a in real.parents for a in allowed):
        raise AuditInputError(MODEL_FILE_BAD.format(
            path=file, problem=f"is a link out of the model folder (to {real})"))
    if not stat.S_ISREG(mode):
        raise AuditInputError(MODEL_FILE_BAD.format(path=file, problem="is not a regular file"))
    return file


def _fingerprint(path: Path | None, model: Any) -> str:
    """sha256 over the config, tokenizer and weight files (local folder), read in chunks, else
    over the state dict's tensors."""
    h = hashlib.sha256()
    if path is not None:
        for f in _model_files(path):
            h.update(f.name.encode())
            h.update(b"\x00")
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            h.update(b"\x00")
        return h.hexdigest()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
