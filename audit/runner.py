"""run_audit: config -> target + data -> one prediction pass -> auditors -> report files -> policy.

The --resume store lives in audit.core.resume, the baseline in audit.core.baseline and the
results schema in audit.core.schema; their names used by callers are imported here.

Over ~400 lines because reading data for either task (tables early, token files after the model
says its task) is part of one run's order of checks; the rest has moved out.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata as _md
from pathlib import Path
from typing import Any

from audit import __version__
from audit.auditors.base import Auditor, AuditorInfo, AuditorTimeout, discover
from audit.config import AuditConfig
from audit.core.baseline import baseline_match, load_baseline
from audit.core.profiles import describe as describe_profile
from audit.core.profiles import profile_options
from audit.core.results import AuditorResult, AuditReport
from audit.core.resume import Partial as _Partial
from audit.core.resume import run_key
from audit.core.schema import validate_results
from audit.core.side_by_side import processes_for, run_side_by_side
from audit.errors import AUDITOR_UNKNOWN, OUT_EXISTS, OUT_FOREIGN, AuditInputError, did_you_mean, printable
from audit.report.outdir import (
    locked,
    private_dir,
    record_output,
    write_outputs,
)
from audit.report.prep import ReportPrep
from audit.tasks import TOKEN

OUTPUT_FILES = ("report.html", "results.json", "README.md", "report.pdf")
PARTIAL_DIR = ".rai-audit-partial"  # finished sections of a run in progress, for --resume
VERSIONED_PACKAGES = ("torch", "transformers", "scikit-learn", "fairlearn", "aif360", "captum", "textattack",
                      "numpy", "pandas")


# The report reads like a model card: performance first, then the responsible-AI sections;
# auditors from other packages follow in name order.
SECTION_ORDER = ("performance", "fairness", "explainability", "robustness", "privacy")


def _section_order(name: str) -> tuple[int, str]:
    return (SECTION_ORDER.index(name) if name in SECTION_ORDER else len(SECTION_ORDER), name)


def select_auditors(config: AuditConfig, registry: dict[str, AuditorInfo] | None = None
                    ) -> tuple[list[Auditor], list[AuditorResult]]:
    """Instantiate the selected auditors with their options. Plugins that failed to load become
    failed results; unknown names and unknown options are the user's mistake (AuditInputError)."""
    registry = discover() if registry is None else registry
    names = sorted(config.auditors or registry, key=_section_order)  # report order, whatever was typed
    for name in [*names, *config.options]:
        if name not in registry:
            raise AuditInputError(AUDITOR_UNKNOWN.format(name=name, hint=did_you_mean(name, registry),
                                                         known=", ".join(registry) or "(none installed)"))
    auditors: list[Auditor] = []
    broken: list[AuditorResult] = []
    for name in names:
        info = registry[name]
        if info.cls is None:
            broken.append(AuditorResult(auditor=name, status="failed", reason=f"plugin {info.target}: {info.error}"))
            continue
        auditors.append(info.cls(**_budgeted_options(config, name, info.cls)))
    auditors = run_order(auditors)
    for name, opts in config.options.items():  # options of auditors not selected are checked too
        if name not in names and registry[name].cls is not None:
            registry[name].cls(**opts)
    return auditors, broken


def _budgeted_options(config: AuditConfig, name: str, cls: type[Auditor]) -> dict[str, Any]:
    """The auditor's options: its profile budgets (those it declares), under the user's own options."""
    budgets = profile_options(profile=config.profile).get(name, {})
    return {**{k: v for k, v in budgets.items() if k in cls.params}, **config.options.get(name, {})}


