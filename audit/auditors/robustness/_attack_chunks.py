"""The attacks of one recipe, example by example, so its examples can be split into contiguous
chunks and attacked here, in a local process pool (``attack_workers``) or as Ray tasks
(``--engine ray``), with the same results.

An example's result depends on the example alone, through two things:

* **Its own seed.** DeepWordBug's search draws random character edits; TextAttack's Attacker seeds
  once per run, so the random state would carry from one example to the next and no example could
  move to another worker. Each example gets ``example_seed(base=base, row=row)``, ``base`` being
  ``ctx.seed_for("robustness.attack.<recipe>")`` and ``row`` its row in the eval set, and
  ``set_seed`` runs right before its ``attack.attack``: exactly what ``Attacker`` does for a
  one-example dataset with ``AttackArgs(random_seed=seed)`` (tests/auditors/test_robustness.py).
* **Its own scores.** A row's logits move by ~1e-6 with the width its batch is padded to
  (:mod:`audit.engine.ray_engine`), so a query answered from a cache that another example's
  batches filled could break a tie in a search's ranking differently. Each example starts from an
  empty scorer cache holding only its original input's logits from the audit's shared pass (so
  the skip decision agrees with the performance section), with TextAttack's cache of model
  outputs cleared;
  its queries are then batched exactly as its own search asks for them, wherever it runs.

The time budget (``time_budget_s``) is per chunk: a chunk starts no example once it has run that
long, and its remaining rows count as not attacked. Chunks run concurrently, so a recipe still
takes about the budget. Which rows a budget cuts off depends on speed; results are deterministic
when no budget is hit, as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.auditors.robustness._attacks import (
    RECIPES,
    Recipe,
    RecipeRun,
    build_attack,
    goal_batch_size,
    import_textattack,
    make_wrapper,
    run_attack,
)

# Fewest examples in a chunk: a chunk's worker imports TextAttack and builds its recipe (seconds),
# which a chunk of one or two examples would not repay.
MIN_CHUNK = 4


def example_seed(*, base: int, row: int) -> int:
    """The seed of the example at eval-set row ``row``: the first 32-bit word of NumPy's
    ``SeedSequence([base, row])`` (a stable hash of its entropy, the same on every platform and
    NumPy version), so neighbouring rows get unrelated seeds and ``np.random.seed`` accepts it."""
    return int(np.random.SeedSequence([int(base), int(row)]).generate_state(1, dtype=np.uint32)[0])


def chunk_bounds(n: int, *, parts: int, min_size: int = MIN_CHUNK) -> list[tuple[int, int]]:
    """At most ``parts`` contiguous ``[start, stop)`` ranges covering ``range(n)``, each of at
    least ``min_size`` rows (one range when ``n`` is smaller), sizes differing by at most one."""
    if n <= 0:
        return []
    k = max(1, min(int(parts), n // max(1, min_size)))
    q, r = divmod(n, k)
    bounds, start = [], 0
    for j in range(k):
        stop = start + q + (j < r)
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass
class ExampleScorer:
    """What TextAttack's wrapper scores through: ``target`` (a Target over the audited model with
    a cache of its own), restarted for each example from that example's original logits."""

    target: Any
    multi_label: bool = False
    calls: int = 0  # wrapper calls (search steps) over the examples scored

    def start(self, example: Any, original_logits: np.ndarray) -> None:
        self.target.reset_cache({_key(example): np.asarray(original_logits)})

    def probs(self, texts: list[str], pairs: list[str] | None) -> np.ndarray:
        from audit.core.context import Predictions

        self.calls += 1
        return Predictions(logits=self.target.predict_logits(texts, pairs), multi_label=self.multi_label).probs


def _key(example: Any) -> tuple[str, str | None]:
    """The Target cache key of an example as the wrapper will ask for it: (text, pair or None)."""
    if isinstance(example, str):
        return (example, None)
    text, pair = list(example.values())
    return (text, pair)


def worker_target(*, model: Any, tokenizer: Any, max_length: int, max_tokens: int, max_batch: int, device: str,
                  dtype: str) -> Any:
    """A Target over ``model`` with its own cache and no engine: every attack query is small and
    runs where the attack runs (a Ray Data job per query would cost seconds each)."""
    from audit.engine.target import Target
    from audit.tasks import SEQUENCE

    return Target(model=model, tokenizer=tokenizer, device=device, dtype=dtype, max_length=max_length,
                  max_tokens=max_tokens, max_batch=max_batch, task=SEQUENCE)


def attack_examples(ta: Any, recipe: Recipe, scorer: ExampleScorer, *, examples: Sequence[tuple[Any, int]],
                    seeds: Sequence[int], originals: Sequence[np.ndarray], query_budget: int | None,
                    time_budget_s: float | None,
                    progress: Callable[..., Iterable[Any]] | None = None) -> RecipeRun:
    """``recipe`` on ``examples``, each from a clean scorer cache and TextAttack model-output cache,
    on its own seed (the module docstring says why); the same function in every worker."""
    target = scorer.target
    wrapper = make_wrapper(scorer.probs, target.model, target.tokenizer)
    attack = build_attack(ta, recipe, wrapper, query_budget=query_budget,
                          batch_size=goal_batch_size(max_batch=target.max_batch, max_tokens=target.max_tokens))

    def before_each(i: int) -> None:
        # Only the model's answers depend on what was scored before (batch widths); the
        # transformation and constraint caches hold pure functions of the text and are kept.
        attack.goal_function.clear_cache()
        scorer.start(examples[i][0], originals[i])

    hits0 = target.cache_hits
    run = run_attack(ta, attack, examples, recipe=recipe.name, seeds=seeds, time_budget_s=time_budget_s,
                     progress=progress, before_each=before_each)
    run.wrapper_rows, run.cache_hits = wrapper.rows, target.cache_hits - hits0
    return run


