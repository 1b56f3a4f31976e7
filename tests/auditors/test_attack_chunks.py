"""Attacks split over workers (issues 17 and 18): each example on its own seed and its own scorer
cache gives the result TextAttack's Attacker gives for that example alone, whatever other
examples were attacked, in which order, and in which process."""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import pytest

from audit.auditors.robustness import _attack_chunks as C
from audit.auditors.robustness import _attacks as A
from audit.auditors.robustness._auditor import stratified_sample
from audit.engine import forked
from tests.auditors.test_robustness import attacker_result, one_torch_thread  # noqa: F401 (autouse fixture)
from tests.conftest import make_context


@pytest.fixture(scope="module")
def ctx(demo_planted: Any, planted_target: Any) -> Any:
    return make_context(demo_planted, planted_target)


@pytest.fixture(scope="module")
def rows(ctx: Any) -> list[int]:
    """Six rows of the auditor's seeded sample."""
    return [int(i) for i in stratified_sample(np.asarray(ctx.data.labels), 6, rng=ctx.rng("robustness.attack"))]


def ours(ctx: Any, recipe: str, rows: list[int], *, workers: int = 1, seeds: list[int] | None = None,
         chunks: list[int] | None = None) -> A.RecipeRun:
    """Our attack loop on ``rows``, as the auditor runs it (same seeds, same originals); the number
    of examples the runner sent to workers is appended to ``chunks``."""
    ta, _ = A.import_textattack(need_wordnet=recipe == "pwws")
    base = ctx.seed_for(f"robustness.attack.{recipe}")
    runner = C.ChunkRunner(ctx.target, workers=workers)
    run = runner.run(ta, A.RECIPES[recipe], examples=[(ctx.data.texts[i], int(ctx.data.labels[i])) for i in rows],
                     seeds=seeds or [C.example_seed(base=base, row=i) for i in rows],
                     originals=list(ctx.target.predict_logits([ctx.data.texts[i] for i in rows])),
                     query_budget=None, time_budget_s=None)
    if chunks is not None:
        chunks.append(runner.chunks_sent)
    return run


def signature(result: Any) -> tuple[str, str, int, int]:
    """What must agree between two runs of one example: outcome, adversarial text, queries, prediction."""
    return (A.outcome(result), result.perturbed_result.attacked_text.text, int(result.num_queries),
            int(result.perturbed_result.output))


def test_example_seeds_are_stable_and_unrelated_across_rows() -> None:
    seeds = [C.example_seed(base=12345, row=row) for row in range(100)]
    assert seeds == [C.example_seed(base=12345, row=row) for row in range(100)]
    assert len(set(seeds)) == 100 and all(0 <= s < 2**32 for s in seeds)
    assert C.example_seed(base=12345, row=0) != C.example_seed(base=12346, row=0)
    assert C.example_seed(base=0, row=0) == 2968811710  # NumPy's SeedSequence hash: fixed across versions and platforms


@pytest.mark.parametrize(("n", "parts", "expected"), [
    (0, 4, []),
    (3, 4, [(0, 3)]),  # fewer rows than a chunk's minimum: one chunk
    (8, 2, [(0, 4), (4, 8)]),
    (9, 2, [(0, 5), (5, 9)]),
    (9, 8, [(0, 5), (5, 9)]),  # at least MIN_CHUNK rows each
    (100, 3, [(0, 34), (34, 67), (67, 100)]),
])
def test_chunks_are_contiguous_and_balanced(n: int, parts: int, expected: list[tuple[int, int]]) -> None:
    assert C.chunk_bounds(n, parts=parts, min_size=4) == expected


