"""run_audit: config -> target + data -> one prediction pass -> auditors -> report files -> policy."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata as _md
from pathlib import Path
from typing import Any

from audit import __version__
from audit.auditors.base import Auditor, AuditorInfo, discover
from audit.config import AuditConfig
from audit.errors import AUDITOR_UNKNOWN, OUT_EXISTS, AuditInputError, did_you_mean
from audit.results import AuditorResult, AuditReport

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
    names = list(config.auditors) if config.auditors else sorted(registry, key=_section_order)
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
        auditors.append(info.cls(**config.options.get(name, {})))
    return auditors, broken


def check_out_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse to replace an existing report unless asked to."""
    if out.exists() and not out.is_dir():
        raise AuditInputError(f"{out}: --out must be a folder, and this is a file")
    if not overwrite:
        for name in OUTPUT_FILES:
            if (out / name).exists():
                raise AuditInputError(OUT_EXISTS.format(path=out / name))


def run_audit(config: AuditConfig, *, progress: bool = True, write: bool = True,
              log: Callable[[str], None] | None = None) -> AuditReport:
    """Run a whole audit as configured and (with ``write``) write report.html, results.json and
    README.md into ``config.out``. Bad input raises AuditInputError; an auditor's own error
    becomes a failed section."""
    from audit.context import AuditContext
    from audit.data import load_evalset
    from audit.policy import Policy, Rule, check_rules_known, compare_baseline, evaluate_policy, load_policy
    from audit.target import Target

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
    auditors, broken = select_auditors(config)
    check_rules_known(rules, {a.name: a.metric_names for a in auditors})

    start = time.perf_counter()
    say(f"loading model {config.model}")
    target = Target.load(config.model, revision=config.revision, device=config.device, dtype=config.dtype,
                         trust_remote_code=config.trust_remote_code, max_length=config.max_length,
                         max_tokens=config.max_tokens, max_batch=config.batch_size)
    timings["load_model"] = time.perf_counter() - start

    start = time.perf_counter()
    data = load_evalset(config.data, label_names=target.label_names, multi_label=target.multi_label,
                        text_col=config.text_col, pair_col=config.pair_col, label_col=config.label_col,
                        limit=config.limit, sample=config.sample, seed=config.seed, sensitive=config.sensitive,
                        strict=config.strict)
    train = None
    if config.train_data:
        train = load_evalset(config.train_data, label_names=target.label_names, multi_label=target.multi_label,
                             text_col=config.text_col, pair_col=config.pair_col, label_col=config.label_col)
    holdout = None
    if config.holdout_data:
        holdout = load_evalset(config.holdout_data, label_names=target.label_names, multi_label=target.multi_label,
                               text_col=config.text_col, pair_col=config.pair_col, label_col=config.label_col)
    timings["load_data"] = time.perf_counter() - start

    ctx = AuditContext(config=config, target=target, data=data, train=train, holdout=holdout,
                       progress_enabled=progress)
    say(f"predicting {len(data):,} rows")
    start = time.perf_counter()
    _ = ctx.predictions
    timings["predict"] = time.perf_counter() - start
    ctx.notes["truncated_rows"] = target.truncated_rows

    results: list[AuditorResult] = list(broken)
    partial = _Partial(out / PARTIAL_DIR, key=_run_key(config, target, data, train, holdout)) if write else None
    done = partial.load() if (partial is not None and config.resume) else {}
    for auditor in auditors:
        if auditor.name in done:
            say(f"reusing {auditor.name} from the interrupted run")
            result = done[auditor.name]
        else:
            say(f"running {auditor.name}")
            result = _run_with_timeout(auditor, ctx, config.timeout)
            if partial is not None:
                partial.save(result)
        results.append(result)
        timings[auditor.name] = result.timings.get("total", 0.0)
        say(f"  {auditor.name}: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    order = {name: i for i, name in enumerate(config.auditors or sorted({r.auditor for r in results}, key=_section_order))}
    results.sort(key=lambda r: order.get(r.auditor, len(order)))

    meta = build_metadata(config, target, data, train, auditors, timings, truncated=ctx.notes["truncated_rows"],
                          holdout=holdout)
    report = AuditReport(metadata=meta, results=results)
    report.policy = evaluate_policy(rules, results)
    if baseline is not None:
        report.policy += compare_baseline(results, baseline, max_regression=max_regression)
    if write:
        start = time.perf_counter()
        write_report(report, out)
        if config.pdf:
            from audit.report.pdf import write_pdf

            write_pdf(html_path=out / "report.html", pdf_path=out / "report.pdf")
        meta["timings"]["render"] = time.perf_counter() - start
        if partial is not None:
            partial.clear()
    return report


class _AuditorTimeout(Exception):
    pass


def _run_with_timeout(auditor: Auditor, ctx: Any, timeout: float | None) -> AuditorResult:
    """Run one auditor; past ``timeout`` seconds it becomes a failed section. Uses SIGALRM, so it
    applies in the main thread on Unix; elsewhere the auditor runs without a limit."""
    import signal
    import threading

    usable = timeout is not None and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        return auditor.run(ctx)

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise _AuditorTimeout(f"exceeded its timeout of {timeout:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        return auditor.run(ctx)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_key(config: AuditConfig, target: Any, data: Any, train: Any, holdout: Any = None) -> str:
    """What a finished section depends on: model, rows, training and held-out rows, seed and options."""
    import hashlib

    parts = [target.fingerprint, data.fingerprint, train.fingerprint if train is not None else "-",
             str(config.seed), json.dumps(config.options, sort_keys=True, default=str),
             ",".join(config.sensitive)]
    if holdout is not None:
        parts.append(f"holdout:{holdout.fingerprint}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


class _Partial:
    """Each finished section is written as it completes, so an interrupted run loses nothing."""

    def __init__(self, folder: Path, *, key: str) -> None:
        self.folder, self.key = folder, key

    def save(self, result: AuditorResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / f"{result.auditor}.json",
                      json.dumps({"key": self.key, "result": result.to_dict()}, allow_nan=False))

    def load(self) -> dict[str, AuditorResult]:
        found: dict[str, AuditorResult] = {}
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("key") == self.key and data["result"].get("status") == "ok":
                found[data["result"]["auditor"]] = AuditorResult.from_dict(data["result"])
        return found

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


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
            "problem_type": target.problem_type,
            "num_labels": int(model.config.num_labels),
            "labels": target.label_names,
            "max_length": target.max_length,
            "fingerprint": target.fingerprint,
        },
        "data": {
            "source": data.source,
            "rows": len(data),
            "rows_in_file": data.rows_in_file,
            "dropped_empty": data.dropped_empty,
            "text_col": data.text_col,
            "pair_col": data.pair_col,
            "label_col": data.label_col,
            "sensitive": list(config.sensitive),
            "truncated_rows": truncated,
            "fingerprint": data.fingerprint,
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
            "batches": target.stats.batches,
            "rows_scored": target.stats.rows,
            "padded_tokens": target.stats.padded_tokens,
            "real_tokens": target.stats.real_tokens,
            "cache_hits": target.cache_hits,
            "oom_backoffs": target.stats.oom_backoffs,
        },
        "auditor_titles": {a.name: a.title or a.name for a in auditors},
        "model_card": dict(config.model_card),
        "config": config.to_dict(),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def load_baseline(path: str | Path) -> AuditReport:
    """A previous run's results.json, for regression gating."""
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"baseline not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        validate_results(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"{path}: the baseline is not valid JSON: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - jsonschema.ValidationError and friends
        raise AuditInputError(f"{path}: not a rai-audit results.json: {str(exc).splitlines()[0]}") from None
    return AuditReport.from_dict(data)


def schema_path() -> Path:
    return Path(__file__).resolve().parent / "data_files" / "results.schema.json"


def validate_results(data: dict[str, Any]) -> None:
    """Validate a results.json document against the schema kept in the package."""
    import jsonschema

    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: AuditReport, out: Path) -> None:
    """Write results.json (validated), report.html and README.md into ``out``."""
    from audit.report.html import render_html
    from audit.report.markdown import render_markdown

    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    validate_results(data)
    # Render everything before writing anything, so a rendering error leaves no half report.
    texts = {
        "results.json": json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n",
        "report.html": render_html(report),
        "README.md": render_markdown(report),
    }
    for name, text in texts.items():
        _atomic_write(out / name, text)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
