"""Graceful stops: SIGINT and SIGTERM ask training to stop after the current step.

The first signal only records itself (the engine then finishes the step, saves ``last.pt`` and
exits 128 + signal number); a second one restores the previous handlers and acts at once.
Signals the caller ignores stay ignored. Outside the main thread nothing is installed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stop_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM call ``on_signal(signum)`` once, then act as usual."""
    old: dict[int, Any] = {}
    seen: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if seen:
            for s, h in old.items():
                signal.signal(s, h)
            signal.raise_signal(signum)
            return
        seen.append(signum)
        on_signal(signum)

    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is not signal.SIG_IGN:
                old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, previous in old.items():
            signal.signal(signum, previous)
