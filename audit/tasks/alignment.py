"""Word-level predictions of a token classifier: sub-words to words, long sentences in windows.

A token classifier scores sub-words; NER is judged on the words of the data. Each sentence (a
list of words) is tokenised with ``is_split_into_words=True`` and the fast tokenizer's
``word_ids()`` says which sub-words belong to which word. A word's probabilities come from its
first sub-word by default (the Hugging Face training scripts label only the first sub-word, so
that is the one the model learnt to tag), or from all of them on request.

The three rules are those of ``transformers``' token-classification pipeline
(``TokenClassificationPipeline.aggregate_word``): ``first`` takes the first sub-word's
distribution; ``average`` the mean of the sub-words' probability vectors; ``max`` the whole
distribution of the sub-word whose top probability is highest (earliest on a tie, as Python's
``max`` there). What differs is what a word is: the pipeline re-groups sub-words by a heuristic
(a token whose text is longer than its span, "##", continues a word; an [UNK] always starts
one), so a word of the data that the tokenizer's pre-tokeniser splits ("don't" into don, ', t)
is three words to the pipeline and one here, as the data has it. ``bench/inference.py``
checks both agree wherever the two notions of a word coincide.

Sentences longer than the model's maximum length are never truncated: they are cut into windows
of whole words that overlap by ``stride`` sub-words, and each word takes its prediction from the
window where it has most context on its worse side (BERT's "maximum context" rule for SQuAD's
document spans, Devlin et al. 2019, ``_check_is_max_context`` in google-research/bert); an edge
of a window that is the sentence's own start or end costs no context. (The pipeline's ``stride``
windows count sub-words and may cut a word in two; these hold whole words.)

Words that produce no sub-word at all (an empty string, a lone control or zero-width character
that the normaliser deletes) are replaced by the tokenizer's unknown token before the pass, so
they keep their place and are predicted from their context like any unknown word; they are
counted. If the tokenizer cannot encode even that (it has no unknown token), such a word gets the
uniform distribution: no information. (The pipeline and the training scripts drop such a word:
it gets no token, no label and no prediction, and its neighbours see the sentence without it.)

All rows (whole sentences and windows alike) go through the engine's one batched pass
(:func:`audit.engine.inference.predict_token_logits`: token budget, length-sorted, OOM backoff).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.engine.inference import Encoded, ForwardBatches, PassStats, predict_token_logits
from audit.errors import OPTION_INVALID, AuditInputError

AGGREGATIONS = ("first", "average", "max")
# Default overlap between windows: a quarter of a window's sub-word budget. Each window then moves
# on by three quarters of its length (the pass costs at most 4/3 of a truncating one), and a word
# taken from an overlap keeps about stride/2 sub-words of context on its cut side: 63 for a
# 512-token BERT, the same order as the doc_stride of 128 in BERT's SQuAD set-up.
STRIDE_DIVISOR = 4

AGGREGATION_UNKNOWN = "aggregation must be one of {allowed}, got {value!r}"
STRIDE_BAD = ("stride must be a whole number from 0 to {top} (sub-words shared by two windows of {budget}), "
              "got {value!r}")
MAX_LENGTH_BAD = "max_length {value} leaves no room for a word after the tokenizer's {special} special tokens"


@dataclass(frozen=True, kw_only=True)
class WordPredictions:
    """Per-sentence word probabilities and what the pass had to do to get them.

    ``probs[i]`` is ``len(sentences[i]) x n_tags`` (float64, rows sum to 1, tags in the model's
    ``id2label`` order). Per sentence: ``windowed`` (longer than the model's maximum length, so
    predicted in overlapping windows), ``empty_words`` (words that gave no sub-word, predicted as
    the unknown token), ``cut_words`` (single words longer than a whole window, predicted from the
    sub-words that fit). ``stats``: the engine's counters for the forward work of this pass.
    """

    probs: list[np.ndarray]
    windowed: np.ndarray
    empty_words: np.ndarray
    cut_words: np.ndarray
    stats: PassStats = field(default_factory=PassStats)

    @property
    def n_windowed(self) -> int:
        """Sentences that needed windows."""
        return int(self.windowed.sum())

    @property
    def n_empty_words(self) -> int:
        """Words that produced no sub-word."""
        return int(self.empty_words.sum())

    @property
    def n_cut_words(self) -> int:
        """Words longer than a whole window."""
        return int(self.cut_words.sum())

    @property
    def preds(self) -> list[np.ndarray]:
        """The predicted tag id of each word, per sentence."""
        return [p.argmax(axis=1) if len(p) else np.zeros(0, dtype=np.int64) for p in self.probs]

    def __len__(self) -> int:
        return len(self.probs)


@dataclass(frozen=True, kw_only=True)
class _Row:
    """One model input: words ``start:end`` of sentence ``sentence``."""

    sentence: int
    start: int
    end: int


def predict_words(
    *,
    model: Any,
    tokenizer: Any,
    sentences: Sequence[Sequence[str]],
    max_length: int,
    stride: int | None = None,
    aggregation: str = "first",
    max_tokens: int = 8192,
    max_batch: int = 64,
    device: str = "cpu",
    dtype: str = "float32",
    num_threads: int | None = None,
    progress: bool = False,
    desc: str = "predict words",
    forward: ForwardBatches | None = None,
) -> WordPredictions:
    """Tag probabilities for every word of every sentence (see the module docstring for how
    sub-words, long sentences and empty words are handled). ``tokenizer`` must be fast.
    ``forward`` replaces the batch loop (the Ray engine's, :mod:`audit.engine.ray_engine`)."""
    if aggregation not in AGGREGATIONS:
        problem = AGGREGATION_UNKNOWN.format(allowed=", ".join(AGGREGATIONS), value=aggregation)
        raise AuditInputError(OPTION_INVALID.format(option="aggregation", problem=problem))
    special = tokenizer.num_special_tokens_to_add(pair=False)
    budget = max_length - special
    if budget < 1:
        raise AuditInputError(OPTION_INVALID.format(
            option="max_length", problem=MAX_LENGTH_BAD.format(value=max_length, special=special)))
    if stride is None:
        stride = budget // STRIDE_DIVISOR
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or not 0 <= stride < budget:
        raise AuditInputError(OPTION_INVALID.format(
            option="stride", problem=STRIDE_BAD.format(top=budget - 1, budget=budget, value=stride)))
    num_tags = int(model.config.num_labels)
    stats = PassStats()
    words = [list(s) for s in sentences]
    probs = [np.zeros((len(s), num_tags)) for s in words]
    windowed = np.zeros(len(words), dtype=bool)
    cut = np.zeros(len(words), dtype=np.int64)
    todo = [i for i, s in enumerate(words) if s]
    if not todo:
        return WordPredictions(probs=probs, windowed=windowed, empty_words=cut.copy(), cut_words=cut, stats=stats)

    counts, encoded, empty = _encode_sentences(tokenizer, words, todo)
    rows: list[_Row] = []
    row_ids: list[list[int]] = []
    row_tt: list[list[int] | None] = []
    row_word_ids: list[list[int | None]] = []
    window_rows: list[_Row] = []
    for i in todo:
        if counts[i].sum() <= budget:  # the whole sentence fits: use the encoding we already have
            rows.append(_Row(sentence=i, start=0, end=len(words[i])))
            ids, tt, word_ids = encoded[i]
            row_ids.append(ids)
            row_tt.append(tt)
            row_word_ids.append(word_ids)
        else:
            windowed[i] = True
            cut[i] = int((counts[i] > budget).sum())
            window_rows += [_Row(sentence=i, start=a, end=b) for a, b in _windows(counts[i], budget=budget,
                                                                                   stride=stride)]
    if window_rows:  # windows are tokenised from their words: sub-words do not depend on the neighbours
        for ids, tt, word_ids in _encode(tokenizer, [words[r.sentence][r.start:r.end] for r in window_rows],
                                         max_length=max_length):
            row_ids.append(ids)
            row_tt.append(tt)
            row_word_ids.append(word_ids)
        rows += window_rows

    rows_enc = Encoded(input_ids=row_ids, token_type_ids=row_tt if row_tt[0] is not None else None,
                       truncated=np.zeros(len(rows), dtype=bool))
    logits = predict_token_logits(model, tokenizer, rows_enc, max_tokens=max_tokens, max_batch=max_batch,
                                  device=device, dtype=dtype, progress=progress, desc=desc, stats=stats,
                                  num_threads=num_threads, forward=forward)

    # Each word's best window so far, scored by the context on its worse side (sub-words).
    best = [np.full(len(s), -1.0) for s in words]
    for row, row_logits, word_ids in zip(rows, logits, row_word_ids, strict=True):
        word_probs = _aggregate(row_logits, word_ids, n_words=row.end - row.start, aggregation=aggregation)
        score = _context(counts[row.sentence], row.start, row.end, n_words=len(words[row.sentence]))
        target, best_score = probs[row.sentence][row.start:row.end], best[row.sentence][row.start:row.end]
        better = score > best_score
        target[better] = word_probs[better]
        best_score[better] = score[better]
    return WordPredictions(probs=probs, windowed=windowed, empty_words=empty, cut_words=cut, stats=stats)


_Encoding = tuple[list[int], list[int] | None, list[int | None]]  # input ids, token type ids, word ids


def _encode(tokenizer: Any, sentences: list[list[str]], *, max_length: int | None = None) -> list[_Encoding]:
    """Pre-split words to sub-word ids, one call for the batch; truncated only at ``max_length``."""
    enc = tokenizer(sentences, is_split_into_words=True, truncation=max_length is not None, max_length=max_length,
                    padding=False, verbose=False)
    tt = enc.get("token_type_ids")
    return [(enc["input_ids"][k], tt[k] if tt is not None else None, enc.word_ids(k)) for k in range(len(sentences))]


def _encode_sentences(tokenizer: Any, words: list[list[str]],
                      todo: list[int]) -> tuple[dict[int, np.ndarray], dict[int, _Encoding], np.ndarray]:
    """Sub-words per word of each sentence in ``todo`` and its whole encoding (never truncated).

    Words with no sub-word are replaced in ``words`` by the unknown token and their sentences
    encoded again; how many there were in each sentence is returned."""
    def count(encoding: _Encoding, n: int) -> np.ndarray:
        ids = [w for w in encoding[2] if w is not None]
        return np.bincount(np.asarray(ids, dtype=np.int64), minlength=n)

    encoded = dict(zip(todo, _encode(tokenizer, [words[i] for i in todo]), strict=True))
    counts = {i: count(encoded[i], len(words[i])) for i in todo}
    n_empty = np.zeros(len(words), dtype=np.int64)
    empty = [i for i in todo if (counts[i] == 0).any()]
    for i in empty:
        n_empty[i] = int((counts[i] == 0).sum())
    if empty and tokenizer.unk_token is not None:
        for i in empty:
            for k in np.flatnonzero(counts[i] == 0):
                words[i][k] = tokenizer.unk_token
        for i, encoding in zip(empty, _encode(tokenizer, [words[i] for i in empty]), strict=True):
            encoded[i] = encoding
            counts[i] = count(encoding, len(words[i]))
    return counts, encoded, n_empty


def _windows(counts: np.ndarray, *, budget: int, stride: int) -> list[tuple[int, int]]:
    """Word ranges ``[start, end)`` covering all words, each within ``budget`` sub-words (a single
    longer word alone), consecutive ones sharing at most ``stride`` sub-words of whole words."""
    n = len(counts)
    cum = np.concatenate([[0], np.cumsum(counts)])
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = int(np.searchsorted(cum, cum[start] + budget, side="right")) - 1
        end = min(max(end, start + 1), n)
        out.append((start, end))
        if end >= n:
            return out
        overlap_fits = int(np.searchsorted(cum, cum[end] - stride, side="left"))  # shared sub-words <= stride
        next_fits = int(np.searchsorted(cum, cum[end + 1] - budget, side="left"))  # and word `end` still fits
        start = min(max(overlap_fits, next_fits, start + 1), end)


def _context(counts: np.ndarray, start: int, end: int, *, n_words: int) -> np.ndarray:
    """For each word of window ``[start, end)``: the sub-words the window holds on its worse side
    (infinite on a side where the window ends with the sentence itself)."""
    cum = np.concatenate([[0], np.cumsum(counts[start:end])]).astype(float)
    left = cum[:-1] if start > 0 else np.full(end - start, np.inf)
    right = cum[-1] - cum[1:] if end < n_words else np.full(end - start, np.inf)
    return np.minimum(left, right)


def _aggregate(logits: np.ndarray, word_ids: list[int | None], *, n_words: int, aggregation: str) -> np.ndarray:
    """Word probabilities (``n_words x n_tags``) from one row's per-token logits."""
    wid = np.fromiter((-1 if w is None else w for w in word_ids), dtype=np.int64, count=len(word_ids))
    real = np.flatnonzero(wid >= 0)
    wid = wid[real]
    out = np.full((n_words, logits.shape[1]), 1.0 / logits.shape[1])  # uniform for a word with no sub-word
    if not len(real):
        return out
    words, first = np.unique(wid, return_index=True)
    if aggregation == "first":
        out[words] = _softmax(logits[real[first]])
        return out
    p = _softmax(logits[real])
    if aggregation == "average":
        sums = np.zeros((n_words, p.shape[1]))
        np.add.at(sums, wid, p)
        out[words] = sums[words] / np.bincount(wid, minlength=n_words)[words, None]
        return out
    # max: the sub-word with the highest top probability; ties go to the earliest sub-word.
    order = np.lexsort((np.arange(len(wid)), -p.max(axis=1), wid))
    firsts = order[np.r_[True, wid[order][1:] != wid[order][:-1]]]
    out[wid[firsts]] = p[firsts]
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
