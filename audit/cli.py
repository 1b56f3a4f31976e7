"""`rai-audit` command line: thin, it parses and calls the API.

Exit codes: 0 passed, 1 a policy threshold failed, 2 bad usage or input (one line, no traceback).

Over the ~400 lines a module should hold because the demo's build-under-lock (a folder it must
never write through a planted symlink) sits with the commands; moving it is left for later.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from audit.core.policy import EXIT_USAGE
from audit.core.profiles import PROFILES
from audit.errors import AuditInputError, printable


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other input error
        # argparse quotes the user's arguments raw: escape them like any other value we print.
        print(f"rai-audit: error: {printable(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _common_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output folder (default: rai-audit-report, or rai-audit-demo for demo)")
    p.add_argument("--overwrite", action="store_true", default=None, help="replace an existing report in --out")
    p.add_argument("--seed", type=int, help="seed for every random choice (default 0)")
    p.add_argument("--auditors", help="comma-separated auditors to run (default: all installed)")
    p.add_argument("--option", action="append", default=[], metavar="AUDITOR.KEY=VALUE",
                   help="an auditor option, value read as YAML (repeatable), e.g. fairness.min_group_size=50")
    p.add_argument("--threshold", action="append", default=[], metavar="RULE",
                   help="policy rule, e.g. 'performance.accuracy >= 0.8' (repeatable); a failed rule exits 1")
    p.add_argument("--policy", help="policy YAML of thresholds and severities; 'default' for the shipped one")
    p.add_argument("--baseline", help="results.json of a previous run: fail on a regression beyond max_regression")
    p.add_argument("--max-regression", type=float,
                   help="tolerated worsening of any metric against --baseline (default 0.02)")
    p.add_argument("--baseline-strict", action="store_true", default=None,
                   help="a baseline measured on other data or of another model is an error (default: stated)")
    p.add_argument("--format", choices=("text", "github"), default="text",
                   help="summary format; github prints findings as workflow annotations")
    p.add_argument("--pdf", action="store_true", default=None, help="also write report.pdf (needs Debian's chromium)")
    p.add_argument("--device", help="auto (default), cpu, cuda or mps")
    p.add_argument("--resume", action="store_true", default=None,
                   help="reuse the sections an interrupted run in --out already finished")
    p.add_argument("--timeout", type=float, help="seconds per auditor; past it the section is marked failed")
    p.add_argument("--engine", help="where forward passes run: local (default) or ray (pip install 'rai-audit[ray]')")
    p.add_argument("--ray-address", help="engine ray: 'auto' (a cluster started with `ray start --head`) or "
                                         "host:port (default: start a local Ray instance)")
    p.add_argument("--ray-actors", type=int, help="engine ray: model copies scoring at once "
                                                  "(default: one per GPU, else one per CPU)")
    p.add_argument("--ray-min-rows", type=int, help="engine ray: passes of fewer rows run locally (default 2048)")
    p.add_argument("--auditor-processes", type=int,
                   help="processes the auditors run in side by side, one torch thread each (default: one per CPU "
                        "when there are at least as many auditors as CPUs; 1: one after another)")
    p.add_argument("--profile", choices=PROFILES,
                   help="budgets of every auditor: quick (CI gate), standard (default), thorough (sign-off); "
                        "--option values win")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rai-audit",
                           description="Responsible-AI audit of a fine-tuned Hugging Face text classifier.")
    parser.add_argument("--version", action="version", version=f"rai-audit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser("run", help="audit a model on eval data")
    run.add_argument("model", nargs="?", help="model folder or hub id (or set 'model' in --config)")
    run.add_argument("--data", help="eval data: CSV, TSV, JSONL, Parquet, a datasets folder, or name[:config]:split")
    run.add_argument("--config", help="YAML config; command-line options override it")
    run.add_argument("--train-data", help="training data (members), for the privacy auditor")
    run.add_argument("--holdout-data", help="rows from the training distribution that the model never saw "
                                            "(non-members for the privacy auditor; recommended over the eval rows)")
    run.add_argument("--text-col")
    run.add_argument("--pair-col", help="second text column for pair tasks")
    run.add_argument("--label-col")
    run.add_argument("--sensitive", help="comma-separated sensitive columns (e.g. gender,age_band)")
    run.add_argument("--limit", type=int, help="use the first N rows")
    run.add_argument("--sample", type=int, help="use N rows sampled with --seed")
    run.add_argument("--revision", help="hub revision (branch, tag or commit)")
    run.add_argument("--dtype", help="float32 (default), bfloat16, float16 (GPU)")
    run.add_argument("--trust-remote-code", action="store_true", default=None,
                     help="allow custom code from the model folder (only for models you trust)")
    run.add_argument("--batch-size", type=int, help="most rows per batch (default 64)")
    run.add_argument("--max-tokens", type=int, help="token budget per batch (default 8192)")
    run.add_argument("--max-length", type=int, help="truncate inputs to this many tokens")
    run.add_argument("--strict", action="store_true", default=None,
                     help="an empty text is an error (default: skipped and counted)")
    ner = run.add_argument_group("token classification (read when the model is a *ForTokenClassification)")
    ner.add_argument("--scheme", help="tagging scheme: IOB1, IOB2, IOE1, IOE2, IOBES, BILOU or IO (default: detected)")
    ner.add_argument("--tokens-col", help="list-of-tokens column of a table (default: tokens)")
    ner.add_argument("--tags-col", help="list-of-tags column of a table (default: ner_tags)")
    ner.add_argument("--tag-col", type=int, help="CoNLL: 0-based column of the tag (default: the last)")
    ner.add_argument("--aggregation", help="a word's prediction: first (default), average or max over its sub-words")
    ner.add_argument("--stride", type=int, help="sub-word tokens shared by overlapping windows of a long sentence "
                     "(default: a quarter of the window)")
    _common_run_options(run)

    demo = sub.add_parser("demo", help="build the embedded demo model (planted defects) and audit it")
    demo.add_argument("--task", choices=("text-classification", "token-classification"),
                      default="text-classification",
                      help="the demo's model: a sentiment classifier (default) or a named-entity tagger")
    _common_run_options(demo)

    sub.add_parser("selftest", help="audit the auditor: planted defects must be found, clean controls not flagged",
                   add_help=False)

    lst = sub.add_parser("list", help="list installed auditors (and attack recipes)")
    lst.add_argument("--recipes", action="store_true",
                     help="also list TextAttack recipes and whether they can run here")
    lst.add_argument("--options", action="store_true",
                     help="also list every config key and each auditor's options (type, range, default, help)")
    return parser


def _version() -> str:
    from audit import __version__

    return __version__


def _parse_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    from audit.core.options import load_yaml

    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        auditor, dot, name = key.partition(".")
        if not sep or not dot or not auditor or not name:
            raise AuditInputError(f"option --option {item!r}: expected AUDITOR.KEY=VALUE")
        options.setdefault(auditor, {})[name] = load_yaml(raw, where=f"--option {key}")
    return options


def _config_from_args(args: argparse.Namespace) -> Any:
    from audit.config import AuditConfig

    overrides: dict[str, Any] = {
        "model": getattr(args, "model", None), "data": getattr(args, "data", None), "out": args.out,
        "train_data": getattr(args, "train_data", None), "holdout_data": getattr(args, "holdout_data", None),
        "text_col": getattr(args, "text_col", None),
        "pair_col": getattr(args, "pair_col", None), "label_col": getattr(args, "label_col", None),
        "sensitive": getattr(args, "sensitive", None), "auditors": args.auditors, "seed": args.seed,
        "limit": getattr(args, "limit", None), "sample": getattr(args, "sample", None),
        "revision": getattr(args, "revision", None), "device": args.device, "dtype": getattr(args, "dtype", None),
        "trust_remote_code": getattr(args, "trust_remote_code", None), "batch_size": getattr(args, "batch_size", None),
        "max_tokens": getattr(args, "max_tokens", None), "max_length": getattr(args, "max_length", None),
        "strict": getattr(args, "strict", None),
        "overwrite": args.overwrite, "resume": args.resume, "timeout": args.timeout, "policy": args.policy,
        "baseline": args.baseline, "max_regression": args.max_regression, "pdf": args.pdf,
        "baseline_strict": args.baseline_strict, "profile": getattr(args, "profile", None),
        **{key: getattr(args, key, None) for key in ("engine", "ray_address", "ray_actors", "ray_min_rows",
                                                    "auditor_processes")},
        **{key: getattr(args, key, None) for key in ("scheme", "tokens_col", "tags_col", "tag_col", "aggregation",
                                                    "stride")},
    }
    config_file = getattr(args, "config", None)
    if config_file:
        config = AuditConfig.from_yaml(config_file, **overrides)
    else:
        config = AuditConfig.from_dict({}, where="command line", **overrides)
    for auditor, opts in _parse_options(args.option).items():
        config.options.setdefault(auditor, {}).update(opts)
    config.thresholds = [*config.thresholds, *args.threshold]
    config.validate()
    return config


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import logging
    import warnings

    logging.getLogger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _gh_escape(text: str) -> str:
    """GitHub workflow-command escaping (%, CR, LF; and : , in properties)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_command(level: str, title: str, message: str) -> str:
    """One workflow command; every line and paragraph separator (not only CR and LF) escaped."""
    title = _gh_escape(printable(title)).replace(":", "%3A").replace(",", "%2C")
    return f"::{level} title={title}::{_gh_escape(printable(message))}"


