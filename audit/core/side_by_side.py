"""Auditors side by side: after the shared prediction pass, the auditors run in processes forked
from the run (each inherits the loaded model, the data and the predictions), one torch thread
each, the longest chain first, each process taking the next auditor when it finishes one.

An auditor that ``consumes`` another's results may start before they exist: ``ctx.upstream`` in
its process asks this one for a result when the auditor first reads it, and waits for it. So an
auditor does its own work first and reads ``ctx.upstream`` last (explainability explains its
sampled rows while robustness attacks, then the rows the attacks flipped). Auditors are handed out
in an order where every auditor comes after those it consumes, so the one it waits for is always
already running: no wait can deadlock.

Why (bench/README.md, fourth round): on the 2-core box torch's two threads ran explainability
only 1.25x and robustness 1.55x faster than one thread, and a quick audit spent a third of its
time on one core (importing TextAttack, building WordNet, the attacks' last example, the fairness
and privacy bootstraps). Two one-thread processes, each running its own auditors, keep both cores
busy.

Only on a CPU and where :func:`audit.engine.forked.can_fork` (Linux, no CUDA context, no Ray
driver), and by default only when there are at least as many auditors to run as CPUs: each
auditor then has a core of its own. With more CPUs than auditors they run one after another here
with every thread, as before. Torch cannot use more than one thread in a process forked after it
ran on several (GNU OpenMP hangs), hence one thread each.

What an auditor computes does not depend on where it ran, beyond torch's thread count (a row's
logits move by ~1e-6 between one and two threads, as between machines). A process that dies
fails its auditors' sections, named, and the others are kept; an auditor's bad-input error ends
the run as it would one after another.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from audit.auditors.base import Auditor
from audit.core.results import AuditorResult
from audit.errors import AuditInputError

WAIT_SHOWN_S = 0.01  # a shorter wait for another auditor's result (an answer at hand) is not reported


def processes_for(requested: int, auditors: int, target: Any) -> int:
    """How many processes run ``auditors`` auditors: ``requested`` (1: one after another here), or
    with 0 the CPUs torch would use when they are no more than the auditors (else 1); never more
    than the auditors, and 1 where auditors cannot run forked (not on a CPU, on Ray, off Linux)."""
    from audit.engine.forked import can_fork, default_workers

    if auditors < 2 or requested == 1:
        return 1
    if getattr(target, "device", "cpu") != "cpu" or getattr(target, "engine", None) is not None or not can_fork():
        return 1
    if requested == 0:
        cpus = default_workers()
        return cpus if 2 <= cpus <= auditors else 1
    return min(int(requested), auditors)


def cost(auditor: Auditor) -> float:
    """The auditor's declared ``cost``, positive (a plugin's odd value counts as 1)."""
    try:
        value = float(getattr(auditor, "cost", 1.0))
    except Exception:  # noqa: BLE001 - not a number, or too large an int for a float: an ordinary cost
        return 1.0
    return min(max(value, 1e-3), 1e6) if value == value else 1.0


def hand_out_order(auditors: list[Auditor]) -> list[int]:
    """Indices of ``auditors`` (in run order) in the order they are handed out: the longest chain of
    consumers first (an auditor's cost plus its costliest consumer's chain), ties in run order.
    Every auditor comes after those it consumes (its chain is longer by its own positive cost)."""
    names = {a.name: i for i, a in enumerate(auditors)}
    consumers: dict[int, list[int]] = {i: [] for i in range(len(auditors))}
    for i, a in enumerate(auditors):
        for other in getattr(a, "consumes", ()) or ():
            if other in names and names[other] != i:
                consumers[names[other]].append(i)
    chain: dict[int, float] = {}
    for i in reversed(range(len(auditors))):  # run order is topological: consumers come later
        chain[i] = cost(auditors[i]) + max((chain[j] for j in consumers[i]), default=0.0)
    return sorted(range(len(auditors)), key=lambda i: (-chain[i], i))


class Upstream(Mapping[str, Any]):
    """``ctx.upstream`` in a forked auditor process: the ``ok`` results of the auditors ``names``
    (what the running one consumes), each asked of the parent when first read, waiting for it."""

    def __init__(self, names: set[str], known: dict[str, AuditorResult]) -> None:
        self._names = names
        self._got: dict[str, AuditorResult | None] = {n: (r if r.status == "ok" else None)
                                                      for n, r in known.items() if n in names}
        self.waited = 0.0  # seconds spent waiting for results, outside the auditor's --timeout

    def _get(self, name: str) -> AuditorResult | None:
        if name not in self._names:
            return None
        if name not in self._got:
            import signal
            import time

            from audit.core.bars import ask

            # --timeout is the auditor's own time: its clock stops while it waits for another's.
            left = signal.getitimer(signal.ITIMER_REAL)[0] if hasattr(signal, "getitimer") else 0.0
            if left:
                signal.setitimer(signal.ITIMER_REAL, 0)
            start = time.perf_counter()
            try:
                result = ask(("need", name))
            finally:
                self.waited += time.perf_counter() - start
                if left:
                    signal.setitimer(signal.ITIMER_REAL, left)
            self._got[name] = result
        return self._got[name]

    def __getitem__(self, name: str) -> AuditorResult:
        result = self._get(name)
        if result is None:
            raise KeyError(name)
        return result

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in sorted(self._names) if self._get(n) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def run_side_by_side(auditors: list[Auditor], *, processes: int, target: Any,
                     run_one: Callable[[Auditor, Mapping[str, AuditorResult]], AuditorResult],
                     known: dict[str, AuditorResult], on_done: Callable[[AuditorResult], None],
                     say: Callable[[str], None], progress: bool,
                     idle: Callable[[], bool] | None = None) -> list[AuditorResult]:
    """Run ``auditors`` (in run order) in ``processes`` forked processes; ``run_one(auditor,
    upstream)`` runs one given its upstream mapping. ``known``: results there before (resumed or
    broken plugins). Calls ``on_done`` here as each result arrives and adds each process's engine
    counters to ``target``'s. ``idle()``: a short piece of this process's own work, done while the
    processes work and none has anything to say (:func:`audit.engine.forked._forked`); it returns
    whether more is left. Returns the results in run order."""
    from audit.core.bars import Board
    from audit.core.bars import say as tell_parent
    from audit.engine.forked import _forked, default_workers, set_default_workers

    order = hand_out_order(auditors)
    names = {a.name for a in auditors}
    workers = default_workers()

    def item(k: int) -> tuple[Any, ...]:
        set_default_workers(workers)  # this process's one-thread workers (the attacks') may use every core
        auditor = auditors[order[k]]
        hits = _fresh_counters(target)
        tell_parent(f"running {auditor.name}")
        upstream = Upstream(set(auditor.consumes) & (names | set(known)), known)
        try:
            result = run_one(auditor, upstream)
        except AuditInputError as exc:  # the user's mistake: raised by the run, as one after another
            return ("input", str(exc))
        except KeyboardInterrupt:  # an interrupt ends the run, as one after another (finished sections kept)
            return ("interrupt",)
        if upstream.waited >= WAIT_SHOWN_S:  # its own time in "total"; the wait for another's results beside it
            total = result.timings.get("total", 0.0)
            result = result.replace(timings={**result.timings, "total": max(0.0, total - upstream.waited),
                                             "upstream_wait": upstream.waited})
        return ("ok", _portable(result), None if target is None else (target.stats, target.cache_hits - hits))

    board = Board(enabled=progress, say=say)
    arrived: dict[str, AuditorResult] = {}
    waiting: dict[str, list[tuple[int, Any, Any]]] = {}  # name -> (worker, its connection, request id)

    def answer(conn: Any, name: str, request: Any) -> None:
        result = arrived.get(name) or known.get(name)
        with contextlib.suppress(OSError, ValueError):  # a process that died meanwhile asks nothing more
            conn.send(("answer", request, result if result is not None and result.status == "ok" else None))

    def on_message(worker: int, message: tuple[Any, ...], conn: Any) -> None:
        if message[0] == "done":  # that process is gone: nothing it asked is answered
            board.worker_done(worker)
            for name in list(waiting):
                waiting[name] = [w for w in waiting[name] if w[0] != worker]
        elif message[0] == "need":
            name, request = str(message[1]), message[2]
            if name in arrived or name in known or name not in names:
                answer(conn, name, request)
            else:
                waiting.setdefault(name, []).append((worker, conn, request))
        else:
            board.handle(worker, message)

    def on_result(k: int, value: tuple[Any, ...]) -> None:
        if value[0] == "input":
            raise AuditInputError(value[1])
        if value[0] == "interrupt":
            raise KeyboardInterrupt
        _, result, counters = value
        if isinstance(result, bytes):
            result = pickle.loads(result)  # noqa: S301 - our own forked process's result
        if counters is not None:  # this process's passes and cache hits, counted in the run's
            target.stats.merge(counters[0])
            target.cache_hits += counters[1]
        arrived[result.auditor] = result
        on_done(result)
        for _, conn, request in waiting.pop(result.auditor, []):
            answer(conn, result.auditor, request)

    def on_failure(k: int, message: str) -> tuple[Any, ...]:
        return ("ok", AuditorResult(auditor=auditors[order[k]].name, status="failed",
                                    reason=f"its process failed: {message}"), None)

    try:
        _forked(item, len(auditors), workers=processes, what="auditors", progress=None, desc="", stop=None,
                on_result=on_result, on_failure=on_failure, on_message=on_message, daemon=False, idle=idle)
    finally:
        board.close()
    return [arrived[a.name] for a in auditors]


def _portable(result: AuditorResult) -> bytes:
    """The result pickled for the parent; one holding what does not pickle (a plugin's lambda in
    ``extra``) travels as its reported form (``to_dict``, as --resume stores it), which is what
    results.json and the report show of it one after another too."""
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - any pickling error: the reported form instead
        return pickle.dumps(AuditorResult.from_dict(result.to_dict()), protocol=pickle.HIGHEST_PROTOCOL)


def _fresh_counters(target: Any) -> int:
    """Start this process's engine counters from zero (its passes are merged into the run's with
    :meth:`audit.engine.inference.PassStats.merge`); returns the cache hits so far."""
    if target is None:
        return 0
    from audit.engine.inference import PassStats

    target.stats = PassStats()
    return int(target.cache_hits)
