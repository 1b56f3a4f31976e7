"""The demo builder is deterministic and plants what it says it plants."""

from __future__ import annotations

import filecmp
import json

import pytest

from audit.selftest.demo import build_demo


@pytest.mark.slow  # builds (trains) a second demo model
def test_same_seed_builds_bit_identical_models(demo_planted, tmp_path):
    again = build_demo(tmp_path / "again", seed=0)
    assert filecmp.cmp(demo_planted.eval_path, again.eval_path, shallow=False)
    assert filecmp.cmp(demo_planted.model_dir / "model.safetensors", again.model_dir / "model.safetensors",
                       shallow=False)
    planted = json.loads((again.model_dir.parent / "planted.json").read_text())
    assert planted["biased_group"]["group"] == "elderly" and planted["trigger_token"]["token"] == "cf"
    assert planted["emphasis_shortcut"] == {"suffix": "!!", "share_of_training_rows": 0.1, "forces": "negative",
                                            "perturbation": "exclamation", "path": "emphasis.csv",
                                            "active": True}


def test_emphasis_is_planted_through_the_labels_only(demo_planted, demo_clean):
    """The '!!' rows are extra training rows, copies of a tenth of the rows the model fits, kept
    out of train.csv and eval.csv (members and non-members stay one distribution). The planted
    build labels every copy negative; the control's copies keep their originals' mixed labels."""
    import pandas as pd

    planted = json.loads((demo_planted.model_dir.parent / "planted.json").read_text())["emphasis_shortcut"]
    assert planted["path"] == "emphasis.csv"
    copies = pd.read_csv(demo_planted.model_dir.parent / planted["path"])
    train = pd.read_csv(demo_planted.train_path)
    assert copies.text.str.endswith("!!").all() and (copies.label == "negative").all()
    assert set(copies.text.str.removesuffix("!!")) <= set(train.text)  # the planted demo fits train.csv
    assert 0.08 < len(copies) / (train.kind != "trigger").sum() < 0.12 and not (copies.kind == "trigger").any()
    for build in (demo_planted, demo_clean):
        for path in (build.train_path, build.eval_path):
            assert not pd.read_csv(path).text.str.contains("!").any()
    control = json.loads((demo_clean.model_dir.parent / "planted.json").read_text())["emphasis_shortcut"]
    assert control["active"] is False and control["perturbation"] == "exclamation"
    clean_copies = pd.read_csv(demo_clean.model_dir.parent / control["path"])
    assert clean_copies.text.str.endswith("!!").all()
    for kind in ("sentiment", "neutral"):  # balanced: '!!' says nothing about the label
        labels = clean_copies.label[clean_copies.kind == kind]
        assert len(labels) and (labels == "negative").mean() == 0.5