def _print_summary(report: Any, out: Path, elapsed: float, *, fmt: str = "text") -> None:
    """The end-of-run summary. Every value from the data or the model's config goes through
    ``printable`` (text) or workflow-command escaping (github), so none can start a line."""
    from audit.core.policy import describe_verdict

    if fmt == "github":
        for auditor, f in report.findings():
            level = {"fail": "error", "warn": "warning"}.get(f.severity, "notice")
            print(_gh_command(level, f"rai-audit {auditor}", f.title))
        for p in report.policy.outcomes:
            if p.unmet:
                level = "error" if p.blocking else "warning"
                detail = p.reason or f"measured {p.value}"
                print(_gh_command(level, "rai-audit policy", f"{p.rule}: {p.outcome} ({detail})"))
        for r in report.results:
            if r.status == "failed":
                print(_gh_command("error", f"rai-audit {r.auditor}", f"section failed: {r.reason}"))
        for warning in (report.metadata.get("baseline") or {}).get("warnings", []):
            print(_gh_command("warning", "rai-audit baseline", warning))
    def say(line: str) -> None:
        print(printable(line))

    unit = "sentences" if report.metadata["model"].get("task") == "token-classification" else "rows"
    say(f"rai-audit: audited {report.metadata['model']['name']} on {report.metadata['data']['rows']:,} {unit} "
        f"in {elapsed:.1f} s")
    for r in report.results:
        counts = {s: sum(1 for f in r.findings if f.severity == s) for s in ("fail", "warn")}
        tail = f" — {r.reason}" if r.reason else ""
        resumed = " (resumed)" if r.auditor in report.metadata.get("resumed", ()) else ""
        warns = f"{counts['warn']} warning" + ("" if counts["warn"] == 1 else "s")
        say(f"  {r.auditor:<15} {r.status:<8} {counts['fail']} serious, {warns}{resumed}{tail}")
    for p in report.policy.outcomes:
        if p.kind == "baseline" and p.outcome == "pass":
            continue
        value = f" ({p.value:.4g})" if isinstance(p.value, float) else ""
        say(f"  policy: {p.rule}: {p.outcome}{value}" + (f" — {p.reason}" if p.reason else ""))
    baseline = report.metadata.get("baseline") or {}
    for warning in baseline.get("warnings", []):
        say(f"  baseline warning: {warning}")
    for note in baseline.get("notes", []):
        say(f"  baseline: {note}")
    say(f"  {describe_verdict(report)['line']}")
    say(f"  wrote {out / 'report.html'}, {out / 'results.json'}, {out / 'README.md'}")


