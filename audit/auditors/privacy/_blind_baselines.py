"""Blind membership baselines: attacks that never query the model, and matching on what they see.

An attack on the model is evidence of memorisation only if members and non-members cannot be told
apart without the model. When they come from different distributions (training rows shorter, or
from another source, period or style than the rows used as non-members), any attack separates them
by that difference: a model-free rule reaches a higher AUC than published attacks on the same sets
(Das, Zhang & Tramèr 2024, "Blind Baselines Beat Membership Inference Attacks for Foundation
Models"; Duan et al. 2024, "Do Membership Inference Attacks Work on Large Language Models?"; Meeus
et al. 2024, "SoK: Membership Inference Attacks on LLMs are Rushing Nowhere (and How to Fix It)").

The baselines see only the text and its label:

* ``length_tokens`` / ``length_words``: the length in tokens (the audited model's tokenizer, no
  forward pass) or in whitespace-separated words, in quantile bins;
* ``label``: the row's label;
* ``ngrams``: logistic regression on TF-IDF character n-grams and word uni- and bigrams (the
  TF-IDF fitted on all rows without their membership labels, the classifier cross-fitted).

Every baseline is cross-fitted (seeded stratified folds, identical texts in one fold): a
row's score comes from a rule fitted on the other folds, so no baseline scores well by remembering
the rows it is scored on, or their duplicates. The
discrete ones score a value by its smoothed log-likelihood ratio, member against non-member, in the
training folds, so a non-monotone difference (members mid-length) is caught as well as a shift.

:func:`match_rows` builds the matched comparison: members and non-members subsampled, cell by cell
over length bins x label, to equal counts, so the attacks can be re-scored on sets the blind
features cannot tell apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BLIND_ATTACKS = ("length_tokens", "length_words", "label", "ngrams", "ngrams_x_label")
BLIND_LABELS = {
    "length_tokens": "length in tokens",
    "length_words": "length in words",
    "label": "label",
    "ngrams": "character and word n-grams (logistic regression)",
    # Text and label together: a set whose labels disagree with its texts more often (another
    # annotation source, label noise) is told apart here, where neither alone sees it.
    "ngrams_x_label": "n-grams within each label (logistic regression on text and label together)",
}
N_FOLDS = 5
LENGTH_BINS = 10  # quantile bins of a length; the matched comparison uses the same bins
NGRAM_RANGE_CHAR = (2, 4)
NGRAM_RANGE_WORD = (1, 2)
NGRAM_C = 1.0  # scikit-learn's default regularisation
NGRAM_MAX_ITER = 2000


@dataclass(frozen=True, kw_only=True)
class BlindFeatures:
    """What a blind attacker sees of each row: its text, lengths and label."""

    texts: list[str]
    tokens: np.ndarray
    words: np.ndarray
    labels: np.ndarray | None

    def subset(self, idx: np.ndarray) -> BlindFeatures:
        """The same features for the rows ``idx`` only."""
        return BlindFeatures(texts=[self.texts[i] for i in idx], tokens=self.tokens[idx], words=self.words[idx],
                             labels=None if self.labels is None else self.labels[idx])


@dataclass(frozen=True, kw_only=True)
class Matching:
    """Row indices (into the attack sample) kept by :func:`match_rows`, and how they were chosen."""

    kept: np.ndarray
    cells: int  # cells (length bin x label) holding both members and non-members
    bins: int  # distinct length bins


def blind_features(*, texts: Sequence[str], pairs: Sequence[str] | None, labels: np.ndarray | None,
                   tokenizer: object) -> BlindFeatures:
    """Lengths and label of each row. A pair's two texts count together and are joined for the
    n-grams. Tokens are counted without special tokens and without truncation."""
    joined = list(texts) if pairs is None else [f"{t}\n{p}" for t, p in zip(texts, pairs, strict=True)]
    if pairs is None:
        enc = tokenizer(list(texts), add_special_tokens=False, truncation=False)  # type: ignore[operator]
    else:
        enc = tokenizer(list(texts), list(pairs), add_special_tokens=False, truncation=False)  # type: ignore[operator]
    tokens = np.array([len(ids) for ids in enc["input_ids"]], dtype=int)
    words = np.array([len(t.split()) for t in joined], dtype=int)
    return BlindFeatures(texts=joined, tokens=tokens, words=words,
                         labels=None if labels is None else np.asarray(labels, dtype=int))


def length_bins(values: np.ndarray, n_bins: int = LENGTH_BINS) -> np.ndarray:
    """Bin ids 0..k-1 from quantiles of ``values`` (ties share a bin, so k may be below n_bins).
    The edges come from all rows together, members and non-members, so they use no labels."""
    v = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, v, side="right")


def _folds(y: np.ndarray, texts: Sequence[str], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified (train, test) folds that keep identical texts together. A text repeated
    within one set (rows found in both sets are dropped before this) would otherwise be scored by
    a rule that saw its twin, and "recognise" its set: a blind baseline above chance on two
    samples of one distribution. Distinct texts are shuffled and dealt to the folds in turn, class
    by class (a text's class: the majority of its rows), which is what scikit-learn's
    ``StratifiedGroupKFold`` approximates at a cost that grows with texts x folds."""
    groups = np.unique(np.asarray([" ".join(t.lower().split()) for t in texts], dtype=object),
                       return_inverse=True)[1].ravel()
    n_groups = int(groups.max()) + 1
    group_class = (np.bincount(groups, weights=y, minlength=n_groups) * 2 >= np.bincount(groups, minlength=n_groups))
    k = int(min(N_FOLDS, group_class.sum(), (~group_class).sum()))
    if k < 2:
        return []
    order = np.random.default_rng(seed).permutation(n_groups)
    fold_of_group = np.empty(n_groups, dtype=int)
    for c in (False, True):
        dealt = order[group_class[order] == c]
        fold_of_group[dealt] = np.arange(len(dealt)) % k
    fold = fold_of_group[groups]
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]


