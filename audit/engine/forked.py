"""Independent CPU work over forked one-thread workers: :func:`fork_map`.

On a CPU, torch's two intra-op threads ran the attacks' and the sanity check's small passes only
1.3x faster than one thread on the 2-core box (bench/README.md), while two one-thread processes
run two items at once. Forking after the work is set up means the workers inherit everything
already loaded (the model, TextAttack, WordNet, a built recipe): a worker starts in milliseconds,
where a spawned one spent ~12 s importing and loading.

Every item runs on one torch thread, in a worker or here (one worker, or no fork): a row's logits
move by ~1e-6 with torch's thread count, so results do not depend on the number of workers.
Workers exist only on Linux (macOS's fork breaks system frameworks; Windows has none), not once
the process holds a CUDA context (a child cannot use it) and not in a Ray driver (nor do its gRPC
connections survive); elsewhere the items run in this process.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


# Set in an auditor's forked process (audit.core.side_by_side): the run's own default_workers(),
# since this process's torch has one thread but its one-thread workers may use every core.
_inherited_workers: int | None = None


def set_default_workers(workers: int | None) -> None:
    """Make :func:`default_workers` answer ``workers`` in this process (None: work it out)."""
    global _inherited_workers
    _inherited_workers = workers


def default_workers() -> int:
    """Workers when none are asked for: one per thread torch would use here (its intra-op
    default, which follows OMP_NUM_THREADS), within the CPUs this process may run on (torch is
    not imported for this: without it, the CPUs). In an auditor's forked process, the run's
    count (:func:`set_default_workers`): the attacks' one-thread workers then share every core
    with the auditors beside them (quick on MiniLM: robustness 29.5 s -> 21.9 s, the run 2 s
    shorter; bench/README.md, fourth round)."""
    if _inherited_workers is not None:
        return _inherited_workers
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    threads = int(torch.get_num_threads()) if torch is not None else cpus
    return max(1, min(threads, cpus))


def can_fork() -> bool:
    """Forked workers only where fork is safe: Linux, not once this process has a CUDA context, and
    not while it is a Ray driver (its gRPC threads and connections do not survive a fork)."""
    import multiprocessing

    if not (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()):
        return False
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():  # a child could not use the parent's CUDA context
        return False
    ray = sys.modules.get("ray")
    return not (ray is not None and getattr(ray, "is_initialized", lambda: False)())


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread for a block (restored after); nothing when torch is not loaded."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fork_map(fn: Callable[[int], T], n: int, *, workers: int, what: str,
             progress: Callable[..., Iterable[Any]] | None = None, desc: str = "",
             stop: Callable[[], bool] | None = None) -> list[T]:
    """``[fn(0), ..., fn(k-1)]`` over ``workers`` processes forked now (so ``fn`` and what it
    reads are inherited, never pickled; its results must pickle), each on one torch thread and
    handed one index at a time in order, so a quick item frees its worker for the next. With one
    worker, or where workers cannot fork, the items run here on one torch thread.

    ``stop()``, checked before each index is handed out, ends the run early: ``k`` is then the
    number of indices handed out (a prefix). A failing item, or a worker that dies, raises
    RuntimeError naming ``what`` and the index, after every worker is stopped."""
    workers = min(int(workers), n) if can_fork() else 1
    if workers <= 1:
        out: list[T] = []
        items: Iterable[int] = range(n)
        if progress is not None:
            items = progress(items, total=n, desc=desc)
        with one_torch_thread():
            for i in items:
                if stop is not None and stop():
                    break
                out.append(fn(i))
        return out
    return _forked(fn, n, workers=workers, what=what, progress=progress, desc=desc, stop=stop)


# How long the driver waits for its workers before doing a piece of its own work (``idle``).
IDLE_POLL_S = 0.05


def _forked(fn: Callable[[int], T], n: int, *, workers: int, what: str,
            progress: Callable[..., Iterable[Any]] | None, desc: str, stop: Callable[[], bool] | None,
            on_result: Callable[[int, T], None] | None = None,
            on_failure: Callable[[int, str], T] | None = None,
            on_message: Callable[[int, Any, Any], None] | None = None,
            daemon: bool = True, idle: Callable[[], bool] | None = None) -> list[T]:
    """:func:`fork_map`'s workers. The hooks serve :func:`audit.core.side_by_side.run_side_by_side`:
    ``on_result(i, value)`` as each item arrives; ``on_failure(i, message)``, when given, turns a
    failing item, or a worker that died on it, into its value instead of an error (a dead worker is
    replaced while items remain); ``on_message(worker, message, conn)`` receives what a worker sends
    with :mod:`audit.core.bars` (only when ``on_message`` is given), ``conn`` to answer what it asks;
    ``daemon=False`` lets workers fork workers of their own. ``idle()``, when given, is called
    whenever no worker has said anything for :data:`IDLE_POLL_S`, to do one short piece of the
    driver's own work; it returns whether more is left (after a message it is asked again)."""
    import multiprocessing
    import warnings
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    procs: dict[Any, Any] = {}  # connection -> its process
    slot: dict[Any, int] = {}  # connection -> the worker's number, for on_message
    results: dict[int, T] = {}
    busy: dict[Any, int] = {}
    handed = 0

    def spawn() -> Any:
        parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
        # Set, the tokenizers library turns its threads off in the child without printing a warning.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12: fork with threads
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(theirs, fn, on_message is not None), daemon=daemon,
                                   name=f"rai-audit {what}")
                proc.start()
                theirs.close()
        finally:
            if parallelism is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = parallelism
        procs[ours] = proc
        slot[ours] = len(slot)
        return ours

    def more() -> bool:
        return handed < n and not (stop is not None and stop())

    def hand_out(conn: Any) -> None:
        nonlocal handed
        if more():
            conn.send(handed)
            busy[conn] = handed
            handed += 1
        else:
            conn.send(None)

    def replace(conn: Any) -> None:
        """A worker that stopped: gone, and another forked while items remain."""
        proc = procs.pop(conn)
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
        conn.close()
        if on_message is not None:
            on_message(slot[conn], ("done",), None)
        if more():
            hand_out(spawn())

    def settle(i: int, value: T) -> None:
        results[i] = value
        if on_result is not None:
            on_result(i, value)

    def finished() -> Iterator[int]:
        for conn in [spawn() for _ in range(workers)]:
            hand_out(conn)
        more_idle = idle is not None
        while busy:
            ready = wait(list(busy), timeout=IDLE_POLL_S if more_idle else None)
            if not ready and idle is not None:
                more_idle = bool(idle())
                continue
            more_idle = idle is not None
            for conn in ready:
                i = busy[conn]
                try:
                    reply = conn.recv()
                except EOFError:
                    procs[conn].join(timeout=5)
                    reply = ("died", f"exited with code {procs[conn].exitcode}", False)
                if reply[0] == "msg":
                    if on_message is not None:
                        on_message(slot[conn], reply[1], conn)
                    continue
                busy.pop(conn)
                if reply[0] == "ok":
                    settle(i, reply[1])
                else:
                    message = (f"a worker ({what}) {reply[1]} on item {i}" if reply[0] == "died"
                               else f"a worker ({what}) failed on item {i}: {reply[1]}")
                    if on_failure is None:
                        raise RuntimeError(message)
                    settle(i, on_failure(i, message))
                if reply[0] == "ok" or reply[2]:  # the worker goes on
                    hand_out(conn)
                else:  # it died, or stopped on an interrupt or exit inside the item
                    replace(conn)
                yield i

    complete = False
    try:
        items: Iterable[int] = finished()
        if progress is not None:
            items = progress(items, total=n, desc=desc)
        for _ in items:
            pass
        complete = True
    finally:
        # Done, every worker was sent None and exits; on an error or a timeout, stop them now.
        for conn, proc in procs.items():
            if complete:
                proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            conn.close()
    return [results[i] for i in range(handed)]