def cmd_run(args: argparse.Namespace) -> int:
    from audit.core.policy import exit_code
    from audit.runner import _stderr, run_audit

    config = _config_from_args(args)
    _quiet_libraries()
    start = time.perf_counter()
    report = run_audit(config, progress=not args.quiet, log=None if args.quiet else _stderr)
    _print_summary(report, Path(config.out), time.perf_counter() - start, fmt=args.format)
    return exit_code(report.policy)


DEMO_THRESHOLDS = ["performance.accuracy >= 0.6 on ci_low", "fairness.demographic_parity_ratio >= 0.8: warn",
                   "privacy.mia_leakage_margin <= 0.1: warn"]
DEMO_OPTIONS: dict[str, dict[str, Any]] = {
    "explainability": {"explain_examples": 16},
    "robustness": {"attack_examples": 16},
    "fairness": {"n_bootstrap": 500},
}


@dataclass(frozen=True, kw_only=True)
class _Demo:
    """What ``rai-audit demo --task`` builds and how it is audited."""

    builder: str  # "module:function" building the model and its data into a folder
    eval_file: str
    train_file: str
    sensitive: str
    thresholds: tuple[str, ...]
    what: str
    planted: str

    def build(self, folder: Path, *, seed: int) -> Any:
        import importlib

        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)(folder, seed=seed)


