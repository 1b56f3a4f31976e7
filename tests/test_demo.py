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
