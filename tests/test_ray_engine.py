"""The Ray engine (issue 17): the same numbers as the local engine, Ray only when asked for, a
dead actor retried, and one-line errors for a missing package or an unreachable cluster.

Every Ray test is marked slow (a Ray Data job takes 10-30 s to start on a busy 2-core machine);
slow tests still run in the default ``pytest -q`` and in CI. The Ray tests share one local Ray
instance (2 CPUs, a 100 MB object store, no dashboard), started once per session and shut down at
its end; they are skipped where Ray is not installed (``pip install '.[ray]'``, as .ci/run does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit import AuditConfig, run_audit
from audit.cli import main
from audit.engine.target import Target
from audit.errors import AuditInputError

ROOT = Path(__file__).resolve().parents[1]
OBJECT_STORE_BYTES = 100 * 2**20


@pytest.fixture(scope="module")
def ray_local() -> Any:
    """A local Ray instance for this module's tests, shut down after them (a Ray driver does not
    fork: left running, it would turn off forked workers for every later test); its workers import
    this checkout's ``audit``."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


def _engine(ray_local: Any, **kw: Any) -> Any:
    from audit.engine.ray_engine import RayEngine

    return RayEngine.start(**{"min_rows": 1, **kw})


def _eval_texts(build: Any, n: int = 300) -> list[str]:
    import pandas as pd

    return pd.read_csv(build.eval_path)["text"].astype(str).tolist()[:n]


# ------------------------------------------------------------------ config and errors, no Ray needed


def test_engine_option_accepts_local_and_ray_only():
    assert AuditConfig(engine="ray").engine == "ray"
    with pytest.raises(AuditInputError, match="engine"):
        AuditConfig(engine="spark")


