"""AuditConfig: every setting of a run in one validated dataclass, from YAML plus overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import (
    OPTION_INVALID,
    OPTION_UNKNOWN,
    PATH_MISSING,
    AuditInputError,
    did_you_mean,
)

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "bfloat16", "float16")


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
    thresholds: list[Any] = field(default_factory=list)  # "performance.accuracy >= 0.8[: warn]"
    policy: str | None = None  # a policy YAML file, or "default" for the shipped one
    baseline: str | None = None  # results.json of a previous run to compare against
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if isinstance(self.sensitive, str):
            self.sensitive = [s.strip() for s in self.sensitive.split(",") if s.strip()]
        if isinstance(self.auditors, str):
            self.auditors = [s.strip() for s in self.auditors.split(",") if s.strip()]
        if isinstance(self.thresholds, str):
            self.thresholds = [self.thresholds]
        if self.device not in DEVICES:
            raise AuditInputError(
                OPTION_INVALID.format(option="device", problem=f"expected one of {', '.join(DEVICES)}, got {self.device!r}")
            )
        if self.dtype not in DTYPES:
            raise AuditInputError(
                OPTION_INVALID.format(option="dtype", problem=f"expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
            )
        for name in ("limit", "sample", "max_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise AuditInputError(
                    OPTION_INVALID.format(option=name, problem=f"expected a positive integer, got {value!r}")
                )
        if self.timeout is not None and (not isinstance(self.timeout, (int, float)) or self.timeout <= 0):
            raise AuditInputError(OPTION_INVALID.format(option="timeout", problem=f"expected a positive number of seconds, got {self.timeout!r}"))
        for name in ("batch_size", "max_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise AuditInputError(
                    OPTION_INVALID.format(option=name, problem=f"expected a positive integer, got {value!r}")
                )
        if not isinstance(self.seed, int):
            raise AuditInputError(OPTION_INVALID.format(option="seed", problem=f"expected an integer, got {self.seed!r}"))
        if not isinstance(self.options, dict) or not all(isinstance(v, dict) for v in self.options.values()):
            raise AuditInputError(
                OPTION_INVALID.format(option="options", problem="expected a mapping of auditor name to its options")
            )

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> AuditConfig:
        """Read a YAML config; ``overrides`` (e.g. from the CLI; None means unset) win."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise AuditInputError(PATH_MISSING.format(what="config file", path=path))
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AuditInputError(f"{path}: not valid YAML: {first}") from None
        if not isinstance(raw, dict):
            raise AuditInputError(f"{path}: expected a mapping of settings at the top level")
        return cls.from_dict(raw, where=str(path), **overrides)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "config", **overrides: Any) -> AuditConfig:
        known = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if key not in known:
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
