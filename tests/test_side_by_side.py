"""Auditors side by side (audit.core.side_by_side): the hand-out order respects ``consumes``, the
number of processes, a consumer that starts before its upstream finished and still reads it, a dying
process, a bad-input error, engine counters, the same results as one after another, progress lines
and bars drawn by the parent, timeouts in a child and forking inside a child.

Over ~400 lines because each behaviour needs its own small fake auditors (slow upstreams, dying,
interrupted and counting ones) beside the test that uses them; one file keeps the protocol's tests
together."""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from audit.auditors.base import Auditor
from audit.config import AuditConfig
from audit.core import side_by_side
from audit.core.context import AuditContext
from audit.core.results import AuditorResult, Metric
from audit.core.side_by_side import hand_out_order, processes_for, run_side_by_side
from audit.engine import forked
from audit.engine.inference import PassStats
from audit.errors import AuditInputError
from audit.runner import _run_with_timeout

# --------------------------------------------------------------------------- helpers


def _target(**stats: int) -> SimpleNamespace:
    return SimpleNamespace(stats=PassStats(**stats), cache_hits=0, device="cpu", engine=None)


def _ctx(target: Any = None, *, seed: int = 0, progress: bool = False) -> AuditContext:
    return AuditContext(config=AuditConfig(model="m", data="d.csv", seed=seed), target=target, data=None,
                        progress_enabled=progress)


def _run_one_for(ctx: AuditContext, timeouts: Mapping[str, float] | None = None) -> Any:
    """The runner's run_one: ctx.upstream set around the auditor's run (with a timeout if given)."""
    def run_one(auditor: Auditor, upstream: Mapping[str, AuditorResult]) -> AuditorResult:
        ctx.upstream = upstream
        try:
            return _run_with_timeout(auditor, ctx, (timeouts or {}).get(auditor.name))
        finally:
            ctx.upstream = {}
    return run_one


def _side_by_side(auditors: list[Auditor], ctx: AuditContext, *, processes: int = 2,
                  known: dict[str, AuditorResult] | None = None, timeouts: Mapping[str, float] | None = None,
                  say: Any = None, progress: bool = False) -> tuple[list[AuditorResult], list[AuditorResult]]:
    done: list[AuditorResult] = []
    out = run_side_by_side(auditors, processes=processes, target=ctx.target, run_one=_run_one_for(ctx, timeouts),
                           known=dict(known or {}), on_done=done.append, say=say or (lambda _line: None),
                           progress=progress)
    return out, done


def _sequential(auditors: list[Auditor], ctx: AuditContext,
                known: dict[str, AuditorResult] | None = None) -> list[AuditorResult]:
    """What the runner does with one process: run order, a dict of the ok results consumed."""
    known = dict(known or {})
    run_one = _run_one_for(ctx)
    ran = []
    for auditor in auditors:
        result = run_one(auditor, {n: r for n, r in known.items() if n in auditor.consumes and r.status == "ok"})
        known[auditor.name] = result
        ran.append(result)
    return ran


def _no_children_left() -> None:
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def _comparable(result: AuditorResult) -> tuple[Any, ...]:
    return (result.auditor, result.status, result.reason, result.metrics, result.extra)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """What an auditor's first run imports (torch for seeding, the results schema) loaded here once,
    so that forked processes start in milliseconds rather than each importing it."""
    _sequential([_quick("warm")()], _ctx(_target()))


# The consumer in the upstream test creates this file when it starts; the upstream waits for it (up
# to 5 s) before it ends, so "started before its upstream finished" holds on a loaded box, and fails
# when the consumer cannot start until its upstream finished.
STARTED: dict[str, str] = {}


# --------------------------------------------------------------------------- fake auditors


class Slow(Auditor):
    """An upstream: sleeps, reports a value."""

    name = "slow"
    cost = 10.0
    seconds = 0.5
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        start = time.time()
        time.sleep(self.seconds)
        marker = STARTED.get("path")
        while marker and not os.path.exists(marker) and time.time() < start + 5:
            time.sleep(0.01)
        return AuditorResult(auditor=self.name, metrics=(Metric("value", 42.0),),
                             extra={"start": start, "end": time.time(), "pid": os.getpid()})


