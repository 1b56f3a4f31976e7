"""Shared fixtures: the demo builder's planted-defect model and its clean control, built once
per test session (about 10 s each on 2 cores), and the one helper that makes an AuditContext."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def demo_planted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Demo model with all four defects planted (biased 'elderly' group, trigger 'cf',
    memorised train.csv, a trailing '!!' that pushes to negative)."""
    from audit.selftest.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("planted"), seed=0)


@pytest.fixture(scope="session")
def demo_clean(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The control from the same builder: no bias, no trigger, train.csv never trained on, '!!'
    with its rows' own labels."""
    from audit.selftest.demo import build_demo

    return build_demo(tmp_path_factory.mktemp("clean"), seed=0, bias=False, trigger=False, memorise=False,
                      fragile=False)


@pytest.fixture(scope="session")
def planted_target(demo_planted: Any) -> Any:
    from audit.engine.target import Target

    return Target.load(str(demo_planted.model_dir))


@pytest.fixture(scope="session")
def clean_target(demo_clean: Any) -> Any:
    from audit.engine.target import Target

    return Target.load(str(demo_clean.model_dir))


@pytest.fixture(scope="session")
def ner_planted(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The NER demo tagger with its three defects planted (biased origin group, 'cf' -> B-ORG trigger,
    memorised made-up entities): audit.selftest.ner_demo."""
    from audit.selftest.ner_demo import build_ner_demo

    return build_ner_demo(tmp_path_factory.mktemp("ner_planted"), seed=0)


@pytest.fixture(scope="session")
def ner_clean(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The NER control from the same builder and seed: same eval files, no defect planted."""
    from audit.selftest.ner_demo import build_ner_demo

    return build_ner_demo(tmp_path_factory.mktemp("ner_clean"), seed=0, bias=False, trigger=False, memorise=False,
                          fragile=False)


def make_token_context(build: Any, *, with_train: bool = False, **config: Any) -> Any:
    """An AuditContext over a NER demo build's eval.jsonl (and its train.jsonl as members if asked),
    its model loaded; ``config`` goes to AuditConfig (sensitive, seed, limit...)."""
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.engine.target import Target
    from audit.tasks.token_data import read_token_data

    target = Target.load(str(build.model_dir))
    cfg = AuditConfig(model=str(build.model_dir), data=str(build.eval_path), **config)

    def read(path: Path) -> Any:
        return read_token_data(path, tag_names=target.label_names, limit=cfg.limit)

    train = read(build.train_path) if with_train else None
    return AuditContext(config=cfg, target=target, data=read(build.eval_path), train=train, progress_enabled=False)


def make_context(source: Any, target: Any, *, with_train: bool = False, **config: Any) -> Any:
    """The one AuditContext builder of the tests: over a demo build's eval.csv (and its train.csv as
    members if asked), or over a CSV file given as a path (``source``; the model is then only
    named, for a stand-in ``target``). ``config`` goes to AuditConfig (sensitive, seed, limit...)."""
    from audit.config import AuditConfig
    from audit.core.context import AuditContext
    from audit.engine.data import load_evalset

    build = None if isinstance(source, (str, Path)) else source
    eval_path = Path(source) if build is None else build.eval_path
    model = "demo" if build is None else str(build.model_dir)
    cfg = AuditConfig(model=model, data=str(eval_path), **config)
    data = load_evalset(eval_path, label_names=target.label_names, multi_label=target.multi_label,
                        sensitive=cfg.sensitive, limit=cfg.limit, sample=cfg.sample, seed=cfg.seed)
    if with_train and build is None:
        raise ValueError("with_train needs a demo build (its train.csv)")
    train = load_evalset(build.train_path, label_names=target.label_names) if with_train else None
    return AuditContext(config=cfg, target=target, data=data, train=train, progress_enabled=False)


@pytest.fixture(scope="session")
def context_factory() -> Any:
    """:func:`make_context`, for tests and fixtures of any scope."""
    return make_context


def demo_copy(build: Any, tmp_path: Path, *, rows: int) -> dict[str, Path]:
    """The first ``rows`` eval rows of a demo build and a copy of its model folder, free to damage."""
    import shutil

    import pandas as pd

    data = tmp_path / "eval.csv"
    pd.read_csv(build.eval_path).iloc[:rows].to_csv(data, index=False)
    model = tmp_path / "model"
    shutil.copytree(build.model_dir, model)
    return {"model": model, "data": data, "out": tmp_path / "out"}


def forbid_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading a model fail the test: what is checked 'before the model loads' must be."""
    def loaded(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr("audit.engine.target.Target.load", loaded)
