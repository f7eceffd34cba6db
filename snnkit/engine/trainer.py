"""The epoch loop: train one Experiment into one run folder, evaluate, checkpoint, stop safely.

Batches are drawn by index from datasets held in memory on the training device (one
``randperm`` per epoch from a seeded generator; no per-sample Python). Each batch is one call
of the step strategy chosen once (:mod:`snnkit.engine.steps`: eager, autocast or CUDA graph)
through the experiment's forward module (``x [B, *] -> [T, B, C]``), then the loss is read,
gradients are clipped (``train.grad_clip``) and the optimizer steps. ``last.pt`` is written
when a run starts, after every epoch and on SIGINT/SIGTERM (after the current step; a second
signal stops at once); it holds the model, optimizer, scheduler, position, every RNG state and
the data order (:mod:`snnkit.engine.state`), so ``--resume`` continues bit for bit where the
run stopped (on CUDA with ``train.cuda_graphs`` the resumed run re-captures its graph: checked
to train the same way, not bit for bit).

NaN policy: a non-finite loss (before the update) or weight (checked before any checkpoint is
written) stops the run with :class:`TrainingError`, naming the epoch and batch, what
``last.pt`` holds and the resume command with a lower learning rate.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.assembly.assemble import Experiment, on_device
from snnkit.components.functional import start_epoch
from snnkit.engine import rundir
from snnkit.engine.checkpoint import save_checkpoint
from snnkit.engine.cuda_graphs import GraphStep
from snnkit.engine.distributed import World, ddp_forward
from snnkit.engine.evaluation import evaluate, predict
from snnkit.engine.progress import Reporter
from snnkit.engine.signals import stop_signals
from snnkit.engine.state import Totals, TrainState
from snnkit.engine.steps import AutocastStep, EagerStep, TrainStep
from snnkit.engine.tb_logger import open_log
from snnkit.errors import TrainingError


class Interrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.exit_code = 128 + signum
        self.run_dir = run_dir
        self.command = rundir.resume_command(run_dir)


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
    if train.cuda_graphs and cuda and not world.distributed and not train.amp:
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
        self.net: nn.Module = (
            ddp_forward(exp.encoder, exp.model, exp.device)
            if self.world.distributed
            else exp.forward_module
        )
        self.step = choose_step(exp, self.net, self.world)
        self.train_x, self.train_y = on_device(exp.train_data, self.device)
        self.test_x, self.test_y = on_device(exp.test_data, self.device)
        if self.world.distributed:  # each rank evaluates its own share of the test set
            self.test_x = self.test_x[self.world.rank :: self.world.size]
            self.test_y = self.test_y[self.world.rank :: self.world.size]
        self.log: Any = None
        self._signal: int | None = None
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
        metrics = rundir.read_metrics(self.run_dir)[: state.epoch - 1] if self.world.is_main else []
        if self.world.is_main:
            rundir.rewrite_metrics(self.run_dir, metrics)
        if checkpoint is None:
            self._save_last(state)  # a resumable starting point, even before the first step
        elif state.epoch > r.train.epochs:
            self.reporter.message(
                f"the run already finished epoch {state.epoch - 1} of "
                f"{r.train.epochs} — extend it with --set train.epochs=N"
            )
        self.log = open_log(
            self.run_dir, state.global_step, enabled=r.output.tensorboard and self.world.is_main
        )
        try:
            with stop_signals(self._on_signal):
                for epoch in range(state.epoch, r.train.epochs + 1):
                    row = self._epoch(state, epoch)
                    metrics.append(row)
                    if self.world.is_main:
                        rundir.append_metrics(self.run_dir, row)
                    self.reporter.epoch_done(row)
                    if self._stop_requested() and epoch < r.train.epochs:
                        raise self._interrupted()
        finally:
            if self.log is not None:
                self.log.close()
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

    def _epoch(self, state: TrainState, epoch: int) -> dict[str, Any]:
        r, exp = self.recipe, self.exp
        n = len(self.train_y)
        bs = r.train.batch_size
        batches = math.ceil(n / bs)
        if r.train.max_batches:
            batches = min(batches, r.train.max_batches)
        if state.batch == 0:
            state.totals = Totals()
            state.order_epoch_start = state.order.get_state()
        else:
            state.order.set_state(state.order_epoch_start)
        perm = torch.randperm(n, generator=state.order).to(self.device)
        self.reporter.epoch_started(epoch, r.train.epochs, batches)
        exp.model.train()
        start_epoch(exp.model, epoch, r.train.epochs)  # a function of the epoch: resumes exactly
        # Correct predictions are summed where they are computed and read back every batch on
        # the CPU, every log_every batches on a GPU (a read makes the host wait for the device).
        read_every = 1 if self.device.type == "cpu" else r.train.log_every
        pending: torch.Tensor | None = None
        s = state.totals
        for b in range(state.batch, batches):
            t0 = time.perf_counter()
            idx = self.world.shard(perm[b * bs : (b + 1) * bs])
            x, y = self.train_x[idx], self.train_y[idx]
            loss, correct = self._train_step(x, y, epoch, b)
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
                self._check_finite(epoch, b)
                self._save_last(state)
                raise self._interrupted()
        if pending is not None:
            s.correct += int(pending)
        self._check_finite(epoch, batches - 1)
        t0 = time.perf_counter()
        test_loss, test_acc, rates = self.evaluate()
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
        if exp.scheduler is not None:
            exp.scheduler.step()
        if self.log is not None:
            self.log.epoch(row, exp, self.test_x)
        state.epoch, state.batch = epoch + 1, 0
        if test_acc > state.best_acc:
            state.best_acc, state.best_epoch = test_acc, epoch
            self._save("best.pt", state)
        self._save_last(state)
        return row

    def _train_step(
        self, x: torch.Tensor, y: torch.Tensor, epoch: int, batch: int
    ) -> tuple[float, torch.Tensor]:
        """One optimizer step: ``(loss value, number of correct predictions as a 0-dim tensor)``."""
        loss, correct = self.step(x, y)
        value = loss.item()
        if not math.isfinite(value):
            self._fail(epoch, batch, f"the training loss is {value}")
        if self.recipe.train.grad_clip:
            nn.utils.clip_grad_norm_(self.exp.model.parameters(), self.recipe.train.grad_clip)
        self.exp.optimizer.step()
        return value, correct

    def _check_finite(self, epoch: int, batch: int) -> None:
        """Stop before saving weights that an update made NaN or infinite."""
        for name, p in self.exp.model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                self._fail(epoch, batch, f"parameter '{name}' became non-finite after the update")

    def _fail(self, epoch: int, batch: int, what: str) -> None:
        lr = self.exp.optimizer.param_groups[0]["lr"]
        fix = rundir.resume_command(self.run_dir, "--set", f"optimizer.lr={lr / 10:g}")
        raise TrainingError(
            f"epoch {epoch}, batch {batch + 1}: {what} — lower optimizer.lr "
            f"(now {lr:g}) or set train.grad_clip (e.g. 1.0); last.pt keeps "
            f"{self._saved}: continue from there with {fix}"
        )

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """Test-set loss, accuracy and the mean firing rate of every spiking layer."""
        loss, acc, rates = evaluate(self.exp, self.test_x, self.test_y)
        if not self.world.distributed:
            return loss, acc, rates
        n = float(len(self.test_y))
        names = sorted(rates)
        totals = self.world.sum([loss * n, acc * n, n] + [rates[k] * n for k in names], self.device)
        return (
            totals[0] / totals[2],
            totals[1] / totals[2],
            {k: v / totals[2] for k, v in zip(names, totals[3:])},
        )

    def _on_signal(self, signum: int) -> None:
        self._signal = signum  # no printing here: a handler may interrupt a print

    def _interrupted(self) -> Interrupted:
        """What stops the run after a signal (SIGINT when another rank received it)."""
        return Interrupted(
            self._signal if self._signal is not None else int(signal.SIGINT), self.run_dir
        )

    def _stop_requested(self) -> bool:
        """A signal reached this process (or, when distributed, any process)."""
        if not self.world.distributed:
            return self._signal is not None
        return self.world.sum([float(self._signal is not None)], self.device)[0] > 0

    def _save(self, name: str, state: TrainState) -> None:
        if self.recipe.output.checkpoints and self.world.is_main:
            save_checkpoint(state.to_checkpoint(self.exp), self.run_dir / name)

    def _save_last(self, state: TrainState) -> None:
        if self.world.is_main:
            save_checkpoint(state.to_checkpoint(self.exp), self.run_dir / "last.pt")
        self._saved = state.describe()
