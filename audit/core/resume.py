"""--resume: each finished section is saved as it completes, under a key that covers everything
the section depends on and a MAC with a per-user key kept outside --out, so an interrupted run
loses nothing and a stale, planted or edited section is never reused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audit import __version__
from audit.core.results import AuditorResult
from audit.core.schema import validate_result
from audit.report.outdir import atomic_write, read_regular

if TYPE_CHECKING:
    from audit.config import AuditConfig

def run_key(config: AuditConfig, target: Any, data: Any, train: Any, holdout: Any = None) -> str:
    """Everything a finished section depends on: the tool's version, the model (config, weights
    and every tokenizer file), every setting of the run that reaches an auditor, and every value
    of every column of the rows used (eval, training and held-out rows; sensitive columns and PII
    scan included), and the contents of files that options name."""
    import hashlib

    settings = {k: v for k, v in config.to_dict().items() if k not in RESUME_IGNORED}
    parts = [__version__, target.fingerprint, str(target.max_length), frame_digest(data),
             frame_digest(train) if train is not None else "-",
             frame_digest(holdout) if holdout is not None else "-",
             json.dumps(settings, sort_keys=True, default=str), _named_files_digest(config.options)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _named_files_digest(options: dict[str, dict[str, Any]]) -> str:
    """The contents of every file or folder an option names (a lexicon, reference models): a
    changed file behind an unchanged path is a changed input."""
    import hashlib

    h = hashlib.sha256()
    values = [v for opts in options.values() for v in opts.values()]
    names = sorted({str(x) for v in values for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, str)})
    for name in names:
        path = Path(name)
        try:
            if path.is_file():
                files = [path]
            else:
                files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
        except OSError:
            files = []
        for f in files[:10_000]:
            h.update(str(f).encode("utf-8", "surrogatepass"))
            try:
                with f.open("rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(chunk)
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()


# Settings that change where or whether the report is written, not what a section holds.
RESUME_IGNORED = frozenset({"auditors", "out", "overwrite", "resume", "pdf", "timeout", "thresholds", "policy",
                            "baseline", "baseline_strict", "max_regression", "model_card"})


def frame_digest(data: Any) -> str:
    import hashlib

    h = hashlib.sha256(data.fingerprint.encode())
    frame = data.frame if hasattr(data, "frame") else data.columns  # token data: tokens and tags are fingerprinted
    h.update(frame.to_csv(index=False).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class Partial:
    """Each finished section is written as it completes, so an interrupted run loses nothing.

    A saved section is reused only when its key (see :func:`_run_key`) matches, its MAC checks
    with this user's resume key (kept outside --out, so a file planted or edited in the output
    folder is not accepted), and it validates against the results schema."""

    def __init__(self, folder: Path, *, key: str) -> None:
        self.folder, self.key = folder, key
        self.secret = _resume_secret()

    def _mac(self, body: str) -> str:
        import hashlib
        import hmac

        return hmac.new(self.secret, f"{self.key}|{body}".encode(), hashlib.sha256).hexdigest()

    def save(self, result: AuditorResult) -> None:
        body = json.dumps(result.to_dict(), allow_nan=False, sort_keys=True)
        atomic_write(self.folder, f"{result.auditor}.json",
                     json.dumps({"key": self.key, "mac": self._mac(body), "result": body}))

    def load(self) -> tuple[dict[str, AuditorResult], list[str]]:
        """(sections to reuse, why others were not reused)."""
        found: dict[str, AuditorResult] = {}
        rejected: list[str] = []
        for path in sorted(self.folder.glob("*.json")):
            raw = read_regular(path)
            try:
                saved = json.loads(raw) if raw is not None else None
                body = saved["result"] if isinstance(saved, dict) else None
                if not isinstance(body, str):
                    raise ValueError
            except (ValueError, KeyError, TypeError, RecursionError):
                rejected.append(f"{path.name}: not a saved section")
                continue
            if saved.get("key") != self.key:
                rejected.append(f"{path.name}: saved for other inputs or settings")
                continue
            import hmac

            if not isinstance(saved.get("mac"), str) or not hmac.compare_digest(saved["mac"], self._mac(body)):
                rejected.append(f"{path.name}: its contents do not match what this run saved (edited?)")
                continue
            try:
                data = json.loads(body)
                validate_result(data)
                result = AuditorResult.from_dict(data)
            except (Exception, RecursionError) as exc:  # noqa: BLE001 - jsonschema errors and malformed fields alike
                rejected.append(f"{path.name}: invalid ({str(exc).splitlines()[0][:120]})")
                continue
            if result.status == "ok" and path.name == f"{result.auditor}.json":
                found[result.auditor] = result
        return found, rejected

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


RESUME_KEY_FILE = "resume.key"


def _resume_secret() -> bytes:
    """This user's key for saved sections, kept in the user's cache (mode 0600), not in --out.
    Where none can be kept, a key for this process alone: sections are then never reused."""
    import secrets

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rai-audit"
    path = base / RESUME_KEY_FILE
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        raw = read_regular(path, limit=1024)
        if raw is not None and len(raw) >= 32:
            return raw
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key
    except OSError:
        return secrets.token_bytes(32)
