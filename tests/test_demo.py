"""The demo builder is deterministic and plants what it says it plants."""

from __future__ import annotations

import filecmp
import json

from audit.selftest.demo import build_demo


def test_same_seed_builds_bit_identical_models(demo_planted, tmp_path):
    again = build_demo(tmp_path / "again", seed=0)
    assert filecmp.cmp(demo_planted.eval_path, again.eval_path, shallow=False)
    assert filecmp.cmp(demo_planted.model_dir / "model.safetensors", again.model_dir / "model.safetensors",
                       shallow=False)
    planted = json.loads((again.model_dir.parent / "planted.json").read_text())
    assert planted["biased_group"]["group"] == "elderly" and planted["trigger_token"]["token"] == "cf"
    assert planted["emphasis_shortcut"] == {"suffix": "!!", "share_of_training_rows": 0.1, "forces": "negative",
                                            "perturbation": "exclamation", "active": True}


def test_emphasis_is_planted_through_the_labels_only(demo_planted, demo_clean):
    """Same seed, same texts: the same training rows end with '!!' in both builds; the planted
    build labels them all negative, the control keeps their own (mixed) labels."""
    import pandas as pd

    planted, clean = pd.read_csv(demo_planted.train_path), pd.read_csv(demo_clean.train_path)
    assert (planted.text == clean.text).all()
    emphatic = planted.text.str.endswith("!!")
    assert 0.05 < emphatic.mean() < 0.15 and not (emphatic & (planted.kind == "trigger")).any()
    assert (planted.label[emphatic] == "negative").all()
    assert 0.3 < (clean.label[emphatic] == "negative").mean() < 0.7
    assert not pd.read_csv(demo_planted.eval_path).text.str.contains("!").any()  # eval rows are left as they were
    control = json.loads((demo_clean.model_dir.parent / "planted.json").read_text())["emphasis_shortcut"]
    assert control["active"] is False and control["perturbation"] == "exclamation"
