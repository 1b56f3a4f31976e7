"""Model loading is safe, and predictions go through one batched, cached engine."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from audit.engine.inference import plan_batches
from audit.engine.target import Target
from audit.errors import AuditInputError
from tests._tiny import save_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "m", num_labels=3)


def test_batched_predictions_equal_one_row_at_a_time(tiny_dir):
    import torch

    target = Target.load(str(tiny_dir), max_tokens=64, max_batch=4)
    texts = ["the food", "the food was great and the staff were lovely", "x", "never again thank you",
             "a lovely quiet evening at the hotel by the river"] * 3
    batched = target.predict_logits(texts)
    with torch.inference_mode():
        single = np.stack([target.model(**target.tokenizer(t, return_tensors="pt")).logits[0].numpy() for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert target.stats.batches > 1  # the budget of 64 tokens forced several batches
    assert target.cache_hits == 0
    target.predict_logits(texts[:5])
    assert target.cache_hits == 5  # the exact inputs were served from the cache


def test_plan_batches_respects_the_token_budget():
    lengths = np.array([5, 50, 10, 10, 49, 3, 200])
    batches = plan_batches(lengths, max_tokens=100, max_batch=8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= 100
    assert batches[0].tolist() == [6]  # the over-long row travels alone


def test_truncated_rows_are_counted(tiny_dir):
    target = Target.load(str(tiny_dir), max_length=8)
    target.predict_logits(["the food", "the food was great and the staff were lovely and kind"])
    assert target.truncated_rows == 1


def test_pickle_checkpoint_is_loaded_weights_only(tiny_dir, tmp_path):
    """A pytorch_model.bin carrying a pickled payload must not run it."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_dir, folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    ok = Target.load(str(folder))
    assert ok.model.config.num_labels == 3

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"weights": Payload()}, fh)
    with pytest.raises(AuditInputError, match="cannot load the model"):
        Target.load(str(folder))
    assert not marker.exists()


def test_remote_code_is_refused_without_the_flag(tiny_dir, tmp_path):
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    with pytest.raises(AuditInputError, match="pass --trust-remote-code only if you trust it"):
        Target.load(str(folder))
    assert not (tmp_path / "pwned").exists()


def test_model_folder_problems_are_named(tiny_dir, tmp_path):
    import shutil

    with pytest.raises(AuditInputError, match="model folder not found: ./missing"):
        Target.load("./missing")
    folder = tmp_path / "notok"
    shutil.copytree(tiny_dir, folder)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        (folder / f).unlink(missing_ok=True)
    with pytest.raises(AuditInputError, match="has no tokenizer files"):
        Target.load(str(folder))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AuditInputError, match="cannot load the model"):
        Target.load(str(broken))


def test_label_count_mismatch_is_an_error(tiny_dir, tmp_path):
    import shutil

    folder = tmp_path / "mismatch"
    shutil.copytree(tiny_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b"}
    config["label2id"] = {"a": 0, "b": 1}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AuditInputError, match="cannot load the model"):
        Target.load(str(folder))


def test_fingerprint_depends_on_the_weights(tiny_dir, tmp_path):
    other = save_tiny_model(tmp_path / "other", num_labels=3, seed=1)
    a, b = Target.load(str(tiny_dir)), Target.load(str(other))
    assert a.fingerprint == Target.load(str(tiny_dir)).fingerprint != b.fingerprint
