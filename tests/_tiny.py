"""Tiny untrained Hugging Face classifiers for tests that need a model but not a good one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CORPUS = [
    "the food was great", "the film was awful", "a lovely quiet evening", "service was slow and rude",
    "i would come back again", "never again thank you", "the hotel room was clean", "the staff ignored us",
]


def save_tiny_model(path: Path, *, num_labels: int = 2, labels: list[str] | None = None,
                    multi_label: bool = False, seed: int = 0, max_length: int = 32) -> Path:
    """A 2-layer BERT with hidden size 16 and its own WordPiece tokenizer, saved to ``path``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from audit.selftest.demo import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer(CORPUS * 3, max_length=max_length)
    labels = labels or [f"class_{i}" for i in range(num_labels)]
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_length, num_labels=num_labels,
                        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
                        problem_type="multi_label_classification" if multi_label else None)
    model = BertForSequenceClassification(config)
    model.eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def save_tiny_token_model(path: Path, *, labels: list[str] | None = None, seed: int = 0, max_length: int = 32,
                          architectures: bool = True) -> Path:
    """An untrained 2-layer ``BertForTokenClassification`` (hidden size 16) and its own fast WordPiece
    tokenizer, saved to ``path``. ``architectures=False`` drops the field from config.json, as some
    hand-written configs do."""
    import json

    import torch
    from transformers import BertConfig, BertForTokenClassification

    from audit.selftest.demo import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer(CORPUS * 3, max_length=max_length)
    labels = labels or TAGS
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_length, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    model = BertForTokenClassification(config)
    model.eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if not architectures:
        data = json.loads((path / "config.json").read_text())
        data.pop("architectures", None)
        (path / "config.json").write_text(json.dumps(data))
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def random_iob2_sentences(n: int, *, words: list[str], max_len: int, seed: int = 0
                          ) -> list[tuple[list[str], list[str]]]:
    """``n`` random sentences of 3 to ``max_len - 1`` words drawn from ``words``, with
    well-formed IOB2 gold tags over PER and LOC (entities of one or two words)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sentence = [str(w) for w in rng.choice(words, size=int(rng.integers(3, max_len)))]
        tags: list[str] = []
        i = 0
        while i < len(sentence):
            kind = rng.choice(["O", "O", "PER", "LOC"])
            if kind == "O":
                tags.append("O")
                i += 1
                continue
            span = min(int(rng.integers(1, 3)), len(sentence) - i)
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (span - 1)
            i += span
        out.append((sentence, tags))
    return out
