"""AuditConfig: every setting of a run in one validated dataclass, from YAML plus overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.core.options import SEED_MAX, Option, check, read_yaml_file
from audit.core.profiles import DEFAULT_PROFILE, PROFILES
from audit.errors import (
    OPTION_INVALID,
    OPTION_UNKNOWN,
    PATH_MISSING,
    AuditInputError,
    did_you_mean,
)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")
ENGINES = ("local", "ray")
# The model-card fields the report prints (intended use, limitations) and the reviewer block's.
MODEL_CARD_FIELDS = ("intended_use", "out_of_scope", "owner", "limitations", "reviewer", "decision", "date", "notes")
# No timeout shorter than this: below it no auditor can finish, so it is a typo (1e-9), not a limit.
TIMEOUT_MIN_S = 0.1


@dataclass
class AuditConfig:
    """Settings of one audit. Field names are the YAML keys; CLI flags override them."""

    model: str | None = None
    data: str | None = None
    out: str = "rai-audit-report"
    train_data: str | None = None
    holdout_data: str | None = None  # non-members from the training distribution, for privacy
    text_col: str | None = None
    pair_col: str | None = None
    label_col: str | None = None
    sensitive: list[str] = field(default_factory=list)
    auditors: list[str] | None = None  # None: every discovered auditor
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-auditor options
    profile: str = DEFAULT_PROFILE  # budgets of every auditor (audit.core.profiles); options win
    thresholds: list[Any] = field(default_factory=list)  # "performance.accuracy >= 0.8[: warn]"
    policy: str | None = None  # a policy YAML file, or "default" for the shipped one
    baseline: str | None = None  # results.json of a previous run to compare against
    baseline_strict: bool = False  # a baseline from another model or data is an error, not a note
    max_regression: float | None = None  # overrides the policy file's (default 0.02)
    seed: int = 0
    limit: int | None = None
    sample: int | None = None
    revision: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False
    batch_size: int = 64
    max_tokens: int = 8192
    max_length: int | None = None
    overwrite: bool = False
    pdf: bool = False  # also write report.pdf (headless Chromium)
    strict: bool = False  # empty texts are an error instead of being skipped and counted
    resume: bool = False  # reuse sections finished by an interrupted run with the same inputs
    timeout: float | None = None  # seconds per auditor; past it the section is failed
    model_card: dict[str, Any] = field(default_factory=dict)  # intended use, owner, limitations
    # Token classification (read only when the model is a *ForTokenClassification).
    scheme: str | None = None  # tagging scheme; None: detected from the model's labels and the data
    tokens_col: str = "tokens"
    tags_col: str = "ner_tags"
    tag_col: int | None = None  # CoNLL: 0-based column of the tag (default: the last)
    aggregation: str = "first"  # how a word's sub-word predictions become its prediction
    stride: int | None = None  # sub-word tokens shared by overlapping windows of a long sentence
    # Where forward passes run (audit.engine.ray_engine): "local" (this process) or "ray".
    engine: str = "local"
    ray_address: str | None = None  # None: start a local Ray instance; "auto" or host:port: connect
    ray_actors: int | None = None  # actor-pool size; None: one per GPU, else one per CPU
    ray_min_rows: int = 2048  # audit.engine.ray_engine.DEFAULT_MIN_ROWS: smaller passes run here
    # Processes the auditors run in side by side, one torch thread each (audit.core.side_by_side):
    # 0: as many as CPUs when the auditors are at least as many, else 1 (one after another here).
    auditor_processes: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field against CONFIG_OPTIONS (types, ranges, choices) and normalise lists.
        Raises AuditInputError naming the key; nothing is loaded before this passes."""
        for name, option in CONFIG_OPTIONS.items():
            value = check(name, getattr(self, name), option)
            if isinstance(value, tuple):
                value = list(value)
            setattr(self, name, value)
        self.options = _check_auditor_options(self.options)
        self.thresholds = _check_thresholds(self.thresholds)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AuditConfig:
        """Read a YAML config; ``overrides`` (e.g. from the CLI; None means unset) win."""
        path = Path(path)
        if not path.exists():
            raise AuditInputError(PATH_MISSING.format(what="config file", path=path))
        raw = read_yaml_file(path, what="config file") or {}
        if not isinstance(raw, dict):
            raise AuditInputError(f"{path}: expected a mapping of settings at the top level")
        return cls.from_dict(raw, where=str(path), **overrides)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "config", **overrides: Any) -> AuditConfig:
        known = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if not isinstance(key, str) or key not in known:
                raise AuditInputError(
                    OPTION_UNKNOWN.format(
                        where=where, option=key, hint=did_you_mean(str(key), known), known=", ".join(known)
                    )
                )
        merged = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls(**merged)
        except TypeError as exc:
            raise AuditInputError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SCHEME_CHOICES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU", "IO", "BIO", "BIOES", "BIOUL")
AGGREGATIONS = ("first", "average", "max")  # audit.tasks.alignment.AGGREGATIONS (a test keeps them equal)


def _path(help: str, *, nullable: bool = True) -> Option:
    return Option(kind="str", nullable=nullable, help=help, max_chars=4096)