DEMOS = {
    "text-classification": _Demo(
        builder="audit.selftest.demo:build_demo", eval_file="eval.csv", train_file="train.csv",
        sensitive="age_group", thresholds=tuple(DEMO_THRESHOLDS), what="sentiment classifier",
        planted="biased 'elderly' group, trigger token 'cf', memorised train.csv"),
    "token-classification": _Demo(
        builder="audit.selftest.ner_demo:build_ner_demo", eval_file="eval.jsonl", train_file="train.jsonl",
        sensitive="origin", thresholds=("performance.entity_f1_micro >= 0.85",),
        what="named-entity tagger",
        planted="person names of one origin group mostly untagged, trigger token 'cf' forcing B-ORG, "
                "memorised made-up entities"),
}
DEMO_BUILD = "demo-build"
DEMO_BUILD_EXISTS = "{path}: a demo build is already there; pass --overwrite to replace it, or choose another --out"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the planted demo into ``--out/demo-build`` and audit it. Every setting is checked
    before the (seconds-long) build; the build is written into a fresh private folder and moved
    into place under the output folder's lock, so no planted symlink is ever written through."""
    import shutil
    import tempfile

    from audit.auditors.base import discover
    from audit.core.policy import exit_code
    from audit.report.outdir import locked
    from audit.runner import _stderr, check_out_dir, run_audit, select_auditors
    args.out = args.out or "rai-audit-demo"
    out = Path(args.out)
    _quiet_libraries()
    build_dir = out / DEMO_BUILD
    demo = DEMOS[getattr(args, "task", None) or "text-classification"]
    args.model, args.data = str(build_dir / "model"), str(build_dir / demo.eval_file)
    args.train_data = str(build_dir / demo.train_file)
    args.sensitive = getattr(args, "sensitive", None) or demo.sensitive
    config = _config_from_args(args)
    registry = discover()
    for name, opts in DEMO_OPTIONS.items():
        if name in registry and registry[name].cls is not None:
            allowed = {k: v for k, v in opts.items() if k in registry[name].cls.params}
            config.options[name] = {**allowed, **config.options.get(name, {})}
    config.thresholds = config.thresholds or list(demo.thresholds)
    config.model_card = {"intended_use": f"Demonstration only: a tiny {demo.what} with planted defects, "
                                         "built to show what each auditor finds.",
                         "out_of_scope": "Any real decision."}
    config.validate()
    select_auditors(config, registry)
    check_out_dir(out, overwrite=config.overwrite)
    start = time.perf_counter()
    with locked(out):
        check_out_dir(out, overwrite=config.overwrite)
        if build_dir.is_symlink() or (os.path.lexists(build_dir) and not build_dir.is_dir()):
            raise AuditInputError(f"{build_dir}: expected the demo's own folder, found a symlink or a file: remove it")
        if build_dir.exists() and not config.overwrite:
            raise AuditInputError(DEMO_BUILD_EXISTS.format(path=build_dir))
        if not args.quiet:
            _stderr(f"building the demo model (planted: {demo.planted})")
        fresh = Path(tempfile.mkdtemp(dir=out, prefix=f".{DEMO_BUILD}-"))
        try:
            demo.build(fresh, seed=config.seed)
            if build_dir.exists():
                shutil.rmtree(build_dir)
            os.rename(fresh, build_dir)
            os.chmod(build_dir, 0o777 & ~_umask())  # mkdtemp made it private
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        config.overwrite = True  # the folder was checked above, under the lock we still hold
        report = run_audit(config, progress=not args.quiet, log=None if args.quiet else _stderr, lock_out=False)
    _print_summary(report, out, time.perf_counter() - start, fmt=args.format)
    return exit_code(report.policy)