def test_engine_ray_without_ray_installed_says_how_to_install(demo_planted, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = main(["run", str(demo_planted.model_dir), "--data", str(demo_planted.eval_path), "--out",
                 str(tmp_path / "out"), "--auditors", "performance", "--engine", "ray", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "pip install 'rai-audit[ray]'" in err
    assert not (tmp_path / "out" / "results.json").exists()


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "import sys\nfrom audit.cli import main\nraise SystemExit(main())",
                           *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_unreachable_cluster_exits_2_naming_the_address(demo_planted, tmp_path):
    pytest.importorskip("ray")
    proc = _cli("run", str(demo_planted.model_dir), "--data", str(demo_planted.eval_path), "--out",
                str(tmp_path / "out"), "--auditors", "performance", "--engine", "ray", "--ray-address", "127.0.0.1:1",
                "--quiet")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_local_audit_never_imports_ray(demo_planted, tmp_path):
    code = f"""
import sys
from audit import AuditConfig, run_audit
run_audit(AuditConfig(model={str(demo_planted.model_dir)!r}, data={str(demo_planted.eval_path)!r},
                      out={str(tmp_path / 'out')!r}, auditors=['performance'], limit=50,
                      options={{'performance': {{'n_bootstrap': 20}}}}), progress=False)
print('ray' in sys.modules, sys.modules.get('ray.data') is not None)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["metadata"]["engine"]["kind"] == "local"


# ------------------------------------------------------------------ on a local Ray instance


@pytest.mark.slow
def test_ray_pass_gives_byte_identical_logits_in_input_order(ray_local, demo_planted):
    texts = _eval_texts(demo_planted)
    local = Target.load(str(demo_planted.model_dir), device="cpu")
    remote = Target.load(str(demo_planted.model_dir), device="cpu", max_batch=16)  # many batches, many blocks
    local.max_batch = 16
    remote.engine = _engine(ray_local)
    expected = local.predict_logits(texts)
    got = remote.predict_logits(texts)
    assert remote.engine.distributed_passes == 1
    assert sum(remote.engine.rows_per_node.values()) == len(set(texts))  # each distinct text once
    assert got.dtype == np.float32 and np.array_equal(got, expected)  # bytes, not a tolerance
    assert (remote.stats.batches, remote.stats.padded_tokens) == (local.stats.batches, local.stats.padded_tokens)
    # and the results land in the shared cache: asking again does no forward work
    again = remote.predict_logits(texts[::-1])
    assert remote.engine.distributed_passes == 1 and np.array_equal(again, expected[::-1])


@pytest.mark.slow
def test_ray_word_pass_of_a_token_classifier_matches_local(ray_local, ner_planted):
    from audit.tasks.token_data import read_token_data

    local = Target.load(str(ner_planted.model_dir), device="cpu")
    remote = Target.load(str(ner_planted.model_dir), device="cpu")
    data = read_token_data(str(ner_planted.eval_path), tag_names=local.label_names, scheme=None)
    sentences = data.tokens[:200]
    remote.engine = _engine(ray_local)
    expected = local.predict_words(sentences)
    got = remote.predict_words(sentences)
    assert remote.engine.distributed_passes == 1
    assert len(got.probs) == len(expected.probs)
    assert all(np.array_equal(a, b) for a, b in zip(got.probs, expected.probs, strict=True))


@pytest.mark.slow
def test_small_passes_stay_on_the_driver(ray_local, demo_planted):
    texts = _eval_texts(demo_planted, 40)
    remote = Target.load(str(demo_planted.model_dir), device="cpu")
    remote.engine = _engine(ray_local, min_rows=41)
    got = remote.predict_logits(texts)
    assert remote.engine.distributed_passes == 0
    local = Target.load(str(demo_planted.model_dir), device="cpu")
    assert np.array_equal(got, local.predict_logits(texts))


@pytest.mark.slow
def test_an_actor_that_dies_is_restarted_and_its_batch_retried(ray_local, demo_planted, tmp_path, monkeypatch):
    from audit.engine.ray_engine import DIE_ONCE_ENV

    flag = tmp_path / "die-once"
    flag.write_text("")
    monkeypatch.setenv(DIE_ONCE_ENV, str(flag))
    texts = _eval_texts(demo_planted, 200)
    remote = Target.load(str(demo_planted.model_dir), device="cpu")
    remote.engine = _engine(ray_local)
    got = remote.predict_logits(texts)
    assert not flag.exists()  # an actor took the flag and killed itself
    local = Target.load(str(demo_planted.model_dir), device="cpu")
    assert np.array_equal(got, local.predict_logits(texts))


# Keys that may differ between engines: when and how fast it ran, and how (engine and its options).
_ENGINE_KEYS = ("engine", "ray_address", "ray_actors", "ray_min_rows")


def _comparable(results: dict[str, Any]) -> dict[str, Any]:
    meta = dict(results["metadata"])
    for key in ("created", "timings", "engine"):
        meta.pop(key, None)
    meta["config"] = {k: v for k, v in meta["config"].items() if k not in (*_ENGINE_KEYS, "out")}
    sections = []
    for section in results["results"]:
        section = dict(section)
        section.pop("timings", None)
        sections.append(section)
    return {**results, "metadata": meta, "results": sections}


@pytest.mark.slow
def test_results_json_from_ray_equals_local(ray_local, demo_planted, tmp_path):
    """One small audit both ways (performance, fairness with its counterfactual pass, privacy
    with two online reference models trained as Ray tasks, robustness with its DeepWordBug
    attacks in two chunks of four examples, one Ray task each); every pass over a few rows goes
    through Ray (``ray_min_rows=100``)."""
    base = dict(model=str(demo_planted.model_dir), data=str(demo_planted.eval_path),
                train_data=str(demo_planted.train_path), sensitive=["age_group"], limit=300, seed=3,
                auditors=["performance", "fairness", "privacy", "robustness"],
                options={"performance": {"n_bootstrap": 50}, "fairness": {"n_bootstrap": 50},
                         "privacy": {"n_bootstrap": 50, "train_reference": 2, "reference_epochs": 1,
                                     "mia_examples": 120, "pii": False},
                         "robustness": {"recipes": ["deepwordbug"], "attack_examples": 8, "invariance_examples": 0}})
    run_audit(AuditConfig(**base, out=str(tmp_path / "local")), progress=False)
    ray_run = run_audit(AuditConfig(**base, out=str(tmp_path / "ray"), engine="ray", ray_min_rows=100),
                        progress=False)
    engine = ray_run.metadata["engine"]
    assert engine["kind"] == "ray" and engine["distributed_passes"] >= 2
    assert engine["tasks"] == 2 + 2  # the reference models, then the attack chunks (ray_local has 2 CPUs)
    assert [r.status for r in ray_run.results] == ["ok"] * 4
    attacks = next(r for r in ray_run.results if r.auditor == "robustness").table("attacks")
    assert dict(zip(attacks.columns, attacks.rows[0], strict=True))["examples"] == 8
    a = json.loads((tmp_path / "local" / "results.json").read_text())
    b = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert _comparable(a) == _comparable(b)


def test_a_batch_split_by_out_of_memory_is_reassembled_as_one():
    from audit.engine.ray_engine import _assemble

    seq = [(np.array([0, 1]), np.ones((2, 3), np.float32)), (np.array([2]), np.full((1, 3), 2, np.float32))]
    assert np.array_equal(_assemble(seq, 3), np.array([[1] * 3, [1] * 3, [2] * 3], dtype=np.float32))
    # token logits: the halves are padded to their own widths; one batch pads to the widest
    tok = [(np.array([1]), np.ones((1, 4, 2), np.float32)), (np.array([0]), np.full((1, 2, 2), 5, np.float32))]
    out = _assemble(tok, 2)
    assert out.shape == (2, 4, 2)
    assert np.array_equal(out[1], np.ones((4, 2))) and np.array_equal(out[0, :2], np.full((2, 2), 5))
    assert not out[0, 2:].any()
