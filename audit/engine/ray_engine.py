"""The Ray engine (``--engine ray``): the audit's forward passes and its multiplying loops on a
Ray cluster, or on a Ray instance started on this machine, through one code path.

Every Ray import lives in this module and happens when it is asked for, never when
``audit`` is imported: a local audit does not import Ray at all.

What is distributed (see the README's "Running on a cluster"):

* **The shared prediction pass** of both tasks (:meth:`RayEngine.forward_batches`, the drop-in
  for :func:`audit.engine.inference._forward_batches`). The driver tokenises and plans the
  batches exactly as the local engine does (:func:`audit.engine.inference.plan_batches`: token
  budget, longest rows first); each planned batch becomes one row of a Ray dataset, scored by
  ``map_batches`` with a callable class held by an actor pool (one copy of the model per actor,
  ``num_gpus=1`` per actor when the cluster has GPUs). Results come back keyed by their batch
  number and are put back in input order, because Ray Data does not keep order. Planning on the
  driver is what makes the logits *byte-identical* to the local engine: a row's logits move by
  ~1e-6 when its batch is padded to another width (measured on the demo model), so an actor
  that re-batched its rows would change the last bits of some probabilities, and with them,
  rarely, a tie in a ranking. Every auditor that calls ``ctx.predict`` / ``ctx.predict_words``
  is distributed without knowing it, through :class:`audit.engine.target.Target`'s cache.
* **Independent jobs** (:meth:`RayEngine.map_tasks`): the privacy auditor's online LiRA
  reference models, one Ray task per model; the robustness auditor's TextAttack attacks, one Ray
  task per contiguous chunk of a recipe's examples (:mod:`audit.auditors.robustness._attack_chunks`).

A pass of fewer than ``min_rows`` rows runs on the driver: starting a Ray Data job costs
seconds (12 s measured on this shared 2-core machine), which TextAttack's thousands of small
queries would pay each time. The result is the same either way, because the batches are the same.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from audit.engine.inference import Encoded, PassStats, _forward_batches, _torch_threads, batch_cost_for, plan_batches
from audit.errors import AuditInputError

RAY_MISSING = ("option engine: 'ray' needs the Ray package, which is not installed here; "
               "install it with: pip install 'rai-audit[ray]'")
RAY_UNREACHABLE = "option ray_address: cannot reach a Ray cluster at {address}: {problem}"
# A dead actor is restarted and its batch retried this many times before the audit fails (Ray
# Data's default is forever, which would hang an audit whose model kills every actor).
ACTOR_RETRIES = 3
# Rows of a pass below which it runs on the driver (see the module docstring; bench/README.md
# has the crossover measured on this machine).
DEFAULT_MIN_ROWS = 2048
# Fault injection for the tests: when this variable (in the driver's environment) names a file
# that exists, the first actor call that manages to delete it kills its own process, once; Ray
# must restart the actor and retry the batch, and the audit's numbers must not change.
DIE_ONCE_ENV = "RAI_AUDIT_RAY_DIE_ONCE"
_LOCAL_ADDRESS = "local"  # how a Ray instance this engine started itself is recorded


def import_ray() -> Any:
    """The ``ray`` module, or the one-line install hint (exit 2) when it is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401 - ray[data]: the extra is what we need, not bare ray
    except ImportError:
        raise AuditInputError(RAY_MISSING) from None
    return ray


