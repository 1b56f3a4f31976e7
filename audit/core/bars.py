"""Progress bars: tqdm on stderr, or, in an auditor running in a forked process, messages that the
parent draws (:class:`Board`), so that two auditors running side by side never write over each
other's bars on one terminal.

Every bar in the package comes from :func:`bar`; a forked auditor process sets :data:`_sink` (its
connection to the parent) before running its auditors.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

# The connection to the parent in a forked auditor process; None: draw here.
_sink: Any = None
_lock = threading.Lock()
_ids = itertools.count()
SEND_EVERY_S = 0.2  # a forked process reports a bar's progress at most this often (and when it ends)


def set_sink(conn: Any) -> None:
    """Send this process's bars and :func:`say` lines to ``conn`` (None: draw them here)."""
    global _sink
    _sink = conn


def _send(message: tuple[Any, ...]) -> None:
    with _lock:
        _sink.send(("msg", message))


def bar(*, total: int | None, desc: str) -> Any:
    """A progress bar with tqdm's ``update(n)`` and ``close()``: tqdm here, or a bar the parent
    draws when this is a forked auditor process."""
    if _sink is not None:
        return RemoteBar(total=total, desc=desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def ask(message: tuple[Any, ...]) -> Any:
    """Send ``message`` to the parent and wait for its answer (a forked auditor process only). The
    question carries an id, and the answer with that id is the one returned: an answer to a
    question abandoned earlier (an exception while waiting) is dropped, never taken for this one."""
    request = next(_ids)
    with _lock:
        _sink.send(("msg", (*message, request)))
        while True:
            reply = _sink.recv()
            if isinstance(reply, tuple) and len(reply) == 3 and reply[0] == "answer" and reply[1] == request:
                return reply[2]


def say(text: str) -> bool:
    """Send a progress line to the parent; False when this is not a forked auditor process."""
    if _sink is None:
        return False
    _send(("say", text))
    return True


class RemoteBar:
    """A bar drawn by the parent: ``open`` when made, the count at most every SEND_EVERY_S, ``close``."""

    def __init__(self, *, total: int | None, desc: str) -> None:
        self.id = next(_ids)
        self.n = 0
        self.total = total
        self._sent = time.monotonic()
        self._closed = False
        _send(("open", self.id, str(desc), total))

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._sent >= SEND_EVERY_S:
            self._sent = now
            _send(("update", self.id, self.n))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _send(("close", self.id, self.n))

    def __enter__(self) -> RemoteBar:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()


class Board:
    """The parent's side: draws the bars its forked auditor processes report, one tqdm bar each,
    and passes their lines to ``say``."""

    def __init__(self, *, enabled: bool, say: Any) -> None:
        self.enabled = enabled
        self.say = say
        self.bars: dict[tuple[int, int], Any] = {}

    def handle(self, worker: int, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "say":
            self.say(str(message[1]))
            return
        if not self.enabled:
            return
        key = (worker, int(message[1]))
        if kind == "open":
            from tqdm.auto import tqdm

            self.bars[key] = tqdm(total=message[3], desc=message[2], leave=False, dynamic_ncols=True)
        elif key in self.bars:
            shown = self.bars[key]
            shown.update(int(message[2]) - shown.n)
            if kind == "close":
                self.bars.pop(key).close()

    def worker_done(self, worker: int) -> None:
        """Close the bars a finished (or dead) process left open."""
        for key in [k for k in self.bars if k[0] == worker]:
            self.bars.pop(key).close()

    def close(self) -> None:
        for shown in self.bars.values():
            shown.close()
        self.bars.clear()
