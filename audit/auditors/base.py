"""The auditor contract and the plugin registry.

An auditor is a class with a ``name``, the inputs it ``requires`` and a ``_run(ctx)`` that
returns an :class:`~audit.core.results.AuditorResult`. The public :meth:`Auditor.run` wraps it: it
skips when requirements are missing, seeds, times, and turns an exception into a failed
section so one broken auditor never sinks the audit (the ``compute``/``_compute`` split of
Hugging Face evaluate).

Auditors are found through the ``rai_audit.auditors`` entry-point group, lazily. Unlike
pluggy, a plugin that fails to load becomes a reported error rather than stopping everything.
"""

from __future__ import annotations

import abc
import re
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from audit.core.options import Option, check, check_all
from audit.core.results import AuditorResult
from audit.errors import OPTION_UNKNOWN, AuditInputError, did_you_mean
from audit.tasks import SEQUENCE, TASKS

if TYPE_CHECKING:
    from audit.core.context import AuditContext

ENTRY_POINT_GROUP = "rai_audit.auditors"
BUILTIN_PREFIX = "audit.auditors."  # entry points of the auditors shipped with rai-audit

# What an auditor may require, and the sentence shown when it is missing.
REQUIREMENTS: dict[str, str] = {
    "labels": "the eval data has no label column",
    "sensitive": "no sensitive column was given (--sensitive)",
    "train": "no training data was given (--train-data), so there are no members to test",
    "holdout": "no held-out data was given (--holdout-data)",
    "model": "no model is loaded",
}


TASK_UNSUPPORTED = "the model is a {task} model; this auditor supports {tasks} only"


class AuditorTimeout(BaseException):  # noqa: N818 - named for what the user sees
    """Raised in an auditor past its --timeout. A BaseException, so that an auditor's own broad
    ``except Exception`` (advisory steps, plugins) cannot swallow it and run on."""


