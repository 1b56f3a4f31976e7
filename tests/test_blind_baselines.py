"""Blind membership baselines: they see a difference between members and non-members when there
is one, stay at chance when there is none (duplicates included), are seeded, and matching leaves
nothing for them to see. No model is involved: every check runs on synthetic rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from audit.auditors.privacy._blind_baselines import (
    BLIND_ATTACKS,
    BlindFeatures,
    _folds,
    blind_features,
    blind_scores,
    length_bins,
    match_rows,
)

WORDS = ("river", "lamp", "quiet", "green", "table", "ran", "window", "soft", "bright", "train", "old", "stone",
         "garden", "sings", "paper", "cold", "ship", "early", "blue", "moves")


def _sentences(rng: np.random.Generator, n: int, lengths: tuple[int, int]) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(*lengths)))) for _ in range(n)]


def _features(texts: list[str], labels: np.ndarray | None = None) -> BlindFeatures:
    words = np.array([len(t.split()) for t in texts])
    return BlindFeatures(texts=texts, tokens=words, words=words, labels=labels)


def test_short_members_against_long_nonmembers_are_told_apart_without_a_model() -> None:
    rng = np.random.default_rng(0)
    texts = _sentences(rng, 150, (3, 8)) + _sentences(rng, 150, (9, 16))
    y = np.r_[np.ones(150, dtype=int), np.zeros(150, dtype=int)]
    scores = blind_scores(_features(texts, rng.integers(0, 2, 300)), y, seed=0)
    assert list(scores) == list(BLIND_ATTACKS)
    assert roc_auc_score(y, scores["length_tokens"]) > 0.95
    assert roc_auc_score(y, scores["length_words"]) > 0.95
    assert roc_auc_score(y, scores["ngrams"]) > 0.8
    assert abs(roc_auc_score(y, scores["label"]) - 0.5) < 0.1  # the labels are coin flips


def test_a_non_monotone_length_difference_is_caught() -> None:
    """Members mid-length, non-members at both extremes: no single threshold separates them,
    the cross-fitted likelihood ratio over length bins does."""
    rng = np.random.default_rng(1)
    texts = _sentences(rng, 200, (8, 11)) + _sentences(rng, 100, (2, 5)) + _sentences(rng, 100, (14, 18))
    y = np.r_[np.ones(200, dtype=int), np.zeros(200, dtype=int)]
    lengths = np.array([len(t.split()) for t in texts])
    assert abs(roc_auc_score(y, lengths) - 0.5) < 0.05
    assert roc_auc_score(y, blind_scores(_features(texts), y, seed=0)["length_words"]) > 0.95


def test_two_samples_of_one_distribution_stay_near_chance() -> None:
    rng = np.random.default_rng(2)
    texts = _sentences(rng, 600, (3, 16))
    y = rng.permutation(np.r_[np.ones(300, dtype=int), np.zeros(300, dtype=int)])
    scores = blind_scores(_features(texts, rng.integers(0, 3, 600)), y, seed=0)
    for name, s in scores.items():
        assert abs(roc_auc_score(y, s) - 0.5) < 0.07, name


def test_duplicated_texts_do_not_let_a_baseline_recognise_its_set() -> None:
    """Each text occurs twice, both copies on the same side (as after the auditor drops texts
    found on both sides). Folds keep the copies together; otherwise the n-gram classifier would
    score a row by having seen its twin, far above chance."""
    rng = np.random.default_rng(3)
    distinct = _sentences(rng, 200, (6, 12))
    side = rng.permutation(np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)])
    texts = distinct + distinct
    y = np.r_[side, side]
    auc = roc_auc_score(y, blind_scores(_features(texts), y, seed=0)["ngrams"])
    assert abs(auc - 0.5) < 0.1, auc
    for train, test in _folds(y, texts, seed=0):
        assert not {texts[i] for i in train} & {texts[i] for i in test}


def test_folds_are_stratified_disjoint_and_seeded() -> None:
    rng = np.random.default_rng(4)
    texts = _sentences(rng, 120, (4, 12))
    y = np.r_[np.ones(60, dtype=int), np.zeros(60, dtype=int)]
    folds = _folds(y, texts, seed=5)
    assert len(folds) == 5
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests) == list(range(120))  # every row scored exactly once
    for train, test in folds:
        assert set(y[train]) == {0, 1} and set(y[test]) == {0, 1}
        assert not set(train) & set(test)
    again = _folds(y, texts, seed=5)
    other = _folds(y, texts, seed=6)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))
    s1 = blind_scores(_features(texts), y, seed=5)
    s2 = blind_scores(_features(texts), y, seed=5)
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)


def test_without_labels_the_label_baseline_is_left_out() -> None:
    rng = np.random.default_rng(5)
    texts = _sentences(rng, 80, (4, 12))
    y = np.r_[np.ones(40, dtype=int), np.zeros(40, dtype=int)]
    assert "label" not in blind_scores(_features(texts), y, seed=0)


def test_matching_equalises_every_cell_so_the_matched_features_say_nothing() -> None:
    rng = np.random.default_rng(6)
    texts = _sentences(rng, 300, (3, 10)) + _sentences(rng, 300, (6, 16))
    labels = np.r_[rng.integers(0, 2, 300), (rng.random(300) < 0.7).astype(int)]
    y = np.r_[np.ones(300, dtype=int), np.zeros(300, dtype=int)]
    features = _features(texts, labels)
    bins = length_bins(features.tokens)
    assert roc_auc_score(y, bins) < 0.3  # before matching, length bins tell the sets apart
    match = match_rows(features, y, rng=np.random.default_rng(0))
    kept = match.kept
    cell = bins * 2 + labels
    for c in np.unique(cell):
        in_cell = kept[cell[kept] == c]
        assert (y[in_cell] == 1).sum() == (y[in_cell] == 0).sum()
        # The matched count of a cell is all its rows on the smaller side.
        assert (y[in_cell] == 1).sum() == min(((cell == c) & (y == 1)).sum(), ((cell == c) & (y == 0)).sum())
    assert roc_auc_score(y[kept], cell[kept]) == pytest.approx(0.5, abs=1e-12)
    assert 0 < len(kept) < 600 and match.cells <= len(np.unique(cell))
    assert np.array_equal(kept, match_rows(features, y, rng=np.random.default_rng(0)).kept)
    assert not np.array_equal(kept, match_rows(features, y, rng=np.random.default_rng(1)).kept)


def test_length_bins_follow_pooled_quantiles() -> None:
    values = np.arange(100)
    bins = length_bins(values, 10)
    assert list(np.bincount(bins)) == [10] * 10
    assert len(np.unique(length_bins(np.full(50, 7), 10))) == 1  # ties share one bin


def test_features_count_tokens_without_special_tokens() -> None:
    from audit.selftest.demo import build_tokenizer

    tokenizer = build_tokenizer(["the man said the food was great", "a lamp ok fine then"])
    texts = ["the man said the food was great", "a lamp", "a lampshade"]
    f = blind_features(texts=texts, pairs=None, labels=np.array([1, 0, 1]), tokenizer=tokenizer)
    # One token a known word; "lampshade" is split into word pieces; no [CLS]/[SEP] counted.
    assert list(f.tokens) == [7, 2, 1 + len(tokenizer.tokenize("lampshade"))] and list(f.words) == [7, 2, 2]
    assert len(tokenizer.tokenize("lampshade")) > 1
    pair = blind_features(texts=texts[:2], pairs=["ok", "fine then"], labels=None, tokenizer=tokenizer)
    assert list(pair.tokens) == [8, 4] and list(pair.words) == [8, 4]
    assert pair.texts[0] == "the man said the food was great\nok" and pair.labels is None


def _auc(y, s):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, s)


def test_a_casing_shift_is_seen_without_the_model():
    """A cased model separates Title Case from lower case; so must a blind baseline."""
    from audit.auditors.privacy._blind_baselines import blind_scores

    rng = np.random.default_rng(0)
    words = ["the", "film", "was", "good", "bad", "really", "quite", "plot", "actor", "slow", "fun", "dull"]
    texts = [" ".join(rng.choice(words, size=6)) for _ in range(400)]
    members, nonmembers = texts[:200], [t.title() for t in texts[200:]]
    y = np.array([1] * 200 + [0] * 200)
    feats = _features(members + nonmembers, labels=None)
    scores = blind_scores(feats, y, seed=0)
    assert _auc(y, scores["ngrams"]) > 0.95


def test_labels_that_disagree_with_their_texts_are_seen_without_the_model():
    """Another annotation source (a third of the non-members' labels flipped): neither the text
    nor the label alone tells the sets apart, the two together do."""
    from audit.auditors.privacy._blind_baselines import blind_scores

    rng = np.random.default_rng(1)
    pos, neg = ["great", "lovely", "superb", "fine"], ["awful", "dull", "poor", "bad"]
    filler = ["the", "film", "was", "plot", "and", "very", "a", "story"]
    texts, labels = [], []
    for _ in range(600):
        label = int(rng.integers(2))
        texts.append(" ".join([*rng.choice(filler, 4), rng.choice(pos if label else neg)]))
        labels.append(label)
    labels = np.array(labels)
    flip = np.zeros(600, dtype=bool)
    flip[300:] = rng.random(300) < 0.33
    noisy = np.where(flip, 1 - labels, labels)
    y = np.array([1] * 300 + [0] * 300)
    scores = blind_scores(_features(texts, labels=noisy), y, seed=0)
    assert abs(_auc(y, scores["ngrams"]) - 0.5) < 0.08 and abs(_auc(y, scores["label"]) - 0.5) < 0.08
    assert _auc(y, scores["ngrams_x_label"]) > 0.6


def test_texts_without_word_characters_leave_the_ngram_baselines_at_chance_instead_of_failing() -> None:
    """Punctuation- or emoji-only texts have no word n-gram (scikit-learn: "empty vocabulary"):
    the character n-grams still count, and with no n-gram at all the n-gram baselines are zeros."""
    from audit.auditors.privacy._blind_baselines import ngram_features

    y = np.r_[np.ones(20, dtype=int), np.zeros(20, dtype=int)]
    marks = ["!!", "?!", "...", "!?!", "\U0001f600\U0001f600", "--", "!!!", "??"] * 5
    grams = ngram_features(marks)
    assert grams is not None and grams.shape[0] == 40  # character n-grams only
    scores = blind_scores(_features(marks, np.arange(40) % 2), y, seed=0)
    assert set(scores) == set(BLIND_ATTACKS) and all(np.isfinite(s).all() for s in scores.values())
    singles = ["", " ", "\t", "  "] * 10  # not one character n-gram either
    assert ngram_features(singles) is None
    none = blind_scores(_features(singles, np.arange(40) % 2), y, seed=0)
    assert not none["ngrams"].any() and not none["ngrams_x_label"].any()