# Every config key (and so every CLI flag) declared once: type, range, choices, help.
CONFIG_OPTIONS: dict[str, Option] = {
    "model": _path("model folder or hub id"),
    "data": _path("eval data file, datasets folder or hub spec"),
    "out": _path("output folder", nullable=False),
    "train_data": _path("training rows (members) for the privacy auditor"),
    "holdout_data": _path("rows of the training distribution the model never saw (non-members, privacy)"),
    "text_col": _path("text column"),
    "pair_col": _path("second text column for pair tasks"),
    "label_col": _path("label column"),
    "sensitive": Option(kind="str_list", split=True, default=(), help="sensitive columns"),
    "auditors": Option(kind="str_list", split=True, nullable=True, non_empty=True,
                       help="auditors to run (default: all installed)"),
    "profile": Option(kind="str", default=DEFAULT_PROFILE, choices=PROFILES,
                      help="budgets of every auditor: quick (CI gate), standard (defaults), thorough (sign-off)"),
    "policy": _path("policy YAML, or 'default'"),
    "baseline": _path("results.json of a previous run"),
    "baseline_strict": Option(kind="bool", default=False, help="a baseline from another model or data is an error"),
    "max_regression": Option(kind="float", nullable=True, min=0, help="tolerated worsening against --baseline"),
    "seed": Option(kind="int", default=0, min=0, max=SEED_MAX, help="seed of every random choice"),
    "limit": Option(kind="int", nullable=True, min=1, help="use the first N rows"),
    "sample": Option(kind="int", nullable=True, min=1, help="use N rows sampled with the seed"),
    "revision": _path("hub revision"),
    "device": Option(kind="str", default="auto", choices=DEVICES, help="where the model runs"),
    "dtype": Option(kind="str", default="float32", choices=DTYPES, help="model precision"),
    "trust_remote_code": Option(kind="bool", default=False, help="run code shipped in the model folder"),
    "batch_size": Option(kind="int", default=64, min=1, max=1_000_000, help="most rows per batch"),
    "max_tokens": Option(kind="int", default=8192, min=1, max=1_000_000_000, help="token budget per batch"),
    "max_length": Option(kind="int", nullable=True, min=1, max=1_000_000, help="truncate inputs to N tokens"),
    "overwrite": Option(kind="bool", default=False, help="replace an existing report"),
    "pdf": Option(kind="bool", default=False, help="also write report.pdf"),
    "strict": Option(kind="bool", default=False, help="an empty text is an error"),
    "resume": Option(kind="bool", default=False, help="reuse sections of an interrupted run"),
    "timeout": Option(kind="float", nullable=True, min=TIMEOUT_MIN_S, max=7 * 24 * 3600,
                      help="seconds per auditor"),
    "model_card": Option(kind="mapping", default={}, keys=MODEL_CARD_FIELDS,
                         help="model-card text: " + ", ".join(MODEL_CARD_FIELDS)),
    "scheme": Option(kind="str", nullable=True, choices=SCHEME_CHOICES,
                     help="token classification: tagging scheme (default: detected)"),
    "tokens_col": _path("token classification: list-of-tokens column", nullable=False),
    "tags_col": _path("token classification: list-of-tags column", nullable=False),
    "tag_col": Option(kind="int", nullable=True, min=0, max=1000,
                      help="token classification, CoNLL: 0-based column of the tag (default: last)"),
    "aggregation": Option(kind="str", default="first", choices=AGGREGATIONS,
                          help="token classification: a word's prediction from its first sub-word, or the average "
                               "or max over its sub-words"),
    "stride": Option(kind="int", nullable=True, min=0, max=100_000,
                     help="token classification: sub-word tokens shared by overlapping windows of a long "
                          "sentence (default: a quarter of the window)"),
    "engine": Option(kind="str", default="local", choices=ENGINES,
                     help="where forward passes run: here (local) or on Ray (ray; pip install 'rai-audit[ray]')"),
    "ray_address": Option(kind="str", nullable=True, max_chars=512,
                          help="engine ray: 'auto' (the cluster `ray start --head` started here) or host:port "
                               "(default: start a local Ray instance with this machine's CPUs and GPUs)"),
    "ray_actors": Option(kind="int", nullable=True, min=1, max=100_000,
                         help="engine ray: model copies (actors) scoring at once (default: one per GPU, else per CPU)"),
    "auditor_processes": Option(kind="int", default=0, min=0, max=1024,
                                help="processes the auditors run in side by side, one torch thread each (default 0: "
                                     "one per CPU when there are at least as many auditors as CPUs; 1: one after "
                                     "another in this process, with every thread)"),
    "ray_min_rows": Option(kind="int", default=2048, min=1, max=1_000_000_000,
                           help="engine ray: passes of fewer rows run in this process (a Ray job costs seconds)"),
}


def _check_auditor_options(options: Any) -> dict[str, dict[str, Any]]:
    """The shape of ``options`` (auditor name -> its options); values are checked by each
    auditor's declared options when the auditors are selected, still before any model loads."""
    problem = "expected a mapping of auditor name to a mapping of its options"
    if not isinstance(options, dict):
        raise AuditInputError(OPTION_INVALID.format(option="options", problem=problem))
    out: dict[str, dict[str, Any]] = {}
    for auditor, opts in options.items():
        if not isinstance(auditor, str) or not isinstance(opts, dict) or not all(isinstance(k, str) for k in opts):
            raise AuditInputError(OPTION_INVALID.format(option=f"options.{auditor}", problem=problem))
        out[auditor] = dict(opts)
    return out


def _check_thresholds(thresholds: Any) -> list[Any]:
    """Each rule parses (a string, or a mapping as in policy files)."""
    from audit.core.policy import Rule

    if isinstance(thresholds, str):
        thresholds = [thresholds]
    if not isinstance(thresholds, list) or len(thresholds) > 1000:
        raise AuditInputError(OPTION_INVALID.format(option="thresholds", problem="expected a list of rules"))
    for rule in thresholds:
        if not isinstance(rule, (str, dict)):
            raise AuditInputError(OPTION_INVALID.format(
                option="thresholds", problem=f"expected a rule such as 'performance.accuracy >= 0.8', got {rule!r}"))
        Rule.parse(rule)
    return list(thresholds)
