"""The benchmark's real model: MiniLM-L6-H384 fine-tuned on 8,000 SST-2 training rows, cached.

Settings as the project's measured recipe (NOTES.md): 1 epoch, batch 32, AdamW lr 5e-5 with linear
decay, max length 64, fixed seed. The folder is named for a hash of the encoder, the rows and the
settings, and reused when it holds ``training.json`` (written last).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.ner_wnut17 import ENCODER_FILES, minilm_encoder

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"
DONE_FILE = "training.json"


@dataclass(frozen=True, kw_only=True)
class SstSettings:
    """How the encoder is fine-tuned on SST-2; the cache key hashes all of it."""

    rows: int = 8000
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    max_length: int = 64
    seed: int = 0


def read_sst2(path: Path, *, limit: int | None = None) -> tuple[list[str], list[int]]:
    """Sentences and labels of an SST-2 TSV (GLUE layout: ``sentence<TAB>label``)."""
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(row["sentence"].strip())
            labels.append(int(row["label"]))
            if limit is not None and len(texts) >= limit:
                break
    return texts, labels


def write_csv(path: Path, texts: list[str], labels: list[int]) -> Path:
    """The rows as a ``text,label`` CSV the audit reads."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def fine_tuned_sst2(*, cache: Path, settings: SstSettings = SstSettings(), log=print) -> Path:
    """The fine-tuned model folder under ``cache`` (trained now when absent)."""
    encoder = minilm_encoder(cache=cache)
    h = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for file in [*(encoder / f for f in ENCODER_FILES), SST2 / "train.tsv"]:
        h.update(file.read_bytes())
    folder = cache / f"minilm-sst2-{h.hexdigest()[:16]}"
    if (folder / DONE_FILE).is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=cache))
    try:
        record = _fine_tune(encoder=encoder, out=scratch, settings=settings, log=log)
        (scratch / DONE_FILE).write_text(json.dumps(record, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _fine_tune(*, encoder: Path, out: Path, settings: SstSettings, log) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    texts, labels = read_sst2(SST2 / "train.tsv", limit=settings.rows)
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=2, id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(texts))
    batches = [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0,
                                               num_training_steps=len(batches) * settings.epochs)
    start = time.perf_counter()
    model.train()
    for _ in range(settings.epochs):
        for step, batch in enumerate(batches):
            enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                            max_length=settings.max_length, return_tensors="pt")
            loss = model(**enc, labels=torch.tensor([labels[i] for i in batch])).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            if step % 50 == 0:
                log(f"  step {step}/{len(batches)} loss {loss.item():.3f} {time.perf_counter() - start:.0f} s")
    model.eval()
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"settings": asdict(settings), "seconds": round(time.perf_counter() - start, 1)}


if __name__ == "__main__":
    import sys

    print(fine_tuned_sst2(cache=Path(sys.argv[1]).expanduser()))
