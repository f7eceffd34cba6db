"""The epoch loop: train one Experiment into one run folder, evaluate, checkpoint, stop safely.

Each epoch's order is one ``randperm`` from a seeded generator; its batches come from a batch
source (:mod:`snnkit.engine.batches`): by index from tensors on the training device, or through
a DataLoader for streamed datasets — the same batches either way. Each batch is one call
of the step strategy chosen once (:mod:`snnkit.engine.steps`: eager, autocast or CUDA graph)
through the experiment's forward module (``x [B, *] -> [T, B, C]``), then the loss is read,
gradients are clipped (``train.grad_clip``) and the optimizer steps. ``last.pt`` is written
when a run starts, after every epoch and on SIGINT/SIGTERM (after the current step; a second
signal stops at once; a signal that came before the first checkpoint stops right after it);
it holds the model, optimizer, scheduler, position, every RNG state and the data order
(:mod:`snnkit.engine.state`), so ``--resume`` continues bit for bit where the run stopped (on
CUDA with ``train.cuda_graphs`` the resumed run re-captures its graph: checked to train the
same way, not bit for bit).

Epoch-end order: the epoch's metrics row is appended to ``metrics.jsonl`` and fsynced, then
``best.pt`` (when the test accuracy improved), then ``last.pt``, which claims the row. A kill
between the two leaves ``last.pt`` one epoch behind the row; the resume drops the row and
trains that epoch again, so ``metrics.jsonl`` stays complete, in order, without duplicates.

NaN policy: a non-finite loss (before the update), an optimizer update that overflows (e.g.
Adam's step size ``lr / (1 - β1^t)`` beyond float32) or a non-finite weight (checked before any
checkpoint is written) stops the run with :class:`TrainingError`, naming the epoch and batch,
what ``last.pt`` holds and the resume command with a lower learning rate.

Component faults: an exception raised by a component (plugin or built-in) in a training step
or in evaluation becomes a :class:`TrainingError` naming the layer path, the component and its
plugin (:mod:`snnkit.engine.blame`), with the original exception chained (shown by
``snnkit --debug``). The step runs inside one ``try`` (free in Python 3.11+): nothing is added
per batch or per module.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.assembly.assemble import Experiment
from snnkit.components.functional import start_epoch
from snnkit.engine import rundir
from snnkit.engine.batches import make_batches
from snnkit.engine.blame import component_error
from snnkit.engine.checkpoint import save_checkpoint
from snnkit.engine.cuda_graphs import GraphStep
from snnkit.engine.distributed import World, ddp_forward
from snnkit.engine.evaluation import evaluate, evaluate_counted, make_counter, predict
from snnkit.engine.progress import Reporter
from snnkit.engine.signals import StopRequest, stop_signals
from snnkit.engine.state import Totals, TrainState
from snnkit.engine.steps import AutocastStep, EagerStep, TrainStep, is_overflow
from snnkit.engine.tb_logger import open_log
from snnkit.errors import StorageError, TrainingError, one_line


class Interrupted(Exception):
    """A run stopped on a signal; ``exit_code`` is 128 + the signal number.

    ``saved``: ``"now"`` (``last.pt`` was written at the stop), ``"before"`` (a resumed run
    stopped before it trained: ``last.pt`` is as it was) or ``"nothing"`` (stopped before the
    run folder was made; ``command`` then starts the run again, else it resumes it).
    """

    def __init__(
        self, signum: int, run_dir: Path | None, *, saved: str = "now", command: str = ""
    ) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.exit_code = 128 + signum
        self.run_dir = run_dir
        self.saved = saved
        self.command = command or (rundir.resume_command(run_dir) if run_dir else "")

    @property
    def message(self) -> str:
        """What the CLI prints: what was kept, then the command on its own line."""
        if self.saved == "nothing":
            return (
                "stopped by signal before training started; nothing was saved. Start again "
                f"with:\n  {self.command}"
            )
        if self.saved == "before":
            return (
                "stopped by signal before training resumed; last.pt is as it was. Resume "
                f"with:\n  {self.command}"
            )
        return f"stopped by signal; checkpoint saved. Resume with:\n  {self.command}"


@dataclass
class RunResult:
    """What ``snnkit.run`` returns."""

    run_dir: Path
    best_test_acc: float
    best_epoch: int
    metrics: list[dict[str, Any]] = field(default_factory=list)


def choose_step(exp: Experiment, forward: nn.Module, world: World) -> TrainStep:
    """The step strategy: a CUDA graph (single-process CUDA without AMP, ``train.cuda_graphs``),
    autocast (``train.amp`` on CUDA), else eager."""
    train, cuda = exp.recipe.train, exp.device.type == "cuda"
    capturable = getattr(forward, "capturable", True)  # memory modes re-run the model in backward
    capturable = capturable and getattr(exp.loss, "capturable", True)  # penalties record spikes
    if train.cuda_graphs and cuda and not world.distributed and not train.amp and capturable:
        return GraphStep(forward, exp.loss, predict, exp.optimizer)
    if train.amp and cuda:
        return AutocastStep(forward, exp.loss, exp.optimizer, "cuda", torch.bfloat16)
    return EagerStep(forward, exp.loss, exp.optimizer)


class Trainer:
    """Runs the epochs of one Experiment into one run folder (the caller seeds the RNGs)."""

    def __init__(
        self, exp: Experiment, run_dir: Path, reporter: Reporter, world: World | None = None
    ) -> None:
        self.exp, self.run_dir, self.reporter = exp, run_dir, reporter
        self.world = world or World()
        self.recipe, self.device = exp.recipe, exp.device
        if self.world.distributed and exp.memory != "full":
            warnings.warn(
                f"train.memory={exp.memory} is not applied to distributed runs: "
                "training in full mode",
                UserWarning,
                stacklevel=2,
            )
        self.net: nn.Module = (
            ddp_forward(exp.encoder, exp.model, exp.device)
            if self.world.distributed
            else exp.forward_module
        )
        self.step = choose_step(exp, self.net, self.world)
        self.train_data = make_batches(exp.train_data, self.device, exp.loading)
        self.test_data = make_batches(exp.test_data, self.device, exp.loading)
        if self.world.distributed:  # each rank evaluates its own share of the test set
            self.test_data = self.test_data.every(self.world.rank, self.world.size)
        self.log: Any = None
        self.stop = StopRequest()
        self._saved = "nothing yet"  # what last.pt holds, for the NaN message

    def fit(self, checkpoint: dict[str, Any] | None = None) -> RunResult:
        """Train the remaining epochs (all of them, or those after ``checkpoint``)."""
        r = self.recipe
        if r.train.num_threads:
            torch.set_num_threads(r.train.num_threads)
        if checkpoint is None:
            state = TrainState.start(r.seed)
        else:
            state = TrainState.from_checkpoint(checkpoint, self.exp, self.run_dir / "last.pt")
            self._saved = (
                f"the state it was resumed from (epoch {state.epoch}, batch {state.batch})"
            )
        with stop_signals() as self.stop:  # run() installed them already; a Trainer alone too
            metrics = self._train(state, checkpoint is None)
        best = max(metrics, key=lambda m: m["test_acc"]) if metrics else None
        self.reporter.message(f"run folder: {self.run_dir}")
        if best:
            self.reporter.message(
                f"best test accuracy: {best['test_acc']:.2%} (epoch {best['epoch']})"
            )
        return RunResult(
            self.run_dir,
            best["test_acc"] if best else float("nan"),
            best["epoch"] if best else 0,
            metrics,
        )

    def _train(self, state: TrainState, fresh: bool) -> list[dict[str, Any]]:
        """Checkpoint a fresh run's start, then train the remaining epochs; the metrics rows."""
        r = self.recipe
        metrics = rundir.read_metrics(self.run_dir)[: state.epoch - 1] if self.world.is_main else []
        if self.world.is_main:
            rundir.rewrite_metrics(self.run_dir, metrics)
        if fresh:
            self._save_last(state)  # a resumable starting point, even before the first step
        if self._stop_requested():  # a signal came while the run was being set up
            raise self._interrupted(saved="now" if fresh else "before")
        if not fresh and state.epoch > r.train.epochs:
            self.reporter.message(
                f"the run already finished epoch {state.epoch - 1} of "
                f"{r.train.epochs} — extend it with --set train.epochs=N"
            )
        self.log = open_log(
            self.run_dir, state.global_step, enabled=r.output.tensorboard and self.world.is_main
        )
        try:
            for epoch in range(state.epoch, r.train.epochs + 1):
                row = self._epoch(state, epoch)
                metrics.append(row)
                self._finish_epoch(state, row)
                self.reporter.epoch_done(row)
                if self._stop_requested() and epoch < r.train.epochs:
                    raise self._interrupted()
        finally:
            if self.log is not None:
                self.log.close()
        return metrics

    def _finish_epoch(self, state: TrainState, row: dict[str, Any]) -> None:
        """Make a finished epoch durable: its metrics row (appended and fsynced) first, then
        ``best.pt`` if the test accuracy improved, then ``last.pt``, which claims the row.

        A checkpoint write that fails (disk full: the previous file is intact) cuts the row back
        off, so the run folder is as it was before the epoch.
        """
        metrics = self.run_dir / rundir.METRICS_FILE
        size = metrics.stat().st_size if self.world.is_main and metrics.exists() else 0
        if self.world.is_main:
            rundir.append_metrics(self.run_dir, row)
        try:
            if row["test_acc"] > state.best_acc:
                state.best_acc, state.best_epoch = row["test_acc"], row["epoch"]
                self._save("best.pt", state)
            self._save_last(state)
        except StorageError:
            if self.world.is_main:
                with contextlib.suppress(OSError):  # truncating needs no free space
                    os.truncate(metrics, size)
            raise

    def _epoch(self, state: TrainState, epoch: int) -> dict[str, Any]:
        r, exp = self.recipe, self.exp
        n = len(self.train_data)
        bs = r.train.batch_size
        batches = math.ceil(n / bs)
        if r.train.max_batches:
            batches = min(batches, r.train.max_batches)
        if state.batch == 0:
            state.totals = Totals()
            state.order_epoch_start = state.order.get_state()
        else:
            state.order.set_state(state.order_epoch_start)
        perm = torch.randperm(n, generator=state.order)
        source = self.train_data.epoch(perm, bs, state.batch, batches, epoch, self.world.shard)
        self.reporter.epoch_started(epoch, r.train.epochs, batches)
        exp.model.train()
        start_epoch(exp.model, epoch, r.train.epochs)  # a function of the epoch: resumes exactly
        # Correct predictions are summed where they are computed and read back every batch on
        # the CPU, every log_every batches on a GPU (a read makes the host wait for the device).
        read_every = 1 if self.device.type == "cpu" else r.train.log_every
        pending: torch.Tensor | None = None
        s = state.totals
        parts: dict[str, torch.Tensor] = {}
        for b in range(state.batch, batches):
            t0 = time.perf_counter()
            x, y = next(source)
            loss, correct = self._train_step(x, y, epoch, b)
            parts = self._loss_parts(parts, len(y))
            pending = correct if pending is None else pending + correct
            if (state.global_step + 1) % read_every == 0:
                s.correct += int(pending)
                pending = None
            s.seconds += time.perf_counter() - t0
            s.loss += loss * len(y)
            s.seen += len(y)
            state.global_step += 1
            state.batch = b + 1
            if state.global_step % r.train.log_every == 0 and self.log is not None:
                self.log.batch(state.global_step, loss, correct, len(y))
            self.reporter.batch_done(
                b + 1, s.loss / s.seen, s.correct / s.seen, s.seen / max(s.seconds, 1e-9)
            )
            if self._stop_requested() and b + 1 < batches:
                if pending is not None:
                    s.correct += int(pending)
                s.add_parts(parts)
                self._check_finite(epoch, b)
                self._save_last(state)
                raise self._interrupted()
        if pending is not None:
            s.correct += int(pending)
        s.add_parts(parts)
        self._check_finite(epoch, batches - 1)
        t0 = time.perf_counter()
        try:
            test_loss, test_acc, rates, costs = self.evaluate()
        except Exception as err:
            failure = self._component_failure(err, f"epoch {epoch}, evaluation")
            if failure is None:
                raise
            raise failure from err
        loss_sum, correct_sum, seen = self.world.sum([s.loss, s.correct, s.seen], self.device)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(seen, 1.0),
            "train_acc": correct_sum / max(seen, 1.0),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "train_seconds": s.seconds,
            "test_seconds": time.perf_counter() - t0,
            "samples_per_second": seen / max(s.seconds, 1e-9),
            "lr": exp.optimizer.param_groups[0]["lr"],
            "firing_rates": rates,
        }
        if s.parts:  # a composed loss: each part's mean over the epoch's training samples
            names = sorted(s.parts)
            sums = self.world.sum([s.parts[k] for k in names], self.device)
            row["train_loss_parts"] = {k: v / max(seen, 1.0) for k, v in zip(names, sums)}
        if costs is not None:
            row["costs"] = costs
        if exp.scheduler is not None:
            exp.scheduler.step()
        if self.log is not None:
            self.log.epoch(row, exp, self.test_data.first(1))
        state.epoch, state.batch = epoch + 1, 0
        return row

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, epoch: int, batch: int
    ) -> tuple[float, torch.Tensor]:
        """One optimizer step: ``(loss value, number of correct predictions as a 0-dim tensor)``."""
        try:
            loss, correct = self.step(x, y)
        except Exception as err:
            failure = self._component_failure(err, f"epoch {epoch}, batch {batch + 1}")
            if failure is None:
                raise
            raise failure from err
        value = loss.item()
        if not math.isfinite(value):
            self._fail(epoch, batch, f"the training loss is {value}")
        if self.recipe.train.grad_clip:
            nn.utils.clip_grad_norm_(self.exp.model.parameters(), self.recipe.train.grad_clip)
        try:
            self.exp.optimizer.step()
        except RuntimeError as err:
            if not is_overflow(err):
                raise
            self._fail(epoch, batch, f"the optimizer's update is non-finite ({one_line(err)})")
        return value, correct

    def _loss_parts(self, parts: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
        """Add the batch's loss parts (a composed loss's ``last_parts``) times its size, on the
        device: read back once per epoch."""
        for name, value in getattr(self.exp.loss, "last_parts", {}).items():
            part = value.double() * size
            parts[name] = part if name not in parts else parts[name] + part
        return parts

    def _check_finite(self, epoch: int, batch: int) -> None:
        """Stop before saving weights that an update made NaN or infinite."""
        for name, p in self.exp.model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                self._fail(epoch, batch, f"parameter '{name}' became non-finite after the update")

    def _component_failure(self, err: Exception, when: str) -> TrainingError | None:
        """:func:`~snnkit.engine.blame.component_error` for this run: what last.pt keeps."""
        resume = rundir.resume_command(self.run_dir)
        kept = f"last.pt keeps {self._saved}: continue with {resume}"
        return component_error(err, self.exp, when, rerun=resume, kept=kept)

    def _fail(self, epoch: int, batch: int, what: str) -> None:
        lr = self.exp.optimizer.param_groups[0]["lr"]
        fix = rundir.resume_command(self.run_dir, "--set", f"optimizer.lr={lr / 10:g}")
        raise TrainingError(
            f"epoch {epoch}, batch {batch + 1}: {what} — lower optimizer.lr "
            f"(now {lr:g}) or set train.grad_clip (e.g. 1.0); last.pt keeps "
            f"{self._saved}: continue from there with {fix}"
        )

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, dict[str, float], dict[str, Any] | None]:
        """Test-set loss, accuracy, the firing rate of every spiking layer and, when
        ``costs.enabled``, the pass's counts per test sample (``CostReport.per_sample``)."""
        counter = make_counter(self.exp)
        if counter is None:
            loss, acc, rates = evaluate(self.exp, self.test_data)
        else:
            loss, acc = evaluate_counted(self.exp, self.test_data, counter)
            rates = {}
        costs = None
        if self.world.distributed:
            n = float(len(self.test_data))
            names = sorted(rates)
            sums = self.world.sum(
                [loss * n, acc * n, n] + [rates[k] * n for k in names], self.device
            )
            loss, acc = sums[0] / sums[2], sums[1] / sums[2]
            rates = {k: v / sums[2] for k, v in zip(names, sums[3:])}
            if counter is not None:
                counter.merge(self.world.sum_)
        if counter is not None:
            report = counter.report()
            rates, costs = report.rates(), report.per_sample()
        return loss, acc, rates, costs

    def _interrupted(self, saved: str = "now") -> Interrupted:
        """What stops the run after a signal (SIGINT when another rank received it)."""
        signum = self.stop.signum
        return Interrupted(
            signum if signum is not None else int(signal.SIGINT), self.run_dir, saved=saved
        )

    def _stop_requested(self) -> bool:
        """A signal reached this process (or, when distributed, any process)."""
        if not self.world.distributed:
            return self.stop.requested
        return self.world.sum([float(self.stop.requested)], self.device)[0] > 0

    def _save(self, name: str, state: TrainState) -> None:
        if self.recipe.output.checkpoints and self.world.is_main:
            save_checkpoint(state.to_checkpoint(self.exp), self.run_dir / name)

    def _save_last(self, state: TrainState) -> None:
        if self.world.is_main:
            save_checkpoint(state.to_checkpoint(self.exp), self.run_dir / "last.pt")
        self._saved = state.describe()
