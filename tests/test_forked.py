"""fork_map: independent items over forked one-thread workers, results in order, the same in one
process; a failing item or a dead worker stops the run with an error naming both."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import torch

from audit.engine import forked


def _item(i: int) -> tuple[int, int, int]:
    time.sleep(0.02 * (i % 3))  # uneven items: a quick one frees its worker for the next
    return i * i, os.getpid(), torch.get_num_threads()


@pytest.mark.parametrize("workers", [1, 3])
def test_results_come_back_in_order_on_one_torch_thread(workers: int) -> None:
    threads = torch.get_num_threads()
    out = forked.fork_map(_item, 10, workers=workers, what="test")
    assert [v for v, _, _ in out] == [i * i for i in range(10)]
    assert {t for _, _, t in out} == {1}  # every item on one torch thread, here or in a worker
    pids = {p for _, p, _ in out}
    assert (pids == {os.getpid()}) if workers == 1 else (os.getpid() not in pids and len(pids) == 3)
    assert torch.get_num_threads() == threads  # restored here
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("workers", [1, 2])
def test_stop_ends_the_run_after_a_prefix(workers: int) -> None:
    handed: list[int] = []

    def stop() -> bool:
        handed.append(1)
        return len(handed) > 4  # four indices handed out, then no more

    out = forked.fork_map(_item, 10, workers=workers, what="test", stop=stop)
    assert [v for v, _, _ in out] == [0, 1, 4, 9]
    assert not multiprocessing.active_children()


def _fails_at_two(i: int) -> int:
    if i == 2:
        raise ValueError("planted")
    return i


def _dies_at_two(i: int) -> int:
    if i == 2:
        os._exit(7)
    return i


@pytest.mark.parametrize(("fn", "message"), [
    (_fails_at_two, r"a worker \(test\) failed on item 2: ValueError: planted"),
    (_dies_at_two, r"a worker \(test\) exited with code 7 on item 2")])
def test_a_failing_or_dying_worker_raises_a_named_error_and_no_worker_is_left(fn: object, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        forked.fork_map(fn, 6, workers=2, what="test")  # type: ignore[arg-type]
    assert not multiprocessing.active_children()


def test_without_fork_the_items_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forked, "can_fork", lambda: False)
    out = forked.fork_map(_item, 4, workers=4, what="test")
    assert {p for _, p, _ in out} == {os.getpid()} and [v for v, _, _ in out] == [0, 1, 4, 9]


def test_a_ray_driver_does_not_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    fake = types.SimpleNamespace(is_initialized=lambda: True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert not forked.can_fork()
    out = forked.fork_map(_item, 3, workers=3, what="test")
    assert {p for _, p, _ in out} == {os.getpid()}
    fake.is_initialized = lambda: False
    assert forked.can_fork()


def test_a_process_with_a_cuda_context_does_not_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert not forked.can_fork()
    assert {p for _, p, _ in forked.fork_map(_item, 3, workers=3, what="test")} == {os.getpid()}