def run_order(auditors: list[Auditor]) -> list[Auditor]:
    """Auditors in the order they run: each after the auditors it ``consumes`` (when selected),
    otherwise in report order, so the order the user typed never changes a result."""
    by_name = {a.name: a for a in auditors}
    done: list[Auditor] = []
    visiting: set[str] = set()

    def visit(a: Auditor) -> None:
        if a in done:
            return
        if a.name in visiting:
            raise AuditInputError(f"auditors consume each other in a cycle through {a.name!r}")
        visiting.add(a.name)
        for name in sorted(a.consumes, key=_section_order):
            if name in by_name:
                visit(by_name[name])
        visiting.discard(a.name)
        done.append(a)

    for a in auditors:
        visit(a)
    return done


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse, before any work, an --out that cannot hold a report: under a file, not writable,
    with a report there already (unless ``overwrite``), or with a file in the way that rai-audit
    did not write (never replaced, even with ``overwrite``: it may be a hand-written model card)."""
    from audit.report.outdir import check_writable, foreign_files

    check_writable(out)
    partial = out / PARTIAL_DIR
    if partial.is_symlink() or (os.path.lexists(partial) and not partial.is_dir()):
        private_dir(partial)  # raises the one-line error, before the model is loaded
    mine, foreign = foreign_files(out, OUTPUT_FILES)
    if foreign:
        raise AuditInputError(OUT_FOREIGN.format(path=foreign[0]))
    if mine and not overwrite:
        raise AuditInputError(OUT_EXISTS.format(path=mine[0]))


def run_audit(config: AuditConfig, *, progress: bool = True, write: bool = True,
              log: Callable[[str], None] | None = None, lock_out: bool = True) -> AuditReport:
    """Run a whole audit as configured and (with ``write``) write report.html, results.json and
    README.md into ``config.out``. Bad input raises AuditInputError; an auditor's own error
    becomes a failed section."""
    from audit.core.policy import Policy, Rule, check_rules_known, load_policy

    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    if not config.model:
        raise AuditInputError("no model given: pass MODEL (a folder or a hub id)")
    if not config.data:
        raise AuditInputError("no eval data given: pass --data FILE")
    policy = load_policy(config.policy) if config.policy else Policy()
    rules = [*policy.rules, *(Rule.parse(r) for r in config.thresholds)]
    max_regression = config.max_regression if config.max_regression is not None else policy.max_regression
    baseline = load_baseline(config.baseline) if config.baseline else None
    out = Path(config.out)
    if write:
        check_out_dir(out, overwrite=config.overwrite)
        if config.pdf:
            from audit.report.pdf import require_chromium

            require_chromium()
    registry = discover()
    auditors, broken = select_auditors(config, registry)
    check_rules_known(rules, {name: info.cls.metric_names for name, info in registry.items() if info.cls is not None})
    lock = locked(out) if write and lock_out else contextlib.nullcontext()
    with lock:
        if write:  # checked again under the lock: another run may have written meanwhile
            check_out_dir(out, overwrite=config.overwrite)
        prep = ReportPrep([a.name for a in auditors] + [r.auditor for r in broken]) if write else None
        try:
            with engine_session(config, say=say) as engine:
                return _run_locked(config, auditors=auditors, broken=broken, rules=rules, baseline=baseline,
                                   max_regression=max_regression, out=out, write=write, progress=progress, say=say,
                                   timings=timings, engine=engine, prep=prep)
        finally:
            if prep is not None:
                prep.close()


@contextlib.contextmanager
def engine_session(config: AuditConfig, *, say: Callable[[str], None] = lambda _msg: None) -> Iterator[Any]:
    """The Ray engine for ``--engine ray`` (connected, or a local Ray instance started, and shut
    down after the audit), else None: the local engine, which never imports Ray."""
    if config.engine != "ray":
        yield None
        return
    from audit.engine.ray_engine import RayEngine

    say(f"connecting to Ray ({printable(config.ray_address or 'starting a local instance')})")
    engine = RayEngine.start(address=config.ray_address, actors=config.ray_actors, min_rows=config.ray_min_rows)
    try:
        yield engine
    finally:
        engine.stop()


def _run_locked(config: AuditConfig, *, auditors: list[Auditor], broken: list[AuditorResult], rules: list[Any],
                baseline: AuditReport | None, max_regression: float, out: Path, write: bool, progress: bool,
                say: Callable[[str], None], timings: dict[str, float], engine: Any = None,
                prep: ReportPrep | None = None) -> AuditReport:
    from audit.core.context import AuditContext
    from audit.core.policy import compare_baseline, evaluate_policy
    from audit.core.scorecard import build_scorecard
    from audit.core.verdicts import PolicyVerdict
    from audit.engine.data import load_evalset, read_table
    from audit.engine.target import Target
    from audit.report.compliance import assess, load_mapping

    start = time.perf_counter()
    # The tables are read before the model, so a missing file or column is found in seconds. A
    # CoNLL file is not a table: it is read (and its tags checked) once the model's tags are known.
    conll = is_conll(config.data)
    table, table_error = None, None
    if not conll:
        try:
            table = read_table(config.data)
        except AuditInputError as exc:  # a token file may not be a table: decided once the model is loaded
            table_error = exc
    train_table = read_table(config.train_data) if config.train_data and not is_conll(config.train_data) else None
    holdout_table = (read_table(config.holdout_data) if config.holdout_data and not is_conll(config.holdout_data)
                     else None)
    if table is not None:
        check_column_options(auditors, table, source=config.data)
    elif table_error is not None and not _may_be_token_file(config.data):
        raise table_error
    timings["read_data"] = time.perf_counter() - start

    start = time.perf_counter()
    say(f"loading model {printable(config.model)}")
    target = Target.load(config.model, revision=config.revision, device=config.device, dtype=config.dtype,
                         trust_remote_code=config.trust_remote_code, max_length=config.max_length,
                         max_tokens=config.max_tokens, max_batch=config.batch_size)
    target.engine = engine
    timings["load_model"] = time.perf_counter() - start

    start = time.perf_counter()
    if target.task == TOKEN:
        data, train, holdout = _load_token_data(config, target)
    elif conll:
        raise AuditInputError(CONLL_NOT_SEQUENCE.format(path=config.data, model=printable(config.model)))
    elif table_error is not None:
        raise table_error
    else:
        data = load_evalset(config.data, label_names=target.label_names, multi_label=target.multi_label,
                            text_col=config.text_col, pair_col=config.pair_col, label_col=config.label_col,
                            limit=config.limit, sample=config.sample, seed=config.seed, sensitive=config.sensitive,
                            strict=config.strict, frame=table)
        train = None
        if config.train_data:
            train = load_evalset(config.train_data, label_names=target.label_names, multi_label=target.multi_label,
                                 text_col=config.text_col, pair_col=config.pair_col, label_col=config.label_col,
                                 frame=train_table)
        holdout = None
        if config.holdout_data:
            holdout = load_evalset(config.holdout_data, label_names=target.label_names,
                                   multi_label=target.multi_label, text_col=config.text_col,
                                   pair_col=config.pair_col, label_col=config.label_col, frame=holdout_table)
    timings["load_data"] = time.perf_counter() - start
    baseline_info = baseline_match(baseline, config, target, data) if baseline is not None else None

    ctx = AuditContext(config=config, target=target, data=data, train=train, holdout=holdout,
                       progress_enabled=progress)
    say(f"predicting {len(data):,} {'sentences' if target.task == TOKEN else 'rows'}")
    start = time.perf_counter()
    _ = ctx.word_predictions if target.task == TOKEN else ctx.predictions
    timings["predict"] = time.perf_counter() - start

    results: list[AuditorResult] = list(broken)
    partial = (_Partial(private_dir(out / PARTIAL_DIR), key=run_key(config, target, data, train, holdout))
               if write else None)
    done, rejected = partial.load() if (partial is not None and config.resume) else ({}, [])
    for note in rejected:
        say(f"not reusing {note}")
    resumed = [a.name for a in auditors if a.name in done]
    for name in resumed:
        say(f"reusing {name} from the interrupted run")
    known = {r.auditor: r for r in results}
    known.update({name: done[name] for name in resumed})

    # --timeout uses SIGALRM, which only the main thread receives: called from another thread the
    # auditors run without it, forked or not (a forked process's one thread is its main thread).
    timeout = config.timeout if threading.current_thread() is threading.main_thread() else None

    def run_one(auditor: Auditor, upstream: Mapping[str, AuditorResult]) -> AuditorResult:
        ctx.upstream = upstream
        try:
            return _run_with_timeout(auditor, ctx, timeout)
        finally:
            ctx.upstream = {}

    def finished(result: AuditorResult) -> None:
        if partial is not None:
            partial.save(result)
        say(f"  {result.auditor}: {result.status}" + (f" ({printable(result.reason)})" if result.reason else ""))

    to_run = [a for a in auditors if a.name not in done]
    processes = processes_for(config.auditor_processes, len(to_run), target)
    start = time.perf_counter()
    if processes > 1:
        say(f"running {', '.join(a.name for a in to_run)} side by side in {processes} processes")
        def finished_here(result: AuditorResult) -> None:
            finished(result)
            if prep is not None:  # its figures are drawn while the others still run
                prep.add(result)

        # Meanwhile this process, which only relays, does the report's own work ahead (prep).
        ran = run_side_by_side(to_run, processes=processes, target=target, run_one=run_one, known=known,
                               on_done=finished_here, say=say, progress=progress,
                               idle=prep.step if prep is not None else None)
    else:
        ran = []
        for auditor in to_run:
            say(f"running {auditor.name}")
            result = run_one(auditor, {n: r for n, r in known.items() if n in auditor.consumes and r.status == "ok"})
            known[auditor.name] = result
            finished(result)
            ran.append(result)
    timings["auditors"] = time.perf_counter() - start
    by_name = {r.auditor: r for r in ran}
    by_name.update({name: done[name] for name in resumed})
    for auditor in auditors:  # in run order, however they finished
        results.append(by_name[auditor.name])
        timings[auditor.name] = by_name[auditor.name].timings.get("total", 0.0)
    results.sort(key=lambda r: _section_order(r.auditor))

    meta = build_metadata(config, target, data, train, auditors, timings, truncated=ctx.eval_truncated_rows,
                          holdout=holdout)
    meta["resumed"] = resumed
    meta["engine"]["auditor_processes"] = processes
    if baseline_info is not None:
        meta["baseline"] = baseline_info
    # Judged once, here, and stored: every renderer and the exit code read these values.
    comparisons = compare_baseline(results, baseline, max_regression=max_regression) if baseline is not None else []
    report = AuditReport(metadata=meta, results=results,
                         policy=PolicyVerdict.of(evaluate_policy(rules, results), comparisons))
    report.compliance = assess(report, load_mapping())
    report.scorecard = build_scorecard(results=results, policy=report.policy.outcomes,
                                       titles=meta.get("auditor_titles"))
    if write:
        start = time.perf_counter()
        write_report(report, out)
        if config.pdf:
            from audit.report.pdf import write_pdf

            write_pdf(html_path=out / "report.html", pdf_path=out / "report.pdf")
            record_output(out, "report.pdf")
        meta["timings"]["render"] = time.perf_counter() - start
        if partial is not None:
            partial.clear()
    return report


CONLL_NOT_SEQUENCE = ("{path}: a CoNLL file (one token and its tag a line) needs a token classifier; the model {model} "
                      "is a sequence classifier: give it a table with a text and a label column")


CONLL_SUFFIXES = (".conll", ".conll03", ".iob", ".iob2", ".bio", ".bioes", ".ner")


def is_conll(source: str | Path) -> bool:
    """Named as a CoNLL token file (one token and its tag a line), never a table."""
    return Path(str(source)).suffix.lower() in CONLL_SUFFIXES


def _may_be_token_file(source: str | Path) -> bool:
    """A file a table reader refused that a token classifier's reader may still read (CoNLL as
    .txt or .tsv): the error waits until the model says which task it has."""
    path = Path(str(source))
    return path.is_file() and path.suffix.lower() in (".txt", ".tsv", "")


def _load_token_data(config: AuditConfig, target: Any) -> tuple[Any, Any, Any]:
    """Eval, training and held-out sentences of a token classifier, their tags checked against
    the model's and the scheme detected once, from the model's tags and the eval data."""
    from audit.tasks.token_data import read_token_data

    def read(source: str, scheme: str | None, **sub: Any) -> Any:
        return read_token_data(source, tag_names=target.label_names, scheme=scheme, tokens_col=config.tokens_col,
                               tags_col=config.tags_col, tag_col=config.tag_col, seed=config.seed, **sub)

    data = read(config.data, config.scheme, limit=config.limit, sample=config.sample)
    train = read(config.train_data, data.scheme) if config.train_data else None
    holdout = read(config.holdout_data, data.scheme) if config.holdout_data else None
    for name in config.sensitive:
        if name not in data.columns.columns:
            raise AuditInputError(f"option sensitive: {data.source} has no per-sentence column {name!r}; "
                                  f"columns are {', '.join(map(str, data.columns.columns)) or '(none)'}")
    return _missing_groups(data, config.sensitive), train, holdout


def _missing_groups(data: Any, sensitive: Any) -> Any:
    """The token eval set with each empty or null sensitive value replaced by the named group
    ``(missing)``, as the text loader does: fairlearn's MetricFrame refuses a NaN group, and
    ``astype(str)`` would otherwise make ``'nan'``, ``'None'`` and ``'<NA>'`` separate groups."""
    import dataclasses

    from audit.engine.data import MISSING_GROUP

    frame = data.columns
    for col in sensitive:
        missing = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if missing.any():
            frame = frame.copy() if frame is data.columns else frame
            frame[col] = frame[col].astype(object).where(~missing, MISSING_GROUP)
    return data if frame is data.columns else dataclasses.replace(data, columns=frame)


def check_column_options(auditors: list[Auditor], table: Any, *, source: str) -> None:
    """Options that name columns of the eval data (declared ``column=True``) name real ones."""
    columns = [str(c) for c in table.columns]
    for auditor in auditors:
        for key, option in auditor.params.items():
            for name in auditor.options.get(key) or () if option.column else ():
                if name not in columns:
                    raise AuditInputError(COLUMN_OPTION_UNKNOWN.format(
                        option=f"{auditor.name}.{key}", column=name, path=source,
                        hint=did_you_mean(name, columns), columns=", ".join(columns)))


COLUMN_OPTION_UNKNOWN = "option {option}: {path} has no column {column!r}{hint}; columns are {columns}"
def _run_with_timeout(auditor: Auditor, ctx: Any, timeout: float | None) -> AuditorResult:
    """Run one auditor; past ``timeout`` seconds it becomes a failed section. Uses SIGALRM, so it
    applies in the main thread on Unix; elsewhere the auditor runs without a limit."""
    import signal
    import threading

    usable = (timeout is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        return auditor.run(ctx)

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise AuditorTimeout(f"exceeded its timeout of {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        return auditor.run(ctx)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _token_data_metadata(data: Any) -> dict[str, Any]:
    """What a reader of a token-classification report needs about its data."""
    return {"sentences": len(data), "words": int(sum(len(t) for t in data.tokens)), "scheme": data.scheme,
            "gold_violations": data.gold_violations}


def build_metadata(config: AuditConfig, target: Any, data: Any, train: Any, auditors: list[Auditor],
                   timings: dict[str, float], *, truncated: int, holdout: Any = None) -> dict[str, Any]:
    model = target.model
    packages = {}
    for name in VERSIONED_PACKAGES:
        try:
            packages[name] = _md.version(name)
        except _md.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "tool_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": config.seed,
        "model": {
            "name": config.model,
            "revision": config.revision,
            "architecture": (getattr(model.config, "architectures", None) or [type(model).__name__])[0],
            "parameters": target.n_parameters,
            "task": target.task,
            "problem_type": target.problem_type,
            "num_labels": int(model.config.num_labels),
            "labels": target.label_names,
            "max_length": target.max_length,
            "fingerprint": target.fingerprint,
        },
        "data": {
            "source": data.source,
            "rows": len(data),
            "rows_in_file": getattr(data, "rows_in_file", None),
            "dropped_empty": data.dropped_empty,
            "text_col": getattr(data, "text_col", None),
            "pair_col": getattr(data, "pair_col", None),
            "label_col": getattr(data, "label_col", None),
            "sensitive": list(config.sensitive),
            "truncated_rows": truncated,
            "fingerprint": data.fingerprint,
            **(_token_data_metadata(data) if target.task == TOKEN else {}),
        },
        "train": None if train is None else {"source": train.source, "rows": len(train),
                                             "fingerprint": train.fingerprint},
        "holdout": None if holdout is None else {"source": holdout.source, "rows": len(holdout),
                                                 "fingerprint": holdout.fingerprint},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "device": target.device,
            "dtype": target.dtype,
            "packages": packages,
        },
        "engine": {
            **(target.engine.info() if getattr(target, "engine", None) is not None else {"kind": "local"}),
            "batches": target.stats.batches,
            "rows_scored": target.stats.rows,
            "padded_tokens": target.stats.padded_tokens,
            "real_tokens": target.stats.real_tokens,
            "cache_hits": target.cache_hits,
            "oom_backoffs": target.stats.oom_backoffs,
        },
        "auditor_titles": {a.name: a.title or a.name for a in auditors},
        "profile": describe_profile(profile=config.profile, options=config.options),
        "model_card": dict(config.model_card),
        # The auditors in report order: the order typed on the command line changes nothing.
        "config": {**config.to_dict(),
                   "auditors": sorted(config.auditors, key=_section_order) if config.auditors else None},
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def write_report(report: AuditReport, out: Path) -> None:
    """Write results.json (validated), report.html and README.md into ``out``."""
    from audit.report.html import render_html
    from audit.report.markdown import render_markdown

    data = report.to_dict()
    validate_results(data)
    # Render everything before writing anything, so a rendering error leaves no half report.
    texts = {
        "results.json": json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n",
        "report.html": render_html(report),
        "README.md": render_markdown(report),
    }
    write_outputs(out, texts)


def _stderr(msg: str) -> None:
    print(printable(msg), file=sys.stderr, flush=True)