def _crossfit_discrete(values: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each row scored by ``log P(value | member) - log P(value | non-member)`` estimated on the
    other folds, add-one smoothed over the values seen anywhere."""
    codes = np.unique(values, return_inverse=True)[1].ravel()
    k = int(codes.max()) + 1
    out = np.empty(len(y), dtype=np.float64)
    for train, test in folds:
        mem = np.bincount(codes[train][y[train] == 1], minlength=k) + 1.0
        non = np.bincount(codes[train][y[train] == 0], minlength=k) + 1.0
        ratio = np.log(mem / mem.sum()) - np.log(non / non.sum())
        out[test] = ratio[codes[test]]
    return out


def ngram_features(texts: Sequence[str]) -> object:
    """TF-IDF character n-grams and word uni- and bigrams of ``texts`` (a sparse matrix; a part
    without any n-gram is left out, and None when neither has one), case
    kept (a cased model sees case, so a set written in another case must be visible here). Fitted
    on all rows at once: vocabulary and IDF use no membership label, so this is no leak, and it
    saves refitting per fold; the classifier on top is what is cross-fitted."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    blocks = []
    for vectorizer in (
        TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAM_RANGE_CHAR, sublinear_tf=True, lowercase=False),
        TfidfVectorizer(analyzer="word", ngram_range=NGRAM_RANGE_WORD, sublinear_tf=True, lowercase=False,
                        token_pattern=r"(?u)\b\w+\b"),
    ):
        try:
            blocks.append(vectorizer.fit_transform(list(texts)))
        except ValueError:  # "empty vocabulary": no word characters (punctuation or emoji only), or no text
            continue
    return sparse.hstack(blocks).tocsr() if blocks else None