def attack_chunk(*, model: Any, tokenizer: Any, max_length: int, max_tokens: int, max_batch: int, device: str,
                 dtype: str, multi_label: bool, recipe: str, examples: Sequence[tuple[Any, int]],
                 seeds: Sequence[int], originals: Sequence[np.ndarray], query_budget: int | None,
                 time_budget_s: float | None) -> RecipeRun:
    """One chunk in a worker (a Ray task or a local process): TextAttack imported offline, its own
    recipe over its own wrapper and Target, the chunk attacked with the per-example seeds. Returns
    TextAttack's result objects (they pickle: TextAttack's parallel Attacker sends them through queues)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the worker's torch thread is its only one
    spec = RECIPES[recipe]
    ta, _ = import_textattack(need_wordnet=any(n.kind == "wordnet" for n in spec.needs))
    target = worker_target(model=model, tokenizer=tokenizer, max_length=max_length, max_tokens=max_tokens,
                           max_batch=max_batch, device=device, dtype=dtype)
    return attack_examples(ta, spec, ExampleScorer(target=target, multi_label=multi_label), examples=examples,
                           seeds=seeds, originals=originals, query_budget=query_budget, time_budget_s=time_budget_s)


def merge_runs(recipe: str, runs: Sequence[RecipeRun]) -> RecipeRun:
    """The chunks' runs as one, in chunk order (the original order of the examples)."""
    out = RecipeRun(recipe=recipe)
    for run in runs:
        out.results.extend(run.results)
        out.labels.extend(run.labels)
        out.not_attacked += run.not_attacked
        out.wrapper_rows += run.wrapper_rows
        out.cache_hits += run.cache_hits
    return out


class ChunkRunner:
    """Where a recipe's chunks run: as Ray tasks when ``engine`` is a RayEngine (one chunk per CPU
    of the cluster), else in a local spawn-context process pool of ``workers`` processes (each on one
    torch thread), started on first use and shared by the recipes; with one chunk, here."""

    def __init__(self, target: Any, *, workers: int, engine: Any = None) -> None:
        self.target, self.engine = target, engine
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self._pool: Any = None
        self.chunks_sent = 0

    @property
    def parts(self) -> int:
        if self.target.device != "cpu":  # one accelerator: its own batches are the parallelism
            return 1
        return self.engine.parallelism() if self.engine is not None else self.workers

    def common(self) -> dict[str, Any]:
        t = self.target
        return {"model": t.model, "tokenizer": t.tokenizer, "max_length": t.max_length, "max_tokens": t.max_tokens,
                "max_batch": t.max_batch, "device": t.device, "dtype": t.dtype, "multi_label": t.multi_label}

    def run(self, ta: Any, recipe: Recipe, *, examples: Sequence[tuple[Any, int]], seeds: Sequence[int],
            originals: Sequence[np.ndarray], query_budget: int | None, time_budget_s: float | None,
            progress: Callable[..., Iterable[Any]] | None = None) -> RecipeRun:
        """``recipe`` on ``examples``, chunked as this runner does; results in the examples' order."""
        start = time.perf_counter()
        bounds = chunk_bounds(len(examples), parts=self.parts)
        if len(bounds) <= 1:
            scorer = ExampleScorer(target=worker_target(**{k: v for k, v in self.common().items()
                                                           if k != "multi_label"}),
                                   multi_label=self.target.multi_label)
            run = attack_examples(ta, recipe, scorer, examples=examples, seeds=seeds, originals=originals,
                                  query_budget=query_budget, time_budget_s=time_budget_s, progress=progress)
            # The driver's counters include the attack's passes, as when it scored through ctx.predict.
            self.target.stats.merge(scorer.target.stats)
            self.target.cache_hits += scorer.target.cache_hits
        else:
            jobs = [{"recipe": recipe.name, "examples": list(examples[a:b]), "seeds": list(seeds[a:b]),
                     "originals": list(originals[a:b]), "query_budget": query_budget,
                     "time_budget_s": time_budget_s} for a, b in bounds]
            self.chunks_sent += len(jobs)
            if self.engine is not None:
                runs = self.engine.map_tasks(attack_chunk, jobs, common=self.common(), threads=1)
            else:
                runs = list(self._local_pool().map(_pool_job, jobs))
            run = merge_runs(recipe.name, runs)
            # The workers' forward passes ran on their own model copies: not in the driver's pass counters.
            self.target.cache_hits += run.cache_hits
        run.seconds = time.perf_counter() - start
        return run

    def _local_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a forked child would inherit torch's thread pool and the driver's locks.
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_pool_init, initargs=(self.common(),))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


_WORKER_COMMON: dict[str, Any] = {}


def _pool_init(common: dict[str, Any]) -> None:
    """A local pool worker: one torch thread, tokenizers single-threaded, the model held once."""
    import torch

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    torch.set_num_threads(1)
    _WORKER_COMMON.update(common)


def _pool_job(job: dict[str, Any]) -> RecipeRun:
    return attack_chunk(**_WORKER_COMMON, **job)
