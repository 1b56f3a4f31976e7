"""The output folder, written safely: checked before any work, locked for the run, files
replaced atomically through unpredictable temporary names, and our own reports recognised by a
marker (name -> sha256 of what we wrote), never by their file names.

What this defends against: a planted symlink at a temporary or partial-results path (writes
never follow one), a file we did not write under a report's name (a hand-written README.md is
never replaced), two runs writing into one folder (the second one stops), and an --out that
cannot hold a report (found before the model is loaded, not after the audit).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from audit.errors import OUT_LOCKED, OUT_UNWRITABLE, AuditInputError

MARKER = ".rai-audit-report.json"
LOCK = ".rai-audit.lock"
# A saved section or marker larger than this is not ours: refuse it instead of reading it whole.
MAX_STATE_BYTES = 64 << 20


def check_writable(out: Path) -> None:
    """--out is a folder (or can be made) that we can write to; one-line error otherwise."""
    if out.is_symlink() and not out.exists():
        raise AuditInputError(OUT_UNWRITABLE.format(path=out, problem="it is a symlink to nothing"))
    probe = out
    while not os.path.lexists(probe):
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == out else f"lies under {probe}, which is a file"
        raise AuditInputError(OUT_UNWRITABLE.format(path=out, problem=f"--out must be a folder, and it {what}"))
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".rai-audit-probe-")
    except OSError as exc:
        raise AuditInputError(OUT_UNWRITABLE.format(path=out, problem=exc.strerror or str(exc))) from None
    os.close(fd)
    os.unlink(name)


def _sha256(path: Path) -> str | None:
    data = read_regular(path, limit=None)
    return None if data is None else hashlib.sha256(data).hexdigest()


def read_regular(path: Path, *, limit: int | None = MAX_STATE_BYTES) -> bytes | None:
    """The bytes of a regular file, not following a symlink; None if it is not one (or too big)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (limit is not None and info.st_size > limit):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _marker(out: Path) -> dict[str, str]:
    raw = read_regular(out / MARKER, limit=1 << 20)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _must_be_file(path: Path) -> None:
    if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
        raise AuditInputError(OUT_UNWRITABLE.format(
            path=path, problem="rai-audit keeps a file of its own here, and something else stands there: remove it"))


def foreign_files(out: Path, names: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """(ours, foreign) among ``names`` present in ``out``. Ours: a regular file whose sha256 is
    the one our marker recorded when we wrote it. Anything else there is foreign."""
    if not out.is_dir():
        return [], []
    _must_be_file(out / MARKER)
    written = _marker(out)
    mine, foreign = [], []
    for name in names:
        path = out / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink() or not path.is_file():
            foreign.append(path)
        elif written.get(name) is not None and written.get(name) == _sha256(path):
            mine.append(path)
        else:
            foreign.append(path)
    return mine, foreign


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """An exclusive lock on ``out`` for the run (flock: released by the OS if we die)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise AuditInputError(OUT_UNWRITABLE.format(path=out, problem=f"{LOCK}: {exc.strerror or exc}")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AuditInputError(OUT_LOCKED.format(path=out, lock=path)) from None
            raise
        yield
    finally:
        os.close(fd)


def atomic_write(folder: Path, name: str, data: str | bytes) -> None:
    """Write ``folder/name`` through an exclusive, unpredictable temporary file in the same
    folder, then rename over the destination (a symlink there is replaced, never followed)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file you write
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_outputs(out: Path, files: dict[str, str | bytes]) -> None:
    """Write report files atomically and record them in the marker, so a later run knows them
    as ours (and anything else under those names as not ours)."""
    out.mkdir(parents=True, exist_ok=True)
    written = _marker(out)
    for name, data in files.items():
        atomic_write(out, name, data)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        written[name] = hashlib.sha256(payload).hexdigest()
    atomic_write(out, MARKER, json.dumps({"tool": "rai-audit", "files": written}, indent=1, sort_keys=True))


def record_output(out: Path, name: str) -> None:
    """Add a file written by another tool on our behalf (report.pdf) to the marker."""
    digest = _sha256(out / name)
    if digest is None:
        return
    written = _marker(out)
    written[name] = digest
    atomic_write(out, MARKER, json.dumps({"tool": "rai-audit", "files": written}, indent=1, sort_keys=True))


def private_dir(path: Path) -> Path:
    """A folder of ours inside --out (partial results): refused if a symlink or a file stands there."""
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        raise AuditInputError(OUT_UNWRITABLE.format(
            path=path, problem="expected a folder of rai-audit's, found a symlink or a file: remove it"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in path.iterdir():
        _must_be_file(entry)
    return path