class Auditor(abc.ABC):
    """Base class of every auditor. Subclasses set the class variables and implement _run."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()
    template: ClassVar[str] = ""  # its section partial, beside its module (e.g. "section.html.j2")
    # Every option declared once: kind, range, choices, default, help (audit.core.options.Option).
    params: ClassVar[Mapping[str, Option]] = {}
    defaults: ClassVar[Mapping[str, Any]] = {}  # derived from ``params`` (older plugins may set it alone)
    metric_names: ClassVar[frozenset[str]] = frozenset()  # every metric name it can report (for policies)
    # Auditors whose results this one reads (ctx.upstream), when they run in the same audit: the
    # runner runs those first, whatever order the user typed, and --resume replays them.
    consumes: ClassVar[frozenset[str]] = frozenset()
    # Its time relative to other auditors': when auditors run side by side (audit.core.side_by_side)
    # the costliest start first. Only an order: a wrong value costs time, never a result.
    cost: ClassVar[float] = 1.0
    # The tasks it can audit (audit.tasks.TASKS). On a model of another task it is skipped with
    # the reason shown, never run: a plugin written for text classifiers meets NER models too.
    tasks: ClassVar[frozenset[str]] = frozenset({SEQUENCE})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "params" in cls.__dict__ and isinstance(cls.params, Mapping):
            cls.defaults = {k: getattr(o, "default", None) for k, o in cls.params.items()}  # bad specs: discovery says
        elif "defaults" in cls.__dict__:  # a plugin without declarations: its options stay unchecked
            cls.params = {k: Option(kind="any", default=v) for k, v in cls.defaults.items()}

    def __init__(self, **options: Any) -> None:
        """Options are checked against ``params`` here, before any model is loaded; the given
        mapping is never mutated (``self.options`` holds the checked, normalised values)."""
        unknown = sorted(set(options) - set(self.params))
        if unknown:
            raise AuditInputError(
                OPTION_UNKNOWN.format(
                    where=f"auditor {self.name!r}",
                    option=unknown[0],
                    hint=did_you_mean(unknown[0], self.params),
                    known=", ".join(sorted(self.params)) or "(none)",
                )
            )
        self.options: dict[str, Any] = check_all(options, self.params, prefix=f"{self.name}.")
        self._validate()

    @classmethod
    def template_path(cls) -> Path | None:
        """The section partial: ``template`` beside the auditor's module (a plugin ships its
        own), else under the report's shared templates; None when unset or not found."""
        if not cls.template:
            return None
        module = sys.modules.get(cls.__module__)
        has_file = module is not None and getattr(module, "__file__", None)
        here = Path(module.__file__).resolve().parent if has_file else None
        from audit.report.html import templates_dir

        for base in (here, templates_dir().resolve()):
            if base is None:
                continue
            path = (base / cls.template).resolve()
            if path.is_relative_to(base) and path.is_file():  # beside its module, never elsewhere
                return path
        return None

    def _validate(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Checks across options that ``params`` cannot declare; raise AuditInputError naming one."""

    def run(self, ctx: AuditContext) -> AuditorResult:
        """Run the auditor: skip, fail or succeed, but never raise for the auditor's own bugs."""
        if ctx.task not in self.tasks:
            return AuditorResult(auditor=self.name, status="skipped",
                                 reason=TASK_UNSUPPORTED.format(task=ctx.task, tasks=", ".join(sorted(self.tasks))))
        missing = [r for r in sorted(self.requires) if not ctx.has(r)]
        if missing:
            return AuditorResult(
                auditor=self.name,
                status="skipped",
                reason="; ".join(REQUIREMENTS.get(r, f"needs {r}") for r in missing),
            )
        ctx.seed_everything()
        start = time.perf_counter()
        try:
            result = self._run(ctx)
            problem = result_problem(result, self)
        except AuditInputError:
            raise
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - an auditor's bug, timeout or stray SystemExit: a failed section
            return AuditorResult(
                auditor=self.name,
                status="failed",
                reason=f"{type(exc).__name__}: {exc}",
                timings={"total": time.perf_counter() - start},
                extra={"traceback": traceback.format_exc(limit=8)},
            )
        if problem:
            return AuditorResult(auditor=self.name, status="failed", reason=RESULT_INVALID.format(problem=problem),
                                 timings={"total": time.perf_counter() - start})
        timings = {**result.timings, "total": time.perf_counter() - start}
        return result.replace(auditor=self.name, timings=timings)

    @abc.abstractmethod
    def _run(self, ctx: AuditContext) -> AuditorResult:
        """Compute the result from ``ctx`` (shared predictions, target, data)."""


RESULT_INVALID = "its result cannot be reported: {problem}"


def result_problem(result: Any, auditor: Auditor) -> str:
    """What makes a returned result unreportable, checked before it joins the report (so one
    auditor's bad value fails its section instead of losing the whole report): not an
    AuditorResult, not serialisable or not valid against the results schema, a metric reported
    twice (a policy would judge one of them), or a metric not among the declared ``metric_names``
    (the list policies are checked against). Empty when the result is fine."""
    if not isinstance(result, AuditorResult):
        return f"_run returned {type(result).__name__}, not an AuditorResult"
    from audit.core.schema import validate_result

    try:
        data = result.replace(auditor=auditor.name).to_dict()
        validate_result(data)
    except Exception as exc:  # noqa: BLE001 - serialisation or schema errors alike
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    keys = [(m.name, m.slice) for m in result.metrics]
    if len(keys) != len(set(keys)):
        twice = sorted({k for k in keys if keys.count(k) > 1}, key=str)[0]
        return f"metric {twice[0]!r}" + (f" (slice {twice[1]!r})" if twice[1] else "") + " is reported twice"
    undeclared = sorted({m.name for m in result.metrics} - set(auditor.metric_names))
    if undeclared:
        return f"metric {undeclared[0]!r} is not among its declared metric_names"
    return ""


@dataclass(frozen=True)
class AuditorInfo:
    """What the registry knows about one entry point, loaded or not."""

    name: str
    target: str  # "module:Class"
    distribution: str
    cls: type[Auditor] | None = None
    error: str = ""


def discover(*, load: bool = True) -> dict[str, AuditorInfo]:
    """All auditors registered under the entry-point group, in name order.

    With ``load`` the classes are imported; a plugin that fails to import, is not an Auditor
    subclass, or repeats a name, is returned with ``error`` set instead of raising.
    """
    found: dict[str, AuditorInfo] = {}
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in found:
            if found[ep.name].target == ep.value:
                continue  # the same plugin seen twice (e.g. editable + installed metadata)
            builtin = [v for v in (found[ep.name].target, ep.value) if v.startswith(BUILTIN_PREFIX)]
            if builtin:  # another package cannot switch off a built-in section by reusing its name
                newcomer_is_builtin = ep.value.startswith(BUILTIN_PREFIX)
                loser, loser_dist = ((found[ep.name].target, found[ep.name].distribution) if newcomer_is_builtin
                                     else (ep.value, dist))
                if newcomer_is_builtin:
                    info = AuditorInfo(ep.name, ep.value, dist)
                    found[ep.name] = _load(info, ep) if load else info
                key = f"{ep.name} ({loser})"
                found[key] = AuditorInfo(key, loser, loser_dist,
                                         error=f"name {ep.name!r} is a built-in auditor's; {loser} is not loaded")
                continue
            found[ep.name] = AuditorInfo(
                ep.name,
                ep.value,
                dist,
                error=f"name {ep.name!r} is registered twice ({found[ep.name].target} and {ep.value})",
            )
            continue
        info = AuditorInfo(ep.name, ep.value, dist)
        if load:
            info = _load(info, ep)
        found[ep.name] = info
    return _without_consume_cycles(found)


def _without_consume_cycles(found: dict[str, AuditorInfo]) -> dict[str, AuditorInfo]:
    """Auditors whose ``consumes`` form a cycle cannot be ordered: each is reported broken here,
    at discovery, rather than when both happen to be selected."""
    graph = {n: {c for c in getattr(i.cls, "consumes", ()) if c in found} for n, i in found.items() if i.cls}
    state: dict[str, int] = {}
    cyclic: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cyclic.update(path[path.index(nxt):] + [node])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    for name in cyclic:
        info = found[name]
        found[name] = AuditorInfo(info.name, info.target, info.distribution,
                                  error=f"consumes form a cycle through {', '.join(sorted(cyclic))}")
    return found


def _load(info: AuditorInfo, ep: metadata.EntryPoint) -> AuditorInfo:
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
        return AuditorInfo(info.name, info.target, info.distribution, error=f"failed to load: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, Auditor)):
        return AuditorInfo(
            info.name, info.target, info.distribution, error="is not a subclass of audit.Auditor"
        )
    if getattr(cls, "name", None) != info.name:
        return AuditorInfo(
            info.name,
            info.target,
            info.distribution,
            error=f"class name attribute {getattr(cls, 'name', None)!r} differs from entry point",
        )
    problems = contract_problems(cls)
    if problems:
        return AuditorInfo(info.name, info.target, info.distribution, error="; ".join(problems))
    return AuditorInfo(info.name, info.target, info.distribution, cls=cls)


_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def contract_problems(cls: type[Auditor]) -> list[str]:
    """What a plugin class breaks of the contract, checked at discovery (not after a long run):
    ``metric_names`` declared (the one list policies and the compliance map check against),
    ``requires`` among the known requirements, every option an :class:`Option` whose default
    passes its own check, and ``template`` (when set) a file that exists."""
    problems = []
    names = getattr(cls, "metric_names", None)
    if not isinstance(names, (frozenset, set, tuple, list)) or not names:
        problems.append("declares no metric_names (the metrics its policies may name)")
    elif bad := sorted(str(n) for n in names if not isinstance(n, str) or not _METRIC_NAME.match(n)):
        problems.append(f"metric_names {bad[:3]} are not lower_snake_case names")
    consumes = getattr(cls, "consumes", frozenset())
    if not isinstance(consumes, (frozenset, set, tuple)) or not all(isinstance(c, str) for c in consumes):
        problems.append("consumes is not a set of auditor names")
    elif cls.name in consumes:
        problems.append("consumes its own results")
    tasks = getattr(cls, "tasks", None)
    if not isinstance(tasks, (frozenset, set, tuple)) or not tasks:
        problems.append(f"tasks is not a non-empty set of {', '.join(TASKS)}")
    elif bad_tasks := sorted(str(t) for t in tasks if t not in TASKS):
        problems.append(f"tasks {', '.join(bad_tasks)} unknown; known: {', '.join(TASKS)}")
    unknown = sorted(str(r) for r in getattr(cls, "requires", ()) if r not in REQUIREMENTS)
    if unknown:
        problems.append(f"requires unknown input(s) {', '.join(unknown)}; known: {', '.join(REQUIREMENTS)}")
    params = getattr(cls, "params", {})
    if not isinstance(params, Mapping):
        problems.append("params is not a mapping of option name to audit.core.options.Option")
    else:
        for key, option in params.items():
            if not isinstance(key, str) or not isinstance(option, Option):
                problems.append(f"option {key!r} is not declared with audit.core.options.Option")
                continue
            try:
                check(f"{cls.name}.{key}", option.default, option)
            except AuditInputError as exc:
                problems.append(f"the default of option {key!r} fails its own declaration ({exc})")
    if getattr(cls, "template", "") and cls.template_path() is None:
        problems.append(f"template {cls.template!r} not found beside its module or in the report templates")
    return problems
