"""Graceful stops: SIGINT and SIGTERM for the whole lifetime of a run.

:func:`stop_signals` installs the handlers (the engine enters it first thing in ``run``) and
yields a :class:`StopRequest`. The first signal is recorded there, and then:

- inside a :meth:`StopRequest.immediate` block (work that leaves nothing behind: loading the
  recipe, the checkpoint, the data, assembling the model) the handler raises :class:`Stopped`
  at once, so a run stopped before it could save anything ends promptly;
- elsewhere it only records itself: the engine finishes what it is writing (the run folder, a
  checkpoint, the current training step), saves ``last.pt`` and stops with exit code
  128 + signal number.

A second signal restores the previous handlers and acts at once (Ctrl-C twice stops even a
slow step). Signals the caller ignores stay ignored. Outside the main thread nothing is
installed (the request then never fires). Nested blocks share the outermost block's request.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The signals that ask a run to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """Raised by the handler inside :meth:`StopRequest.immediate`: nothing was saved.

    A ``BaseException`` (like ``KeyboardInterrupt``), so ``except Exception`` in a component
    cannot swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class StopRequest:
    """What the handlers recorded: the first signal's number (``None`` until one arrives)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._immediate = 0

    @property
    def requested(self) -> bool:
        """A signal asked the run to stop."""
        return self.signum is not None

    @contextmanager
    def immediate(self) -> Iterator[None]:
        """Within the block a signal raises :class:`Stopped` at once (and so does entering it
        after one was recorded): for work that writes nothing and need not finish."""
        if self.signum is not None:
            raise Stopped(self.signum)
        self._immediate += 1
        try:
            yield
        finally:
            self._immediate -= 1

    def record(self, signum: int) -> bool:
        """Note a signal; ``True`` if it is the second one (the caller then acts at once)."""
        if self.signum is not None:
            return True
        self.signum = signum
        if self._immediate:
            raise Stopped(signum)
        return False


_active: StopRequest | None = None


@contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT/SIGTERM are recorded in the yielded request (see the module
    doc); afterwards the previous handlers are back."""
    global _active
    if _active is not None:  # an outer block (e.g. run) already handles them
        yield _active
        return
    request = StopRequest()
    old: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if request.record(signum):  # the second signal: as if we had never been here
            for s, h in old.items():
                signal.signal(s, h)
            signal.raise_signal(signum)

    try:
        for s in STOP_SIGNALS:
            if signal.getsignal(s) is not signal.SIG_IGN:
                old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread
        yield request
        return
    _active = request
    try:
        yield request
    finally:
        _active = None
        for signum, previous in old.items():
            signal.signal(signum, previous)