def test_zero_workers_means_one_per_torch_thread_and_an_accelerator_gets_one_part(
        planted_target: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy
    import os

    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert forked.default_workers() == 2  # torch would use 3 threads, but this process may run on 2 CPUs
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    assert forked.default_workers() == 3  # OMP_NUM_THREADS=3 (torch's 3 threads) is respected
    assert C.ChunkRunner(planted_target, workers=0).parts == 3
    assert C.ChunkRunner(planted_target, workers=5).parts == 5
    on_gpu = copy.copy(planted_target)
    on_gpu.device = "cuda"  # only read, never used: one accelerator batches on its own
    assert C.ChunkRunner(on_gpu, workers=3).parts == 1
    monkeypatch.setattr(C, "can_fork", lambda: False)  # macOS, Windows: attacked here
    assert C.ChunkRunner(planted_target, workers=5).parts == 1


@pytest.mark.parametrize("recipe", ["deepwordbug", "pwws"])
def test_each_example_equals_textattack_attacker_on_that_example_alone(ctx: Any, rows: list[int],
                                                                       recipe: str) -> None:
    ta, _ = A.import_textattack(need_wordnet=recipe == "pwws")
    picked = rows[:4]
    run = ours(ctx, recipe, picked)
    base = ctx.seed_for(f"robustness.attack.{recipe}")
    theirs = [attacker_result(ctx, ta, recipe, i, C.example_seed(base=base, row=i)) for i in picked]
    assert [signature(r) for r in run.results] == [signature(r) for r in theirs]
    assert any(A.outcome(r) == "successful" for r in run.results)  # the comparison covers real attacks


def test_an_example_result_does_not_depend_on_the_others_or_their_order(ctx: Any, rows: list[int]) -> None:
    """[a, b, c, d] in one run equals [c, d] then [a, b] in two runs, example by example."""
    a, b, c, d = rows[:4]
    together = ours(ctx, "deepwordbug", [a, b, c, d])
    first, second = ours(ctx, "deepwordbug", [c, d]), ours(ctx, "deepwordbug", [a, b])
    assert [signature(r) for r in together.results] == [signature(r) for r in second.results + first.results]
    # DeepWordBug really is random: other seeds give other adversarial texts, so the equality
    # above holds because each example carries its seed, not because nothing was drawn.
    other = ours(ctx, "deepwordbug", [a, b, c, d], seeds=[7, 8, 9, 10])
    assert [signature(r) for r in other.results] != [signature(r) for r in together.results]


@pytest.mark.slow
def test_two_forked_workers_give_the_results_of_one(ctx: Any, rows: list[int]) -> None:
    picked = rows[:6] + rows[:2]  # a repeated example must come out the same in either worker
    sent: list[int] = []
    ctx.target.predict_logits([ctx.data.texts[i] for i in picked])  # the originals, scored (and cached) here
    stats0 = ctx.target.stats.rows
    one = ours(ctx, "deepwordbug", picked, workers=1, chunks=sent)
    passes_one = ctx.target.stats.rows - stats0
    two = ours(ctx, "deepwordbug", picked, workers=2, chunks=sent)
    passes_two = ctx.target.stats.rows - stats0 - passes_one
    assert sent == [0, 8]  # one process: nothing sent; two workers: the 8 examples, one at a time
    assert [signature(r) for r in two.results] == [signature(r) for r in one.results]
    assert [signature(r) for r in one.results[6:]] == [signature(r) for r in one.results[:2]]
    assert (two.wrapper_rows, two.cache_hits, two.not_attacked) == (one.wrapper_rows, one.cache_hits, 0)
    assert passes_two == passes_one > 0  # the workers' forward passes are counted in the driver's
    assert not multiprocessing.active_children()


def test_forked_workers_report_progress_and_stop_at_the_time_budget(ctx: Any, rows: list[int]) -> None:
    ticks: list[int] = []

    def progress(items: Any, total: int, desc: str) -> Any:
        ticks.append(total)
        for item in items:
            ticks.append(item)
            yield item

    ta, _ = A.import_textattack(need_wordnet=False)
    picked = rows[:5]
    examples = [(ctx.data.texts[i], int(ctx.data.labels[i])) for i in picked]
    originals = list(ctx.target.predict_logits([t for t, _ in examples]))
    for workers in (1, 2):
        runner = C.ChunkRunner(ctx.target, workers=workers)
        run = runner.run(ta, A.RECIPES["deepwordbug"], examples=examples, seeds=list(range(5)), originals=originals,
                         query_budget=None, time_budget_s=0.0)
        assert (run.results, run.not_attacked) == ([], 5)  # a spent budget starts no example, in either path
    ticks.clear()
    run = C.ChunkRunner(ctx.target, workers=2).run(ta, A.RECIPES["deepwordbug"], examples=examples,
                                                   seeds=list(range(5)), originals=originals, query_budget=None,
                                                   time_budget_s=None, progress=progress)
    assert ticks[0] == 5 and sorted(ticks[1:]) == list(range(5)) and len(run.results) == 5


@pytest.mark.parametrize("workers", [1, 2])
def test_the_time_budget_counts_attacking_not_the_recipe_build(ctx: Any, rows: list[int], workers: int,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe that takes longer to build (WordNet, a cold cache) than the whole budget still
    attacks: the budget starts at the first example."""
    import time

    ta, _ = A.import_textattack(need_wordnet=False)
    examples = [(ctx.data.texts[i], int(ctx.data.labels[i])) for i in rows[:4]]
    originals = list(ctx.target.predict_logits([t for t, _ in examples]))
    build = C.ExampleAttack.__init__

    def slow_build(self: Any, *args: Any, **kwargs: Any) -> None:
        time.sleep(1.5)
        build(self, *args, **kwargs)

    monkeypatch.setattr(C.ExampleAttack, "__init__", slow_build)
    run = C.ChunkRunner(ctx.target, workers=workers).run(ta, A.RECIPES["deepwordbug"], examples=examples,
                                                         seeds=list(range(4)), originals=originals,
                                                         query_budget=None, time_budget_s=1.0)
    assert len(run.results) >= 1 and len(run.results) + run.not_attacked == 4


@pytest.mark.parametrize("how", ["raises", "dies"])
def test_a_failing_worker_fails_the_recipe_with_a_clear_error_and_leaves_no_process(
        ctx: Any, rows: list[int], how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose scoring raises (or whose process dies) on one example: the run stops with
    an error naming the recipe and the example, and every worker is gone."""
    import os

    ta, _ = A.import_textattack(need_wordnet=False)
    picked = rows[:4]
    examples = [(ctx.data.texts[i], int(ctx.data.labels[i])) for i in picked]
    originals = list(ctx.target.predict_logits([t for t, _ in examples]))
    bad = examples[2][0]
    real = C.ExampleScorer.start

    def start(self: Any, example: Any, original: Any) -> None:
        if example == bad:
            if how == "dies":
                os._exit(3)
            raise ValueError("planted failure")
        real(self, example, original)

    monkeypatch.setattr(C.ExampleScorer, "start", start)  # inherited by the forked workers
    expected = "failed on item 2: ValueError: planted failure" if how == "raises" else "exited with code 3 on item 2"
    with pytest.raises(RuntimeError, match=rf"a worker \(attack \(deepwordbug\)\) {expected}"):
        C.ChunkRunner(ctx.target, workers=2).run(ta, A.RECIPES["deepwordbug"], examples=examples,
                                                 seeds=list(range(4)), originals=originals, query_budget=None,
                                                 time_budget_s=None)
    assert not multiprocessing.active_children()