def _within_labels(grams: object, labels: np.ndarray) -> object:
    """The n-gram features, plus one copy per class holding them only on rows of that class, plus
    the class itself: a linear model on these can weigh a word differently under each label."""
    from scipy import sparse

    labels = np.asarray(labels)
    blocks = [grams]
    for c in np.unique(labels):
        blocks.append(sparse.csr_matrix(grams).multiply((labels == c).astype(float)[:, None]))
    blocks.append(sparse.csr_matrix((labels[:, None] == np.unique(labels)[None, :]).astype(float)))
    return sparse.hstack(blocks).tocsr()


def ngram_classifier() -> object:
    """The n-gram baseline's classifier: L2 logistic regression (scikit-learn's default C) with
    liblinear, solved in the dual: with tens of thousands of n-gram features for a few thousand
    rows the dual has far fewer variables. Same objective, so the same model to the solver's
    tolerance: on SST-2 dev against 872 train rows (38,879 features, 5 folds) the cross-fitted
    scores moved by at most 1.3e-4 and the AUC by 5e-6, at 16x less CPU time than the primal (3.66 s
    -> 0.22 s; the primal was itself 3x faster than lbfgs). Its only randomness (coordinate order)
    is fixed."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=NGRAM_C, solver="liblinear", dual=True, max_iter=NGRAM_MAX_ITER, random_state=0)


def blind_scores(features: BlindFeatures, y: np.ndarray, *, seed: int) -> dict[str, np.ndarray]:
    """Cross-fitted score of each blind attack (higher = more likely a member). Without labels
    the ``label`` baseline is left out."""
    from sklearn.model_selection import cross_val_predict

    y = np.asarray(y, dtype=int)
    folds = _folds(y, features.texts, seed)
    if len(folds) < 2:  # fewer than two distinct texts on one side: nothing to fit, chance
        names = [b for b in BLIND_ATTACKS if "label" not in b or features.labels is not None]
        return {name: np.zeros(len(y)) for name in names}
    scores = {
        "length_tokens": _crossfit_discrete(length_bins(features.tokens), y, folds),
        "length_words": _crossfit_discrete(length_bins(features.words), y, folds),
    }
    if features.labels is not None:
        scores["label"] = _crossfit_discrete(features.labels, y, folds)
    grams = ngram_features(features.texts)
    if grams is None:  # not one n-gram in any text: nothing for the n-gram baselines to read (chance)
        scores["ngrams"] = np.zeros(len(y))
        if features.labels is not None:
            scores["ngrams_x_label"] = np.zeros(len(y))
    else:
        scores["ngrams"] = cross_val_predict(ngram_classifier(), grams, y, cv=folds, method="decision_function")
        if features.labels is not None:
            scores["ngrams_x_label"] = cross_val_predict(ngram_classifier(), _within_labels(grams, features.labels),
                                                         y, cv=folds, method="decision_function")
    return {name: np.asarray(scores[name], dtype=np.float64) for name in BLIND_ATTACKS if name in scores}


def match_rows(features: BlindFeatures, y: np.ndarray, *, rng: np.random.Generator,
               n_bins: int = LENGTH_BINS) -> Matching:
    """Members and non-members matched on length in tokens (quantile bins) x label: in each cell
    the larger side is subsampled (seeded) to the smaller side's count; cells with only one side
    are dropped. Returns the kept row indices, sorted."""
    y = np.asarray(y, dtype=int)
    bins = length_bins(features.tokens, n_bins)
    cell = bins if features.labels is None else bins * (int(features.labels.max()) + 1) + features.labels
    kept, cells = [], 0
    for c in np.unique(cell):
        mem = np.flatnonzero((cell == c) & (y == 1))
        non = np.flatnonzero((cell == c) & (y == 0))
        k = min(len(mem), len(non))
        if k == 0:
            continue
        cells += 1
        kept += [rng.choice(mem, size=k, replace=False), rng.choice(non, size=k, replace=False)]
    idx = np.sort(np.concatenate(kept)) if kept else np.zeros(0, dtype=int)
    return Matching(kept=idx, cells=cells, bins=int(len(np.unique(bins))))