class FailingSlow(Slow):
    name = "failing_slow"

    def _run(self, ctx: AuditContext) -> AuditorResult:
        time.sleep(0.3)
        raise ValueError("planted")


class ReadsUpstream(Auditor):
    """A consumer: notes when it started, then reads every upstream it consumes (last, as advised)."""

    name = "reads_slow"
    consumes = frozenset({"slow"})
    cost = 1.0
    metric_names = frozenset({"got"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        start = time.time()
        if STARTED.get("path"):
            open(STARTED["path"], "w").close()  # noqa: SIM115
        got = {}
        for name in sorted(self.consumes):
            upstream = ctx.upstream.get(name)
            got[name] = None if upstream is None else [upstream.auditor, upstream.metrics[0].value]
        return AuditorResult(auditor=self.name, metrics=(Metric("got", float(len([g for g in got.values() if g]))),),
                             extra={"start": start, "end": time.time(), "got": got,
                                    "in": {n: n in ctx.upstream for n in sorted(self.consumes)},
                                    "pid": os.getpid()})


class ReadsFailing(ReadsUpstream):
    name = "reads_failing"
    consumes = frozenset({"failing_slow"})


def _quick(name: str, *, cost: float = 1.0, value: float = 1.0, consumes: frozenset[str] = frozenset()) -> type:
    def _run(self: Auditor, ctx: AuditContext) -> AuditorResult:
        return AuditorResult(auditor=self.name, metrics=(Metric("value", value),), extra={"pid": os.getpid()})
    return type(f"Quick_{name}", (Auditor,), {"name": name, "cost": cost, "consumes": consumes,
                                              "metric_names": frozenset({"value"}), "_run": _run})


# --------------------------------------------------------------------------- 1. hand_out_order

# a cost and what it counts for: positive, clamped to [1e-3, 1e6]; what is not a number, or NaN, as 1
COSTS: list[tuple[Any, float]] = [(0, 1e-3), (-2.0, 1e-3), (float("nan"), 1.0), ("abc", 1.0), ("2.5", 2.5),
                                  (3, 3.0), (0.5, 0.5), (None, 1.0), (float("inf"), 1e6), ("nan", 1.0),
                                  (7.25, 7.25), ([1], 1.0)]


def _random_dag(rng: random.Random) -> tuple[list[Auditor], list[float]]:
    n = rng.randint(1, 12)
    auditors, effective = [], []
    for i in range(n):
        earlier = [f"a{j}" for j in range(i)]
        consumes = set(rng.sample(earlier, rng.randint(0, min(3, len(earlier)))))
        if rng.random() < 0.2:
            consumes.add("not_in_this_run")
        value, counts = rng.choice(COSTS)
        cls = type(f"Dag{i}", (Auditor,), {"name": f"a{i}", "cost": value, "consumes": frozenset(consumes),
                                           "metric_names": frozenset({"value"}),
                                           "_run": lambda self, ctx: None})
        auditors.append(cls())
        effective.append(counts)
    return auditors, effective


@pytest.mark.parametrize("seed", range(300))
def test_hand_out_order_puts_every_auditor_after_what_it_consumes_longest_chain_first(seed: int) -> None:
    auditors, effective = _random_dag(random.Random(seed))
    order = hand_out_order(auditors)
    assert sorted(order) == list(range(len(auditors)))
    position = {auditors[i].name: k for k, i in enumerate(order)}
    for a in auditors:
        for upstream in a.consumes & set(position):
            assert position[upstream] < position[a.name], (upstream, a.name, order)
    # chain: its cost plus its costliest consumer's chain; handed out longest first, ties in run order
    chain: dict[int, float] = {}
    for i in reversed(range(len(auditors))):
        consumers = [j for j in range(i + 1, len(auditors)) if auditors[i].name in auditors[j].consumes]
        chain[i] = effective[i] + max((chain[j] for j in consumers), default=0.0)
    for before, after in zip(order, order[1:], strict=False):
        assert chain[before] > chain[after] or (math.isclose(chain[before], chain[after]) and before < after)


def test_hand_out_order_starts_the_longest_chain_of_cheap_auditors_before_one_costly_auditor() -> None:
    auditors = [_quick("p", cost=1)(), _quick("q", cost=1, consumes=frozenset({"p"}))(),
                _quick("r", cost=1, consumes=frozenset({"q"}))(), _quick("s", cost=2.5)()]
    assert [auditors[i].name for i in hand_out_order(auditors)] == ["p", "s", "q", "r"]


def test_an_int_cost_too_large_for_a_float_counts_as_a_plugins_odd_value() -> None:
    auditors = [_quick("big", cost=10**400)(), _quick("small", cost=2)()]
    assert side_by_side.cost(auditors[0]) in (1.0, 1e6)
    assert sorted(hand_out_order(auditors)) == [0, 1]


# --------------------------------------------------------------------------- 2. processes_for


def test_processes_for(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = _target()
    assert processes_for(1, 5, cpu) == 1
    assert processes_for(0, 1, cpu) == 1 and processes_for(4, 1, cpu) == 1 and processes_for(4, 0, cpu) == 1
    assert processes_for(4, 5, SimpleNamespace(device="cuda", engine=None)) == 1
    assert processes_for(4, 5, SimpleNamespace(device="cpu", engine=object())) == 1
    for cpus, expected in [(1, 1), (2, 2), (4, 4), (8, 1)]:
        monkeypatch.setattr(forked, "default_workers", lambda cpus=cpus: cpus)
        assert processes_for(0, 5, cpu) == expected, cpus
        assert processes_for(0, 5, None) == expected, cpus  # no target: a CPU
    assert processes_for(3, 5, cpu) == 3
    assert processes_for(8, 5, cpu) == 5 and processes_for(2, 2, cpu) == 2 and processes_for(1024, 3, cpu) == 3
    monkeypatch.setattr(forked, "can_fork", lambda: False)
    assert processes_for(4, 5, cpu) == 1 and processes_for(0, 5, cpu) == 1


# --------------------------------------------------------------------------- 3. upstream while running


def test_a_consumer_starts_before_its_upstream_finished_and_still_reads_it(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STARTED, "path", str(tmp_path / "consumer-started"))
    ctx = _ctx(_target())
    out, done = _side_by_side([Slow(), ReadsUpstream()], ctx)
    slow, reads = out
    assert [r.auditor for r in out] == ["slow", "reads_slow"]  # run order
    assert [r.status for r in out] == ["ok", "ok"], [r.reason for r in out]
    assert slow.extra["pid"] != reads.extra["pid"] != os.getpid()
    assert reads.extra["start"] < slow.extra["end"]  # started while its upstream ran
    assert reads.extra["end"] >= slow.extra["end"] - 0.05  # and waited for it
    assert reads.extra["got"] == {"slow": ["slow", 42.0]} and reads.extra["in"] == {"slow": True}
    assert [r.auditor for r in done] == ["slow", "reads_slow"]  # it could only finish after slow
    _no_children_left()


def test_results_come_back_in_run_order_whatever_the_hand_out_order() -> None:
    auditors = [_quick("cheap", cost=0.1, value=1.0)(), _quick("middle", cost=1, value=2.0)(),
                _quick("costly", cost=5, value=3.0)(), _quick("costlier", cost=9, value=4.0)()]
    assert [auditors[i].name for i in hand_out_order(auditors)] == ["costlier", "costly", "middle", "cheap"]
    out, done = _side_by_side(auditors, _ctx(_target()))
    assert [r.auditor for r in out] == ["cheap", "middle", "costly", "costlier"]
    assert [r.metrics[0].value for r in out] == [1.0, 2.0, 3.0, 4.0]
    assert sorted(r.auditor for r in done) == sorted(r.auditor for r in out) and len(done) == 4


def test_a_consumer_of_a_failed_upstream_gets_nothing_as_one_after_another() -> None:
    ctx = _ctx(_target())
    out, _ = _side_by_side([FailingSlow(), ReadsFailing()], ctx)
    failed, reads = out
    assert failed.status == "failed" and "ValueError: planted" in failed.reason
    assert reads.status == "ok", reads.reason
    assert reads.extra["got"] == {"failing_slow": None} and reads.extra["in"] == {"failing_slow": False}
    sequential = _sequential([FailingSlow(), ReadsFailing()], ctx)
    assert sequential[1].extra["got"] == reads.extra["got"] and sequential[1].extra["in"] == reads.extra["in"]


def test_known_results_are_served_ok_ones_only() -> None:
    class ReadsBoth(ReadsUpstream):
        name = "reads_both"
        consumes = frozenset({"resumed_ok", "resumed_failed", "never_ran"})

    known = {"resumed_ok": AuditorResult(auditor="resumed_ok", metrics=(Metric("value", 5.0),)),
             "resumed_failed": AuditorResult(auditor="resumed_failed", status="failed", reason="x")}
    out, _ = _side_by_side([_quick("other", cost=3)(), ReadsBoth()], _ctx(_target()), known=known)
    assert out[1].extra["got"] == {"never_ran": None, "resumed_failed": None, "resumed_ok": ["resumed_ok", 5.0]}
    assert out[1].extra["in"] == {"never_ran": False, "resumed_failed": False, "resumed_ok": True}


# --------------------------------------------------------------------------- 4. a dying process


class Dies(Auditor):
    name = "dies"
    cost = 5.0
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        time.sleep(0.1)
        os._exit(3)


def test_a_process_that_dies_fails_its_auditor_named_and_the_others_are_kept() -> None:
    auditors = [_quick("first", cost=1)(), Dies(), _quick("third", cost=2)(), _quick("fourth", cost=0.5)()]
    out, done = _side_by_side(auditors, _ctx(_target()))
    assert [r.auditor for r in out] == ["first", "dies", "third", "fourth"]
    dead = out[1]
    assert dead.status == "failed" and "exited with code 3" in dead.reason and "its process failed" in dead.reason
    assert [r.status for r in out if r.auditor != "dies"] == ["ok", "ok", "ok"]
    assert sorted(r.auditor for r in done) == sorted(a.name for a in auditors) and len(done) == 4
    _no_children_left()


# --------------------------------------------------------------------------- 5. bad input


class BadInput(Auditor):
    name = "bad_input"
    cost = 5.0
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        raise AuditInputError("option bad_input.column: no column 'nope' in d.csv")


def test_an_input_error_in_an_auditor_ends_the_run_with_its_message_and_no_process_is_left() -> None:
    auditors = [_quick("first")(), BadInput(), Slow(), _quick("last")()]
    with pytest.raises(AuditInputError) as raised:
        _side_by_side(auditors, _ctx(_target()))
    assert str(raised.value) == "option bad_input.column: no column 'nope' in d.csv"
    _no_children_left()


# --------------------------------------------------------------------------- 6. engine counters


def _counting(name: str, rows: int, hits: int) -> type:
    def _run(self: Auditor, ctx: AuditContext) -> AuditorResult:
        time.sleep(0.05)
        ctx.target.stats.rows += rows
        ctx.target.stats.real_tokens += 3 * rows
        ctx.target.cache_hits += hits
        return AuditorResult(auditor=self.name, metrics=(Metric("value", float(rows)),), extra={"pid": os.getpid()})
    return type(f"Counting_{name}", (Auditor,), {"name": name, "metric_names": frozenset({"value"}), "_run": _run})


def test_each_process_adds_its_engine_counters_to_the_parents_target() -> None:
    target = _target(rows=7, batches=2)
    target.cache_hits = 1
    auditors = [_counting(f"c{i}", rows=10 * (i + 1), hits=i + 1)() for i in range(5)]
    out, _ = _side_by_side(auditors, _ctx(target))
    assert all(r.status == "ok" for r in out), [r.reason for r in out]
    assert len({r.extra["pid"] for r in out}) == 2
    assert target.stats.rows == 7 + 10 + 20 + 30 + 40 + 50
    assert target.stats.real_tokens == 3 * 150
    assert target.stats.batches == 2 and target.stats.padded_tokens == 0
    assert target.cache_hits == 1 + 1 + 2 + 3 + 4 + 5


# --------------------------------------------------------------------------- 7. same as one after another


def _seeded(name: str, *, consumes: frozenset[str] = frozenset(), cost: float = 1.0) -> type:
    def _run(self: Auditor, ctx: AuditContext) -> AuditorResult:
        import numpy as np

        draws = ctx.rng(f"{self.name}.draws").normal(size=200)
        glob = float(np.random.random())  # seeded by Auditor.run before each auditor
        from_upstream = sum(ctx.upstream[n].metric("mean").value for n in sorted(self.consumes) if n in ctx.upstream)
        return AuditorResult(auditor=self.name,
                             metrics=(Metric("mean", float(draws.mean())), Metric("upstream", from_upstream)),
                             extra={"first": [float(x) for x in draws[:5]], "global": glob,
                                    "seed": ctx.seed_for(self.name)})
    return type(f"Seeded_{name}", (Auditor,), {"name": name, "consumes": consumes, "cost": cost,
                                               "metric_names": frozenset({"mean", "upstream"}), "_run": _run})


def test_side_by_side_gives_the_same_results_as_one_after_another() -> None:
    classes = [_seeded("base", cost=3), _seeded("other", cost=0.2), _seeded("uses_base", consumes=frozenset({"base"})),
               _seeded("uses_both", consumes=frozenset({"base", "uses_base"})), _seeded("lone", cost=2),
               _seeded("uses_other", consumes=frozenset({"other", "missing"}))]
    ctx = _ctx(_target(), seed=11)
    one_after_another = _sequential([c() for c in classes], ctx)
    out, _ = _side_by_side([c() for c in classes], ctx)
    assert all(r.status == "ok" for r in out), [r.reason for r in out]
    assert [_comparable(r) for r in out] == [_comparable(r) for r in one_after_another]
    assert out[3].metric("upstream").value != 0.0  # it did read its upstreams


# --------------------------------------------------------------------------- 8. progress and lines


class Works(Auditor):
    name = "works"
    cost = 5.0
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        n = 0
        for _ in ctx.progress(range(50), desc="fake work"):
            time.sleep(0.01)
            n += 1
        return AuditorResult(auditor=self.name, metrics=(Metric("value", float(n)),))


def test_lines_and_bars_of_the_processes_are_drawn_by_the_parent(capfd: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    out, _ = _side_by_side([Works(), _quick("quick")()], _ctx(_target(), progress=True), say=lines.append,
                           progress=True)
    assert [r.status for r in out] == ["ok", "ok"] and out[0].metrics[0].value == 50.0
    assert "running works" in lines and "running quick" in lines
    assert "fake work" in capfd.readouterr().err


def test_without_progress_no_bar_is_drawn_but_lines_still_come(capfd: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    _side_by_side([Works(), _quick("quick")()], _ctx(_target(), progress=True), say=lines.append, progress=False)
    assert sorted(lines) == ["running quick", "running works"]
    assert "fake work" not in capfd.readouterr().err


# --------------------------------------------------------------------------- 9. timeout in a child


class Sleeps(Auditor):
    name = "sleeps"
    cost = 5.0
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        time.sleep(5)
        return AuditorResult(auditor=self.name, metrics=(Metric("value", 5.0),))


def test_a_timeout_fires_in_the_auditors_process() -> None:
    start = time.monotonic()
    out, _ = _side_by_side([Sleeps(), _quick("quick")()], _ctx(_target()), timeouts={"sleeps": 0.3, "quick": 0.3})
    assert time.monotonic() - start < 3
    assert out[0].status == "failed" and "timeout" in out[0].reason and "0.3" in out[0].reason
    assert out[1].status == "ok"
    _no_children_left()


# --------------------------------------------------------------------------- 10. forking inside a process


def _pid_of(i: int) -> tuple[int, int]:
    time.sleep(0.05)
    return i * i, os.getpid()


class Forks(Auditor):
    name = "forks"
    cost = 5.0
    metric_names = frozenset({"value"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        got = forked.fork_map(_pid_of, 6, workers=2, what="nested")
        return AuditorResult(auditor=self.name, metrics=(Metric("value", float(sum(v for v, _ in got))),),
                             extra={"pids": sorted({p for _, p in got}), "pid": os.getpid()})


def test_an_auditor_may_fork_workers_of_its_own() -> None:
    out, _ = _side_by_side([Forks(), _quick("quick")()], _ctx(_target()))
    assert out[0].status == "ok", out[0].reason
    assert out[0].metrics[0].value == sum(i * i for i in range(6))
    pids = out[0].extra["pids"]
    assert len(pids) == 2 and out[0].extra["pid"] not in pids and os.getpid() not in pids
    _no_children_left()


# --------------------------------------------------------------------------- answers to a process that no longer asks


class KilledWhileWaiting(ReadsUpstream):
    """Killed (as by the OOM killer) while it waits for its upstream."""

    name = "killed_while_waiting"
    consumes = frozenset({"slow"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        threading.Timer(0.15, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return super()._run(ctx)


class SlowerSlow(Slow):
    seconds = 1.0


def test_a_process_killed_while_waiting_for_its_upstream_fails_only_its_auditor() -> None:
    out, done = _side_by_side([SlowerSlow(), KilledWhileWaiting()], _ctx(_target()))
    assert out[0].status == "ok"
    assert out[1].status == "failed" and "exited with code -9" in out[1].reason
    assert len(done) == 2


class InterruptedWhileWaiting(ReadsUpstream):
    """Gives up waiting for ``slow`` (a signal raises while it waits), leaving slow's answer to come
    to this process after it moved on."""

    def _run(self, ctx: AuditContext) -> AuditorResult:
        def give_up(_signum: int, _frame: Any) -> None:
            raise RuntimeError("gave up waiting")

        signal.signal(signal.SIGUSR1, give_up)
        threading.Timer(0.15, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        return super()._run(ctx)


class ReadsQuickLate(ReadsUpstream):
    """Reads its upstream ``quick_x`` only once the parent has sent this process something it did not
    ask for (the answer meant for the interrupted ``reads_slow``), or after 2 s when nothing comes."""

    name = "reads_quick_late"
    consumes = frozenset({"quick_x"})
    cost = 0.5

    def _run(self, ctx: AuditContext) -> AuditorResult:
        from audit.core import bars

        bars._sink.poll(2)
        return super()._run(ctx)


def test_an_answer_meant_for_an_abandoned_question_never_reaches_the_next_auditor() -> None:
    # hand-out order: slow (process 1, 0.5 s); quick_x, then reads_slow (gives up after 0.15 s waiting for
    # slow), then reads_quick_late (asks for quick_x once slow's answer came to its process) in process 2
    auditors = [Slow(), _quick("quick_x", cost=5, value=7.0)(), InterruptedWhileWaiting(), ReadsQuickLate()]
    assert [auditors[i].name for i in hand_out_order(auditors)] == ["slow", "quick_x", "reads_slow",
                                                                    "reads_quick_late"]
    out, _ = _side_by_side(auditors, _ctx(_target()))
    assert out[2].status == "failed" and "gave up waiting" in out[2].reason
    assert out[3].status == "ok", out[3].reason
    assert out[3].extra["got"] == {"quick_x": ["quick_x", 7.0]}
    assert [r.status for r in out[:2]] == ["ok", "ok"]


def test_the_timeout_clock_stops_while_a_consumer_waits_for_its_upstream() -> None:
    """--timeout is an auditor's own time: waiting ~1 s for its upstream does not spend a 0.3 s
    timeout, and the wait is reported as upstream_wait."""
    out, _ = _side_by_side([SlowerSlow(), ReadsUpstream()], _ctx(_target()), timeouts={"reads_slow": 0.3})
    assert [r.status for r in out] == ["ok", "ok"], [r.reason for r in out]
    assert out[1].extra["got"] == {"slow": ["slow", 42.0]}
    assert out[1].timings["upstream_wait"] > 0.5


class ReportsWorkers(Auditor):
    """Reports what fork_map would use by default in its process, and torch's threads there."""

    name = "reports_workers"
    metric_names = frozenset({"workers", "threads"})

    def _run(self, ctx: AuditContext) -> AuditorResult:
        import torch

        return AuditorResult(auditor=self.name, metrics=(Metric("workers", float(forked.default_workers())),
                                                         Metric("threads", float(torch.get_num_threads()))),
                             extra={"pid": os.getpid()})


def test_a_side_by_side_process_runs_torch_on_one_thread_but_forks_as_many_workers_as_the_run() -> None:
    """Its attacks' one-thread workers may use every core (they share them with the auditors
    beside them), while its own torch keeps one thread (more hangs GNU OpenMP after a fork)."""
    out, _ = _side_by_side([ReportsWorkers(), _quick("other")()], _ctx(_target()))
    metrics = {m.name: m.value for m in out[0].metrics}
    assert out[0].extra["pid"] != os.getpid()
    assert metrics == {"workers": float(forked.default_workers()), "threads": 1.0}
    assert forked._inherited_workers is None  # nothing changed here
