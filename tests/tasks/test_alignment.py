"""Token classifiers are detected, loaded safely, and predicted word by word through the shared
engine: first sub-word by default, average/max on request, long sentences in overlapping windows,
empty words defined; every figure checked against a direct forward pass or the transformers
pipeline on the same inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.engine.target import TOKENIZER_NOT_FAST, Target, detect_task
from audit.errors import AuditInputError
from audit.tasks import SEQUENCE, TOKEN
from audit.tasks.alignment import _windows, predict_words
from tests._tiny import TAGS, save_tiny_model, save_tiny_token_model

MAX_LENGTH = 32  # the tiny models' position table
SENTENCES = [
    ["the", "food", "was", "great"],
    ["Zanzibar", "hotel", "staff", "ignored", "us", "quietly"],  # unseen words: several sub-words each
    ["a"],
    ["never", "again", "thank", "you", "Amadeus", "Mozart", "of", "Salzburg"],
    ["service", "was", "slow", "and", "rude", "at", "the", "riverside", "inn"],
]


@pytest.fixture(scope="module")
def token_dir(tmp_path_factory):
    return save_tiny_token_model(tmp_path_factory.mktemp("tok") / "m", seed=3)


@pytest.fixture(scope="module")
def target(token_dir):
    return Target.load(str(token_dir))


def _direct(target, words, **tokenizer_options):
    """Probabilities per token and the word ids of one sentence, from a plain forward pass."""
    import torch

    enc = target.tokenizer(list(words), is_split_into_words=True, return_tensors="pt", **tokenizer_options)
    with torch.inference_mode():
        logits = target.model(**enc).logits[0].double().numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return probs / probs.sum(1, keepdims=True), enc.word_ids(0)


def _first(probs, word_ids, n_words):
    rows = [word_ids.index(w) for w in range(n_words)]
    return probs[rows]


def _probs(target, sentences, **options):
    return predict_words(model=target.model, tokenizer=target.tokenizer, sentences=sentences, max_length=MAX_LENGTH,
                         **options)


# --- task detection and loading ------------------------------------------------------------------

def test_a_token_classifier_is_detected_and_loaded_as_one(token_dir, tmp_path):
    target = Target.load(str(token_dir))
    assert target.task == TOKEN
    assert type(target.model).__name__ == "BertForTokenClassification"
    assert target.label_names == TAGS
    # id2label written out of order in config.json still gives the tags in id order
    folder = tmp_path / "shuffled"
    shutil.copytree(token_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): TAGS[i] for i in reversed(range(len(TAGS)))}
    (folder / "config.json").write_text(json.dumps(config))
    assert Target.load(str(folder)).label_names == TAGS


def test_a_sequence_classifier_is_still_one(tmp_path):
    target = Target.load(str(save_tiny_model(tmp_path / "seq", num_labels=3)))
    assert target.task == SEQUENCE
    assert type(target.model).__name__ == "BertForSequenceClassification"


def test_without_architectures_a_tag_set_of_labels_means_token_classification():
    from transformers import BertConfig

    def config(labels, architectures=None):
        return BertConfig(architectures=architectures, id2label=dict(enumerate(labels)))

    assert detect_task(config(["neg", "pos"], ["BertForTokenClassification"])) == TOKEN  # the architecture wins
    assert detect_task(config(TAGS, ["RobertaForSequenceClassification"])) == SEQUENCE
    assert detect_task(config(TAGS)) == TOKEN
    assert detect_task(config(["O", "S-LOC", "E-LOC", "U-PER", "L-PER"], ["BertModel"])) == TOKEN
    assert detect_task(config(["neg", "pos"])) == SEQUENCE
    assert detect_task(config(["O", "PER", "LOC"])) == SEQUENCE  # plain IO types are not told apart: use task=
    assert detect_task(config(["B-PER", "I-PER"])) == SEQUENCE  # no O: not a tag set
    assert detect_task(config(["LABEL_0", "LABEL_1"], ["BertForMaskedLM"])) == SEQUENCE


def test_the_task_option_overrides_detection(tmp_path):
    folder = save_tiny_token_model(tmp_path / "bare", labels=["neg", "pos"], architectures=False)
    assert Target.load(str(folder)).task == SEQUENCE
    forced = Target.load(str(folder), task=TOKEN)
    assert forced.task == TOKEN and type(forced.model).__name__ == "BertForTokenClassification"
    with pytest.raises(AuditInputError, match="option task: must be one of"):
        Target.load(str(folder), task="ner")


def test_a_token_model_without_a_fast_tokenizer_is_refused(token_dir, tmp_path):
    """A slow-only tokenizer (BertJapaneseTokenizer has no fast version) cannot give word_ids()."""
    folder = tmp_path / "slow"
    shutil.copytree(token_dir, folder)
    fast = Target.load(str(token_dir)).tokenizer
    vocab = sorted(fast.get_vocab().items(), key=lambda kv: kv[1])
    (folder / "vocab.txt").write_text("".join(f"{w}\n" for w, _ in vocab))
    (folder / "tokenizer.json").unlink()
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertJapaneseTokenizer", "word_tokenizer_type": "basic",
        "subword_tokenizer_type": "wordpiece", "do_lower_case": True, "model_max_length": MAX_LENGTH}))
    with pytest.raises(AuditInputError) as info:
        Target.load(str(folder))
    message = str(info.value)
    assert message == TOKENIZER_NOT_FAST.format(path=folder, kind="BertJapaneseTokenizer")
    assert "\n" not in message and str(folder) in message and "word_ids()" in message
    # the same tokenizer is fine for a sequence classifier, which needs no word alignment
    assert Target.load(str(folder), task=SEQUENCE).task == SEQUENCE


def test_remote_code_is_refused_for_token_models_too(token_dir, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(token_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForTokenClassification": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    with pytest.raises(AuditInputError, match="pass --trust-remote-code only if you trust it"):
        Target.load(str(folder))
    assert not (tmp_path / "pwned").exists()


def test_byte_level_bpe_tokenizers_get_a_prefix_space_for_pre_split_words(tmp_path):
    """RoBERTa-style tokenizers refuse pre-split words unless add_prefix_space=True (as the
    Hugging Face NER script loads them); the target reloads the tokenizer that way."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer, RobertaConfig, RobertaForTokenClassification, RobertaTokenizerFast

    from tests._tiny import CORPUS

    folder = tmp_path / "roberta"
    folder.mkdir()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 3, vocab_size=300, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tok = RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                               model_max_length=MAX_LENGTH)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=MAX_LENGTH + 2, pad_token_id=1,
                           num_labels=len(TAGS), id2label=dict(enumerate(TAGS)))
    RobertaForTokenClassification(config).eval().save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).add_prefix_space is False

    target = Target.load(str(folder))
    assert target.task == TOKEN and target.tokenizer.add_prefix_space is True
    words = ["the", "food", "wasgreat"]
    got = target.predict_words([words]).probs[0]
    probs, word_ids = _direct(target, words)
    np.testing.assert_allclose(got, _first(probs, word_ids, len(words)), atol=1e-5)


