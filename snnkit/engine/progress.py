"""How a run reports progress: a rich bar per epoch on a terminal, one line per epoch elsewhere."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Reporter(Protocol):
    """What the engine calls while it trains; implement it to show progress your own way."""

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None: ...

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None: ...

    def epoch_done(self, metrics: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...


class SilentReporter:
    """Reports nothing (library use, tests)."""

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        pass

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        pass

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


class LineReporter(SilentReporter):
    """One line per epoch on stdout: for logs, pipes and CI."""

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        print(format_epoch(metrics), flush=True)

    def message(self, text: str) -> None:
        print(text, flush=True)


class RichReporter(LineReporter):
    """A progress bar per epoch showing loss, accuracy and samples/s (terminals)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self._progress: Any = None
        self._task: Any = None

    def epoch_started(self, epoch: int, epochs: int, batches: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"epoch {epoch}/{epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]:.4f} · acc {task.fields[acc]:.2%} · "
                "{task.fields[speed]:,.0f} samples/s"
            ),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("train", total=batches, loss=0.0, acc=0.0, speed=0.0)
        self._progress.start()

    def batch_done(self, done: int, loss: float, acc: float, samples_per_s: float) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=done, loss=loss, acc=acc, speed=samples_per_s
            )

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        self._stop()
        self.console.print(format_epoch(metrics), highlight=False)

    def message(self, text: str) -> None:
        self._stop()
        self.console.print(text, highlight=False)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def default_reporter() -> Reporter:
    """A bar on a terminal, plain lines otherwise."""
    return RichReporter() if sys.stdout.isatty() else LineReporter()


def format_epoch(m: dict[str, Any]) -> str:
    return (
        f"epoch {m['epoch']}: train loss {m['train_loss']:.4f} acc {m['train_acc']:.2%} · "
        f"test loss {m['test_loss']:.4f} acc {m['test_acc']:.2%} · "
        f"{m['train_seconds']:.1f} s ({m['samples_per_second']:,.0f} samples/s)"
    )