def _worker(conn: Any, fn: Callable[[int], Any], sink: bool) -> None:
    """A forked worker: one torch thread; runs ``fn`` on each index it is sent and replies with
    the result, until it is sent None. With ``sink``, its progress bars and lines go to the
    parent (:mod:`audit.core.bars`); without, none it inherited points there."""
    import traceback

    from audit.core import bars

    bars.set_sink(conn if sink else None)
    _die_with_parent()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)

    def told(exc: BaseException) -> str:
        return "".join(traceback.format_exception_only(exc)).strip()[:500]

    try:
        while (i := _next_index(conn)) is not None:
            try:
                reply: tuple[Any, ...] = ("ok", fn(i))
            except Exception as exc:  # noqa: BLE001 - reported to the driver; this worker goes on
                reply = ("error", told(exc), True)
            with bars._lock:  # a bar's message and a result never interleave on the connection
                try:
                    conn.send(reply)
                except Exception as exc:  # noqa: BLE001 - a result that does not pickle (a broken pipe raises again)
                    conn.send(("error", f"its result could not be sent back: {told(exc)}", True))
    except BaseException as exc:  # noqa: BLE001 - an interrupt or exit inside an item: this worker stops
        with contextlib.suppress(OSError, ValueError):
            conn.send(("error", told(exc), False))
    finally:
        conn.close()


def _next_index(conn: Any) -> int | None:
    """The next index (None: stop); a late answer to a question an item abandoned is dropped."""
    while isinstance(message := conn.recv(), tuple):
        pass
    return message  # type: ignore[no-any-return]


def _die_with_parent() -> None:
    """Linux: this worker gets SIGTERM when the process that forked it dies (a killed audit leaves
    no worker computing for nobody); nothing elsewhere."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