# --- word-level predictions ----------------------------------------------------------------------

def test_first_subword_predictions_equal_a_direct_forward_pass(target):
    out = target.predict_words(SENTENCES)
    assert len(out) == len(SENTENCES) and out.n_windowed == 0 and out.n_empty_words == 0
    several = 0
    for words, got in zip(SENTENCES, out.probs, strict=True):
        probs, word_ids = _direct(target, words)
        assert got.shape == (len(words), len(TAGS))
        np.testing.assert_allclose(got, _first(probs, word_ids, len(words)), atol=1e-5)
        several += sum(word_ids.count(w) > 1 for w in range(len(words)))
        np.testing.assert_array_equal(out.preds[SENTENCES.index(words)], got.argmax(1))
    assert several >= 5  # the test exercises words of several sub-words


def test_average_and_max_aggregation_by_hand(target):
    words = ["Zanzibar", "hotel", "Mozart"]
    probs, word_ids = _direct(target, words)
    tokens = {w: [t for t, x in enumerate(word_ids) if x == w] for w in range(len(words))}
    assert all(len(tokens[w]) > 1 for w in (0, 2))
    average = _probs(target, [words], aggregation="average").probs[0]
    maximum = _probs(target, [words], aggregation="max").probs[0]
    for w, rows in tokens.items():
        np.testing.assert_allclose(average[w], probs[rows].mean(0), atol=1e-5)
        # HF's "max": the sub-word whose top probability is highest, with its whole distribution
        best = max(rows, key=lambda t: probs[t].max())
        np.testing.assert_allclose(maximum[w], probs[best], atol=1e-5)
    first = _probs(target, [words]).probs[0]
    assert np.abs(first - average).max() > 1e-4  # the three rules really differ on this sentence
    assert np.abs(maximum - average).max() > 1e-4