@dataclass(kw_only=True)
class RayEngine:
    """A connection to Ray and the work this audit sent through it. Use :meth:`start`."""

    address: str
    started: bool  # this engine started (and so stops) the Ray instance
    actors: int | None = None  # actor-pool size; None: one per GPU, else one per `threads` CPUs
    min_rows: int = DEFAULT_MIN_ROWS
    rows_per_node: dict[str, int] = field(default_factory=dict)
    distributed_passes: int = 0
    tasks: int = 0
    startup_s: float = 0.0  # seconds from submitting a distributed pass to its first batch, summed
    pass_s: float = 0.0  # seconds of the distributed passes, summed
    _model_ref: Any = None
    _model_id: int = 0

    @classmethod
    def start(cls, *, address: str | None = None, actors: int | None = None,
              min_rows: int = DEFAULT_MIN_ROWS) -> RayEngine:
        """Connect to the cluster at ``address`` ("auto": the one ``ray start --head`` started on
        this machine, or ``host:port``), or start a local Ray instance with this machine's CPUs and
        GPUs when ``address`` is None. A Ray already initialised in this process is reused (and
        left running). An unreachable cluster is a one-line AuditInputError naming the address."""
        ray = import_ray()
        if ray.is_initialized():
            _quiet_ray_data(ray)
            return cls(address=address or _LOCAL_ADDRESS, started=False, actors=actors, min_rows=min_rows)
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                  "log_to_driver": False}
        try:
            if address is not None:
                _probe(_bootstrap_address(address))
            ray.init(address=address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AuditInputError(RAY_UNREACHABLE.format(address=address or _LOCAL_ADDRESS, problem=problem)) from None
        _quiet_ray_data(ray)
        return cls(address=address or _LOCAL_ADDRESS, started=True, actors=actors, min_rows=min_rows)

    def stop(self) -> None:
        """Shut Ray down if this engine started it; drop the model from the object store."""
        self._model_ref = None
        if self.started:
            import ray

            ray.shutdown()

    def info(self) -> dict[str, Any]:
        """What the audit's metadata records about the engine (not compared between engines)."""
        return {"kind": "ray", "address": self.address, "min_rows": self.min_rows,
                "distributed_passes": self.distributed_passes, "tasks": self.tasks,
                "startup_s": round(self.startup_s, 3), "pass_s": round(self.pass_s, 3),
                "rows_per_node": dict(sorted(self.rows_per_node.items()))}

    def _resources(self, threads: int) -> tuple[int, float, float]:
        """(actors, CPUs per actor, GPUs per actor) for the pool: one actor per GPU when the cluster
        has GPUs, else one per ``threads`` CPUs (each actor runs torch on ``threads`` threads, as
        the driver would, so its arithmetic is the driver's); ``actors`` overrides the count."""
        import ray

        total = ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus:
            return self.actors or gpus, 1.0, 1.0
        cpus = max(1, int(total.get("CPU", 1)))
        per_actor = min(threads, cpus)
        return self.actors or max(1, cpus // per_actor), float(per_actor), 0.0

    def _model(self, model: Any) -> Any:
        """The model in the object store, put there once per model (each actor loads it once)."""
        import ray

        if self._model_ref is None or self._model_id != id(model):
            self._model_ref = ray.put(model)
            self._model_id = id(model)
        return self._model_ref

    def forward_batches(self, model: Any, enc: Encoded, *, pad_id: int, max_tokens: int, max_batch: int,
                        device: str, dtype: str, progress: bool, desc: str, stats: PassStats | None,
                        num_threads: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:func:`audit.engine.inference._forward_batches` on the cluster: the same planned
        batches, each forwarded by an actor; yields (row indices, logits) per batch."""
        n = len(enc.input_ids)
        if n < self.min_rows:
            yield from _forward_batches(model, enc, pad_id=pad_id, max_tokens=max_tokens, max_batch=max_batch,
                                        device=device, dtype=dtype, progress=progress, desc=desc, stats=stats)
            return
        import ray
        import torch

        stats = stats if stats is not None else PassStats()
        threads = num_threads or torch.get_num_threads()
        actors, cpus, gpus = self._resources(threads)
        # Planned for the device the actors run on (a GPU's batches are filled; a CPU's are cut
        # where padding costs more than a batch, as the local engine's on this device).
        plan = plan_batches(enc.lengths, max_tokens=max_tokens, max_batch=max_batch,
                            batch_cost=batch_cost_for("cuda" if gpus else device))
        tt = enc.token_type_ids
        # One dataset row per planned batch: its token ids, pickled (our own data, in our own cluster).
        items = [{"batch": k, "payload": pickle.dumps(([enc.input_ids[i] for i in rows],
                                                        None if tt is None else [tt[i] for i in rows]))}
                 for k, rows in enumerate(plan)]
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), actors * 4))
        with warnings.catch_warnings():
            # Ray 2.60 deprecates passing max_restarts/max_task_retries as remote args, and names no
            # replacement for actors yet; without them Ray Data retries a dying actor forever.
            warnings.simplefilter("ignore")
            ds = ds.map_batches(
                _Forward, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                fn_constructor_kwargs={"model": self._model(model), "pad_id": pad_id, "dtype": dtype,
                                       "threads": threads, "gpu": gpus > 0,
                                       "die_once": os.environ.get(DIE_ONCE_ENV)},
                num_cpus=cpus, num_gpus=gpus or None,
                max_restarts=ACTOR_RETRIES, max_task_retries=ACTOR_RETRIES)
        self.distributed_passes += 1
        start, first = time.perf_counter(), True
        for out in ds.iter_batches(batch_format="numpy", batch_size=None):
            if first:
                self.startup_s += time.perf_counter() - start
                first = False
            for k, blob in zip(out["batch"], out["result"], strict=True):
                logits, oom, node = pickle.loads(blob)
                rows = plan[int(k)]
                stats.batches += 1
                stats.oom_backoffs += oom
                stats.padded_tokens += len(rows) * int(max(enc.lengths[rows]))
                stats.real_tokens += int(enc.lengths[rows].sum())
                self.rows_per_node[node] = self.rows_per_node.get(node, 0) + len(rows)
                yield rows, logits
        stats.rows += n
        self.pass_s += time.perf_counter() - start

    def parallelism(self) -> int:
        """The cluster's CPUs: how many one-CPU tasks (:meth:`map_tasks`) can run at once."""
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def map_tasks(self, fn: Callable[..., Any], jobs: Sequence[dict[str, Any]], *, common: dict[str, Any],
                  threads: int) -> list[Any]:
        """``[fn(**common, **job) for job in jobs]``, each call a Ray task (retried if its worker
        dies), results in the order of ``jobs``. ``common`` travels once, through the object store;
        each task runs torch on ``threads`` threads, as the driver would, so results are the same."""
        import ray

        if not jobs:
            return []
        remote = ray.remote(_call_with_threads).options(num_cpus=1, max_retries=ACTOR_RETRIES)
        common_ref = ray.put(common)
        refs = [remote.remote(fn, threads, common_ref, job) for job in jobs]
        self.tasks += len(refs)
        return ray.get(refs)


# Seconds to wait for a cluster's head to accept a connection before calling it unreachable: Ray's
# own client retries an unreachable address for minutes (over 5 measured here).
CONNECT_TIMEOUT_S = 5.0


def _bootstrap_address(address: str) -> str:
    """host:port of the head node that ``address`` names ("auto": the one recorded by ``ray start``)."""
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address_or_die

        return str(canonicalize_bootstrap_address_or_die("auto"))
    return address.split("://", 1)[-1]


def _probe(address: str) -> None:
    """Raise ConnectionError unless something accepts a TCP connection at ``address`` within
    CONNECT_TIMEOUT_S."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConnectionError("expected 'auto' or host:port")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
        pass


def _call_with_threads(fn: Callable[..., Any], threads: int, common: dict[str, Any], job: dict[str, Any]) -> Any:
    import torch

    torch.set_num_threads(threads)
    return fn(**common, **job)


def _quiet_ray_data(ray: Any) -> None:
    """No progress bars or per-dataset INFO lines from Ray Data in the audit's output."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # e.g. "Progress bars disabled", at WARNING
    logging.getLogger("ray").setLevel(logging.WARNING)


class _Forward:
    """The callable class of the actor pool: holds one copy of the model (loaded once per actor),
    forwards each planned batch through :func:`audit.engine.inference._forward_batches` (so the
    out-of-memory halving is the local engine's), and returns its logits padded as one batch."""

    def __init__(self, *, model: Any, pad_id: int, dtype: str, threads: int, gpu: bool,
                 die_once: str | None = None) -> None:
        import ray

        if isinstance(model, ray.ObjectRef):
            model = ray.get(model)
        self.device = "cuda" if gpu else "cpu"
        self.model = model.to(self.device).eval()
        self.pad_id, self.dtype, self.threads = pad_id, dtype, threads
        self.node = ray.get_runtime_context().get_node_id()
        self.die_once = die_once

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        _maybe_die(self.die_once)
        results = []
        for blob in batch["payload"]:
            ids, tt = pickle.loads(blob)
            enc = Encoded(input_ids=ids, token_type_ids=tt, truncated=np.zeros(len(ids), dtype=bool))
            lengths = enc.lengths
            stats = PassStats()
            # The rows arrive longest first, as the driver planned them: one batch, padded to the
            # first row's length, exactly as the local engine pads it.
            budget = len(ids) * max(int(lengths.max()), 1)
            parts = []
            with _torch_threads(self.threads):
                for rows, logits in _forward_batches(self.model, enc, pad_id=self.pad_id, max_tokens=budget,
                                                     max_batch=len(ids), device=self.device, dtype=self.dtype,
                                                     progress=False, desc="", stats=stats):
                    parts.append((rows, logits))
            results.append(pickle.dumps((_assemble(parts, len(ids)), stats.oom_backoffs, self.node)))
        return {"batch": batch["batch"], "result": np.array(results, dtype=object)}


def _assemble(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """One batch's logits from the pieces an out-of-memory halving split it into (padded with
    zeros to the widest piece for a token classifier, as one batch would be)."""
    if len(parts) == 1 and np.array_equal(parts[0][0], np.arange(n)):
        return parts[0][1]
    first = parts[0][1]
    if first.ndim == 2:  # one row of logits per text
        out = np.zeros((n, first.shape[1]), dtype=first.dtype)
        for rows, logits in parts:
            out[rows] = logits
        return out
    out = np.zeros((n, max(p[1].shape[1] for p in parts), first.shape[2]), dtype=first.dtype)
    for rows, logits in parts:
        out[rows, : logits.shape[1]] = logits
    return out


def _maybe_die(flag: str | None) -> None:
    """Fault injection for the tests (see DIE_ONCE_ENV): the first call that deletes the flag
    file kills its own process, as an out-of-memory kill would."""
    if not flag:
        return
    try:
        os.remove(flag)
    except FileNotFoundError:
        return
    os._exit(1)