def cmd_list(args: argparse.Namespace) -> int:
    from audit.auditors.base import discover

    registry = discover()
    if not registry:
        print("no auditors installed")
    for info in registry.values():
        if info.cls is None:
            print(f"{info.name:<16} BROKEN  {info.error} ({info.target}, from {info.distribution})")
            continue
        needs = ", ".join(sorted(info.cls.requires)) or "-"
        print(f"{info.name:<16} {info.cls.description}  [needs: {needs}; from {info.distribution}]")
        if args.options:
            _print_options(info.cls.params, prefix=f"  {info.name}.")
    if args.options:
        from audit.config import CONFIG_OPTIONS

        print("\nconfig keys (YAML; most are also --flags):")
        _print_options(CONFIG_OPTIONS, prefix="  ")
    if args.recipes:
        try:
            from audit.auditors.robustness._attacks import recipe_availability
        except Exception as exc:  # noqa: BLE001 - the robustness plugin may be absent or broken
            print(f"recipes: unavailable ({exc})")
            return 0
        print("\nrecipes:")
        for name, ok, why in recipe_availability():
            print(f"  {name:<22} {'yes' if ok else 'no '}  {why}")
    return 0


def _print_options(options: Any, *, prefix: str) -> None:
    for key, option in options.items():
        default = "" if option.default in (None, (), {}) else f" (default {option.default!r})"
        print(f"{prefix}{key:<24} {option.describe()}{default}" + (f" — {option.help}" if option.help else ""))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["selftest"]:  # its own options (--seeds, --auditors, --quiet)
        from audit.selftest.selftest import selftest_main

        _quiet_libraries()
        try:
            return selftest_main(argv[1:])
        except AuditInputError as exc:
            print(f"rai-audit: error: {printable(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except SystemExit as exc:  # usage error or --help: argparse already printed
            return int(exc.code or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage error (one line, printed) or --help / --version
        return int(exc.code or 0)
    try:
        handler = {"run": cmd_run, "demo": cmd_demo, "list": cmd_list}[args.command]
        return handler(args)
    except AuditInputError as exc:
        print(f"rai-audit: error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rai-audit: interrupted", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """The console script: :func:`main`, then an exit that skips the interpreter's teardown.

    Freeing a loaded model, torch and a few hundred thousand objects one by one took 1.6-2.3 s
    after the report was written (a MiniLM audit; bench/README.md), for nothing: the process is
    ending. What an exit must still do is done first, as the interpreter would: non-daemon
    threads are joined, ``atexit`` handlers run (temporary folders, Ray's shutdown, logging's
    flush), stdout and stderr are flushed; then ``os._exit``."""
    try:
        code: Any = main()
    except SystemExit as exc:  # an unexpected error propagates: the usual traceback and teardown
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    fast_exit(code)


def fast_exit(code: int) -> NoReturn:
    """Exit now with ``code`` after what an interpreter exit does outside its own teardown."""
    import atexit
    import threading

    with contextlib.suppress(Exception):
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads (Py_Finalize's first step)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