def _max_context_window(windows, counts, word):
    """The test's own statement of the assignment rule: the window where the word has most sub-words
    of context on its worse side, a sentence edge counting as unlimited; ties to the earlier window."""
    best, best_score = None, -1.0
    for start, end in windows:
        if not start <= word < end:
            continue
        left = sum(counts[start:word]) if start > 0 else np.inf
        right = sum(counts[word + 1:end]) if end < len(counts) else np.inf
        if min(left, right) > best_score:
            best, best_score = (start, end), min(left, right)
    return best


def test_a_long_sentence_is_predicted_in_overlapping_windows_not_truncated(target):
    vocab = ["the", "food", "was", "great", "a", "lovely", "quiet", "evening"]
    words = [vocab[i % len(vocab)] for i in range(3 * MAX_LENGTH)]  # one sub-word each, 96 words
    budget = MAX_LENGTH - 2  # [CLS] and [SEP]
    counts = np.ones(len(words), dtype=int)
    windows = _windows(counts, budget=budget, stride=budget // 4)
    # by hand: 30 words a window, the next one starting so that 7 sub-words are shared
    assert windows == [(0, 30), (23, 53), (46, 76), (69, 96)]
    out = target.predict_words([words, SENTENCES[0]])
    assert out.n_windowed == 1 and out.windowed.tolist() == [True, False]
    got = out.probs[0]
    assert got.shape == (len(words), len(TAGS))  # no word lost
    window_probs = {w: _first(*_direct(target, words[w[0]:w[1]]), w[1] - w[0]) for w in windows}
    differ = 0
    for i in range(len(words)):
        start, end = _max_context_window(windows, counts, i)
        np.testing.assert_allclose(got[i], window_probs[(start, end)][i - start], atol=1e-5)
        others = [w for w in windows if w[0] <= i < w[1] and w != (start, end)]
        differ += any(np.abs(window_probs[w][i - w[0]] - got[i]).max() > 1e-4 for w in others)
    assert differ > 0  # the context changes predictions, so the choice of window matters


def test_windows_of_multi_subword_words_fit_and_cover_every_word(target):
    words = (SENTENCES[1] + SENTENCES[3]) * 6  # many words of 2-8 sub-words
    out = target.predict_words([words], aggregation="average")
    counts = np.bincount([w for w in _direct_word_ids(target, words) if w is not None], minlength=len(words))
    budget = MAX_LENGTH - 2
    windows = _windows(counts, budget=budget, stride=5)
    assert windows[0][0] == 0 and windows[-1][1] == len(words)
    for (a, b), (c, d) in zip(windows, windows[1:], strict=False):
        assert a < c <= b < d  # overlapping, moving on
        assert counts[c:b].sum() <= 5  # shared sub-words within the stride
    for a, b in windows:
        encoded = target.tokenizer(words[a:b], is_split_into_words=True)["input_ids"]
        assert len(encoded) <= MAX_LENGTH
    assert out.n_windowed == 1 and out.probs[0].shape == (len(words), len(TAGS))
    np.testing.assert_allclose(out.probs[0].sum(1), 1.0, atol=1e-9)


def _direct_word_ids(target, words):
    return target.tokenizer(list(words), is_split_into_words=True).word_ids(0)


def test_batching_and_sorting_do_not_change_results(target):
    sentences = SENTENCES * 3 + [[f"{w}s" for w in s] for s in SENTENCES]
    batched = _probs(target, sentences, max_tokens=48, max_batch=4)
    assert batched.stats.batches > 4 and batched.n_windowed == 1  # a window travels with the whole sentences
    for aggregation in ("first", "max"):
        many = _probs(target, sentences, aggregation=aggregation, max_tokens=48, max_batch=4)
        for k, words in enumerate(sentences):
            alone = _probs(target, [words], aggregation=aggregation, max_batch=1).probs[0]
            np.testing.assert_allclose(many.probs[k], alone, atol=1e-5)


def test_words_without_subwords_are_predicted_as_the_unknown_token_and_counted(target):
    words = ["the", "", "food", "\u200b", "was", "\x00"]  # empty, zero-width space, control character
    assert len({w for w in _direct_word_ids(target, words) if w is not None}) == 3
    out = target.predict_words([words, ["great"]])
    assert out.n_empty_words == 3 and out.empty_words.tolist() == [3, 0]
    unk = target.tokenizer.unk_token
    probs, word_ids = _direct(target, [w if w.strip("\u200b\x00") else unk for w in words])
    np.testing.assert_allclose(out.probs[0], _first(probs, word_ids, len(words)), atol=1e-5)


def test_without_an_unknown_token_an_empty_word_gets_the_uniform_distribution(target):
    import copy

    tokenizer = copy.deepcopy(target.tokenizer)
    tokenizer.unk_token = None
    out = predict_words(model=target.model, tokenizer=tokenizer, sentences=[["the", "", "food"]],
                        max_length=MAX_LENGTH)
    assert out.n_empty_words == 1
    np.testing.assert_allclose(out.probs[0][1], np.full(len(TAGS), 1 / len(TAGS)))
    probs, word_ids = _direct(target, ["the", "food"])
    np.testing.assert_allclose(out.probs[0][[0, 2]], _first(probs, word_ids, 2), atol=1e-5)


def test_a_word_longer_than_a_window_is_cut_and_counted(target):
    giant = "x" * 40  # 40 sub-words: more than a 30-sub-word window
    words = ["the", "food", giant, "was", "great"]
    out = target.predict_words([words], aggregation="average")
    assert out.n_cut_words == 1 and out.n_windowed == 1 and out.probs[0].shape == (5, len(TAGS))
    assert _windows(np.array([1, 1, 40, 1, 1]), budget=MAX_LENGTH - 2, stride=7) == [(0, 2), (2, 3), (3, 5)]
    # the giant word's window holds its first 30 sub-words, all of them the word's
    probs, word_ids = _direct(target, [giant], truncation=True, max_length=MAX_LENGTH)
    assert word_ids[1:-1] == [0] * (MAX_LENGTH - 2)
    np.testing.assert_allclose(out.probs[0][2], probs[1:-1].mean(0), atol=1e-5)


def test_empty_sentences_and_empty_input(target):
    out = target.predict_words([[], ["the", "food"], []])
    assert [p.shape for p in out.probs] == [(0, 5), (2, 5), (0, 5)]
    assert [len(p) for p in out.preds] == [0, 2, 0]
    assert len(target.predict_words([])) == 0


def test_options_are_checked_with_one_line_naming_them(target):
    with pytest.raises(AuditInputError, match=r"option aggregation: aggregation must be one of first, average, max"):
        target.predict_words([["the"]], aggregation="mean")
    with pytest.raises(AuditInputError, match=r"option stride: stride must be a whole number from 0 to 29"):
        target.predict_words([["the"]], stride=30)
    with pytest.raises(AuditInputError, match="option stride"):
        target.predict_words([["the"]], stride=-1)
    with pytest.raises(AuditInputError, match="option max_length: max_length 2 leaves no room"):
        predict_words(model=target.model, tokenizer=target.tokenizer, sentences=[["a"]], max_length=2)


def test_each_task_has_its_own_pass(target, tmp_path):
    with pytest.raises(TypeError, match="predict_logits does not serve a token-classification model"):
        target.predict_logits(["the food"])
    sequence = Target.load(str(save_tiny_model(tmp_path / "seq", num_labels=2)))
    with pytest.raises(TypeError, match="predict_words does not serve a text-classification model"):
        sequence.predict_words([["the", "food"]])


def test_repeated_sentences_come_from_the_cache(token_dir):
    target = Target.load(str(token_dir))
    first = target.predict_words(SENTENCES[:3])
    rows = target.stats.rows
    again = target.predict_words(SENTENCES[:3] + [SENTENCES[0]])
    assert target.stats.rows == rows and target.cache_hits == 4 and again.stats.rows == 0
    np.testing.assert_array_equal(again.probs[3], first.probs[0])
    with pytest.raises(ValueError):
        again.probs[0][0, 0] = 1.0  # cached arrays are read-only, so no caller can change another's
    target.predict_words(SENTENCES[:1], aggregation="max")  # another rule is another entry
    assert target.stats.rows == rows + 1


def test_out_of_memory_halves_the_batch_for_token_models_too(target, monkeypatch):
    real = target.model.forward

    def flaky(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(target.model, "forward", flaky)
    out = _probs(target, SENTENCES, max_batch=8)
    monkeypatch.setattr(target.model, "forward", real)
    assert out.stats.oom_backoffs >= 1
    reference = _probs(target, SENTENCES, max_batch=1)
    for got, want in zip(out.probs, reference.probs, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


# --- against transformers.pipeline ---------------------------------------------------------------

def _entity_type(tag):
    return tag.split("-", 1)[-1]  # as the pipeline's get_tag: "B-PER" -> "PER", "O" -> "O"


def test_word_predictions_agree_with_the_token_classification_pipeline(target):
    """Per token (aggregation "none"): the pipeline's tag and score at each word's first sub-word are
    ours. Aggregated ("first", "average", "max", O kept): the entity group that covers each word's
    first character has our word's entity type."""
    from transformers import pipeline

    pipe = pipeline("token-classification", model=target.model, tokenizer=target.tokenizer, device=-1)
    sentences = SENTENCES + [["Salzburg", "was", "lovely"], ["Amadeus", "staff"]]
    tokens = pipe(sentences, is_split_into_words=True, aggregation_strategy="none", ignore_labels=[], batch_size=4)
    ours = target.predict_words(sentences)
    for words, entries, probs in zip(sentences, tokens, ours.probs, strict=True):
        word_ids = _direct_word_ids(target, words)
        by_index = {e["index"]: e for e in entries}
        for w in range(len(words)):
            entry = by_index[word_ids.index(w)]
            assert entry["entity"] == TAGS[int(probs[w].argmax())]
            assert entry["score"] == pytest.approx(probs[w].max(), abs=1e-5)
    for strategy in ("first", "average", "max"):
        groups = pipe(sentences, is_split_into_words=True, aggregation_strategy=strategy, ignore_labels=[])
        ours = target.predict_words(sentences, aggregation=strategy)
        for words, found, probs in zip(sentences, groups, ours.probs, strict=True):
            starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
            for w, start in enumerate(starts):
                group = next(g for g in found if g["start"] <= start < g["end"])
                assert group["entity_group"] == _entity_type(TAGS[int(probs[w].argmax())]), (strategy, words, w)


@settings(max_examples=300, deadline=None)
@given(counts=st.lists(st.integers(0, 40), min_size=1, max_size=80), budget=st.integers(1, 60),
       stride_share=st.floats(0, 0.99))
def test_windows_cover_every_word_within_budget_and_stride_whatever_the_lengths(counts, budget, stride_share):
    counts = np.array(counts)
    stride = int(stride_share * budget)
    windows = _windows(counts, budget=budget, stride=stride)
    assert windows[0][0] == 0 and windows[-1][1] == len(counts)
    for a, b in windows:
        assert b > a and (counts[a:b].sum() <= budget or b - a == 1)  # only a giant word goes alone
    for (a, b), (c, d) in zip(windows, windows[1:], strict=False):
        assert a < c <= b < d  # contiguous, overlapping or touching, always bringing a new word
        assert counts[c:b].sum() <= stride  # what two windows share stays within the stride


@pytest.mark.gpu
def test_the_word_pass_on_gpu_agrees_with_cpu_and_bfloat16_with_float32(token_dir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    cpu = Target.load(str(token_dir)).predict_words(SENTENCES).probs
    fp32 = Target.load(str(token_dir), device="cuda").predict_words(SENTENCES).probs
    bf16 = Target.load(str(token_dir), device="cuda", dtype="bfloat16").predict_words(SENTENCES).probs
    for c, f, b in zip(cpu, fp32, bf16, strict=True):
        np.testing.assert_allclose(f, c, atol=1e-4)
        assert np.abs(f - b).max() < 0.02
