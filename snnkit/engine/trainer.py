"""Train and evaluate what a recipe assembles: the one training loop, checkpoints, logging.

Batches are drawn by index from datasets held in memory on the training device (one
``randperm`` per epoch from a seeded generator; no per-sample Python). The global RNGs are
seeded from ``seed`` before the model is built. ``last.pt`` is written when a run starts, after
every epoch and on SIGINT/SIGTERM (after the current step; a second signal stops at once); it
holds the model, optimizer, scheduler, position, every RNG state and the data order, so
``--resume`` continues bit for bit where the run stopped (on CUDA with ``train.cuda_graphs``
the resumed run re-captures its graph: checked to train the same way, not bit for bit). A
non-finite loss or weight stops the run with :class:`TrainingError` before anything bad is
saved.

On resume the run folder's ``recipe.yaml`` is read again; overrides may change ``train``,
``output``, ``scheduler`` and the optimizer's hyperparameters (applied to the restored
optimizer), and ``dataset.root`` / ``dataset.download``; changing what the weights or the
data mean (seed, time_steps, dataset, encoder, model, loss, optimizer name) relative to the
recipe saved in ``last.pt`` is refused, whether by ``--set`` or by an edited ``recipe.yaml``.
A run holds its folder's lock (:mod:`snnkit.engine.run_lock`) while it writes there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.engine import rundir, run_lock
from snnkit.assembly.assemble import Experiment, assemble, on_device
from snnkit.engine.time_loop import TimeLoop, evaluate, forward_batch, predict
from snnkit.engine.checkpoint import (
    capture_rng,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    seed_everything,
)
from snnkit.engine.distributed import World, current_world, device_for, setup, teardown
from snnkit.errors import CheckpointError, RecipeError, TrainingError
from snnkit.engine.signals import stop_signals
from snnkit.engine.progress import Reporter, SilentReporter
from snnkit.recipes.loader import Recipe, check_resume_changes, load_recipe
from snnkit.plugins.registry import Registry

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


@dataclass
class _Position:
    epoch: int = 1
    batch: int = 0
    best_acc: float = -1.0
    best_epoch: int = 0
    global_step: int = 0
    sums: dict[str, float] = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0,
                                                           "seen": 0.0, "seconds": 0.0})


def run(source: str | Path | Mapping[str, Any] | None = None, overrides: list[str] | None = None,
        *, device: str | None = None, out: str | Path | None = None,
        resume: str | Path | None = None, registry: Registry | None = None,
        reporter: Reporter | None = None) -> RunResult:
    """Validate, train and evaluate a recipe (path or mapping), or resume a run folder."""
    from snnkit.plugins.loader import get_registry

    registry = registry or get_registry()
    world = current_world()
    reporter = (reporter or SilentReporter()) if world.is_main else SilentReporter()
    overrides = list(overrides or []) + ([f"train.device={device}"] if device else [])
    if resume is not None:
        if source is not None or out is not None:
            raise RecipeError(f"--resume {resume}: give either a recipe or --resume RUN_DIR, and "
                              "no --out (a resumed run stays in its folder)")
        run_dir = Path(resume)
        raw = rundir.read_run_recipe(run_dir)
        run_lock.ensure_free(run_dir, "--resume")  # faults: in use -> one line with the PID
        rundir.check_writable(run_dir, "--resume")  # faults: read-only -> one line
        state = load_checkpoint(run_dir / "last.pt")
        recipe = load_recipe(raw, overrides)
        check_resume_changes(load_recipe(state["recipe"]), recipe, overrides)  # faults: vs last.pt
        seed_everything(recipe.seed)
        exp = _assemble(recipe, registry, world)
        note = f"resumed from {run_dir}"
    else:
        if source is None:
            raise RecipeError("run: give a recipe file, e.g. snnkit run recipes/lif_mnist.yaml, "
                              "or --resume RUN_DIR")
        recipe = load_recipe(source, overrides)
        seed_everything(recipe.seed)
        exp = _assemble(recipe, registry, world)
        run_dir = rundir.new_run_dir(recipe, out) if world.is_main else Path(out or "")
        state, note = None, ""
    option = "--resume" if resume is not None else "--out" if out is not None else "output.dir"
    with run_lock.hold(run_dir, option) if world.is_main else nullcontext():  # faults: lock
        if world.is_main:
            rundir.write_run_info(run_dir, recipe, registry, note=note)
        try:
            return Trainer(exp, run_dir, reporter, world).fit(state)
        finally:
            teardown(world)


def _assemble(recipe: Recipe, registry: Registry, world: World) -> Experiment:
    """Assemble, then join the process group when launched by torchrun (one GPU per rank)."""
    exp = assemble(recipe, registry)
    if world.distributed:
        exp.device = device_for(world, exp.device)
        exp.model.to(exp.device)
        setup(world, exp.device, recipe.train.batch_size)
        torch.manual_seed(recipe.seed + 7919 * world.rank)  # own encoder draws on each rank
    return exp


class Trainer:
    """Runs the epochs of one Experiment into one run folder (the caller seeds the RNGs)."""

    def __init__(self, exp: Experiment, run_dir: Path, reporter: Reporter,
                 world: World | None = None) -> None:
        self.exp, self.run_dir, self.reporter = exp, run_dir, reporter
        self.world = world or World()
        self.net: nn.Module = TimeLoop(exp.model)
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [exp.device.index] if exp.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)
        # Event-driven input (fused Poisson encoding + first Linear, C++): None unless the
        # recipe's encoder/model fit it; DDP keeps the dense path (it must see every forward).
        self.fused: Any = None
        if exp.recipe.train.fast_input and not self.world.distributed:
            from snnkit.kernels.event_input import fuse_input

            self.fused = fuse_input(exp.encoder, exp.model)
        self.recipe: Recipe = exp.recipe
        self.device = exp.device
        # CUDA graph of forward + loss + backward (plain single-process CUDA runs without AMP)
        self.graph: Any = None
        if (exp.recipe.train.cuda_graphs and exp.device.type == "cuda"
                and not self.world.distributed and not exp.recipe.train.amp):
            from snnkit.engine.cuda_graphs import GraphStep

            self.graph = GraphStep(self.forward, exp.loss, predict, exp.optimizer)
        self.train_x, self.train_y = on_device(exp.train_data, self.device)
        self.test_x, self.test_y = on_device(exp.test_data, self.device)
        if self.world.distributed:  # each rank evaluates its own share of the test set
            self.test_x = self.test_x[self.world.rank::self.world.size]
            self.test_y = self.test_y[self.world.rank::self.world.size]
        self.order = torch.Generator().manual_seed(self.recipe.seed)
        self._order_state = self.order.get_state()
        self.writer: Any = None
        self._signal: int | None = None
        self._saved = "nothing yet"  # what last.pt holds, for the NaN message

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, state: dict[str, Any] | None = None) -> RunResult:
        """Train the remaining epochs (all of them, or those after ``state``)."""
        r = self.recipe
        if r.train.num_threads:
            torch.set_num_threads(r.train.num_threads)
        pos = self._restore(state) if state else _Position()
        metrics = rundir.read_metrics(self.run_dir)[: pos.epoch - 1] if self.world.is_main else []
        if self.world.is_main:
            rundir.rewrite_metrics(self.run_dir, metrics)
        if state is None:
            self._save_last(pos)  # a resumable starting point, even before the first step
        elif pos.epoch > r.train.epochs:
            self.reporter.message(f"the run already finished epoch {pos.epoch - 1} of "
                                  f"{r.train.epochs} — extend it with --set train.epochs=N")
        self.writer = self._open_writer(pos.global_step)
        try:
            with stop_signals(self._on_signal):
                for epoch in range(pos.epoch, r.train.epochs + 1):
                    row = self._epoch(pos, epoch)
                    metrics.append(row)
                    if self.world.is_main:
                        rundir.append_metrics(self.run_dir, row)
                    self.reporter.epoch_done(row)
                    if self._stop_requested() and epoch < r.train.epochs:
                        raise Interrupted(self._signal, self.run_dir)
        finally:
            if self.writer is not None:
                self.writer.close()
        best = max(metrics, key=lambda m: m["test_acc"]) if metrics else None
        self.reporter.message(f"run folder: {self.run_dir}")
        if best:
            self.reporter.message(f"best test accuracy: {best['test_acc']:.2%} (epoch {best['epoch']})")
        return RunResult(self.run_dir, best["test_acc"] if best else float("nan"),
                         best["epoch"] if best else 0, metrics)

    def _epoch(self, pos: _Position, epoch: int) -> dict[str, Any]:
        r, exp = self.recipe, self.exp
        n = len(self.train_y)
        bs = r.train.batch_size
        batches = math.ceil(n / bs)
        if r.train.max_batches:
            batches = min(batches, r.train.max_batches)
        if pos.batch == 0:
            pos.sums = {"loss": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0}
            self._order_state = self.order.get_state()
        else:
            self.order.set_state(self._order_state)
        perm = torch.randperm(n, generator=self.order).to(self.device)
        self.reporter.epoch_started(epoch, r.train.epochs, batches)
        exp.model.train()
        # Correct predictions are summed where they are computed and read back every batch on
        # the CPU, every log_every batches on a GPU (a read makes the host wait for the device).
        read_every = 1 if self.device.type == "cpu" else r.train.log_every
        pending: torch.Tensor | None = None
        for b in range(pos.batch, batches):
            t0 = time.perf_counter()
            idx = self.world.shard(perm[b * bs:(b + 1) * bs])
            x, y = self.train_x[idx], self.train_y[idx]
            loss, correct = self._train_step(x, y, epoch, b)
            pending = correct if pending is None else pending + correct
            if (pos.global_step + 1) % read_every == 0:
                pos.sums["correct"] += int(pending)
                pending = None
            pos.sums["seconds"] += time.perf_counter() - t0
            pos.sums["loss"] += loss * len(y)
            pos.sums["seen"] += len(y)
            pos.global_step += 1
            pos.batch = b + 1
            if pos.global_step % r.train.log_every == 0 and self.writer is not None:
                self.writer.add_scalar("train/batch_loss", loss, pos.global_step)
                self.writer.add_scalar("train/batch_acc", int(correct) / len(y), pos.global_step)
            s = pos.sums
            self.reporter.batch_done(b + 1, s["loss"] / s["seen"], s["correct"] / s["seen"],
                                     s["seen"] / max(s["seconds"], 1e-9))
            if self._stop_requested() and b + 1 < batches:
                if pending is not None:
                    pos.sums["correct"] += int(pending)
                self._check_finite(epoch, b)
                self._save_last(pos)
                raise Interrupted(self._signal, self.run_dir)
        if pending is not None:
            pos.sums["correct"] += int(pending)
        self._check_finite(epoch, batches - 1)
        t0 = time.perf_counter()
        test_loss, test_acc, rates = self.evaluate()
        s = dict(pos.sums)
        s["loss"], s["correct"], s["seen"] = self.world.sum([s["loss"], s["correct"], s["seen"]],
                                                            self.device)
        seen = max(s["seen"], 1.0)
        row = {"epoch": epoch, "train_loss": s["loss"] / seen, "train_acc": s["correct"] / seen,
               "test_loss": test_loss, "test_acc": test_acc, "train_seconds": s["seconds"],
               "test_seconds": time.perf_counter() - t0,
               "samples_per_second": s["seen"] / max(s["seconds"], 1e-9),
               "lr": exp.optimizer.param_groups[0]["lr"], "firing_rates": rates}
        if exp.scheduler is not None:
            exp.scheduler.step()
        if self.world.is_main:
            self._log_epoch(row)
        pos.epoch, pos.batch = epoch + 1, 0
        if test_acc > pos.best_acc:
            pos.best_acc, pos.best_epoch = test_acc, epoch
            self._save("best.pt", pos)
        self._save_last(pos)
        return row

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int,
                    batch: int) -> tuple[float, torch.Tensor]:
        """One optimizer step: ``(loss value, number of correct predictions as a 0-dim tensor)``."""
        exp = self.exp
        replayed = self.graph.step(x, y) if self.graph is not None else None
        if replayed is not None:  # gradients are in place; the update is still to come
            loss, correct = replayed
            value = loss.item()
            if not math.isfinite(value):
                self._fail(epoch, batch, f"the training loss is {value}")
        else:
            with self.graph.eager() if self.graph is not None else _null():
                # after a capture the graph owns the .grad tensors: zero them in place
                exp.optimizer.zero_grad(set_to_none=self.graph is None or not self.graph.captured)
                with self._autocast():
                    out = self.forward(x)
                    loss = exp.loss(out.float(), y)
                value = loss.item()
                if not math.isfinite(value):
                    self._fail(epoch, batch, f"the training loss is {value}")
                loss.backward()
                with torch.no_grad():
                    correct = (predict(exp.loss, out) == y).sum()
        if self.recipe.train.grad_clip:
            nn.utils.clip_grad_norm_(exp.model.parameters(), self.recipe.train.grad_clip)
        exp.optimizer.step()
        return value, correct

    def _check_finite(self, epoch: int, batch: int) -> None:
        """Stop before saving weights that an update made NaN or infinite."""
        for name, p in self.exp.model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                self._fail(epoch, batch, f"parameter '{name}' became non-finite after the update")

    def _fail(self, epoch: int, batch: int, what: str) -> None:
        lr = self.exp.optimizer.param_groups[0]["lr"]
        fix = rundir.resume_command(self.run_dir, "--set", f"optimizer.lr={lr / 10:g}")
        raise TrainingError(f"epoch {epoch}, batch {batch + 1}: {what} — lower optimizer.lr "
                            f"(now {lr:g}) or set train.grad_clip (e.g. 1.0); last.pt keeps "
                            f"{self._saved}: continue from there with {fix}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x [B, *]`` and run the model (through DDP when distributed): ``[T, B, C]``."""
        return forward_batch(self.exp, x, self.net, fused=self.fused)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """Test-set loss, accuracy and the mean firing rate of every spiking layer."""
        loss, acc, rates = evaluate(self.exp, self.test_x, self.test_y, fused=self.fused)
        if not self.world.distributed:
            return loss, acc, rates
        n = float(len(self.test_y))
        names = sorted(rates)
        totals = self.world.sum([loss * n, acc * n, n] + [rates[k] * n for k in names], self.device)
        return (totals[0] / totals[2], totals[1] / totals[2],
                {k: v / totals[2] for k, v in zip(names, totals[3:])})

    def _on_signal(self, signum: int) -> None:
        self._signal = signum  # no printing here: a handler may interrupt a print

    def _stop_requested(self) -> bool:
        """A signal reached this process (or, when distributed, any process)."""
        if not self.world.distributed:
            return self._signal is not None
        return self.world.sum([float(self._signal is not None)], self.device)[0] > 0

    # -- checkpoints, logs, signals ---------------------------------------------------------
    def _state(self, pos: _Position) -> dict[str, Any]:
        exp = self.exp
        return {
            "recipe": self.recipe.to_dict(),
            "model": exp.model.state_dict(),
            "optimizer": exp.optimizer.state_dict(),
            "scheduler": exp.scheduler.state_dict() if exp.scheduler is not None else None,
            "position": {"epoch": pos.epoch, "batch": pos.batch, "best_acc": pos.best_acc,
                         "best_epoch": pos.best_epoch, "global_step": pos.global_step,
                         "sums": dict(pos.sums)},
            "rng": capture_rng(),
            "order_state": self.order.get_state(),
            "order_epoch_start": self._order_state,
        }

    def _save(self, name: str, pos: _Position) -> None:
        if self.recipe.output.checkpoints and self.world.is_main:
            save_checkpoint(self._state(pos), self.run_dir / name)

    def _save_last(self, pos: _Position) -> None:
        if self.world.is_main:
            save_checkpoint(self._state(pos), self.run_dir / "last.pt")
        done = pos.epoch - 1
        self._saved = (f"the state after epoch {done}" if pos.batch == 0 and done else
                       "the initial state" if pos.batch == 0 else
                       f"the state after batch {pos.batch} of epoch {pos.epoch}")

    def _restore(self, state: dict[str, Any]) -> _Position:
        exp = self.exp
        where = self.run_dir / "last.pt"
        try:
            exp.model.load_state_dict(state["model"])
            fresh = [{k: v for k, v in g.items() if k != "params"} for g in exp.optimizer.param_groups]
            exp.optimizer.load_state_dict(state["optimizer"])
            if exp.scheduler is not None and state.get("scheduler") is not None:
                exp.scheduler.load_state_dict(state["scheduler"])
            restore_rng(state["rng"])
            self.order.set_state(state["order_state"])
            self._order_state = state["order_epoch_start"]
            p = state["position"]
            pos = _Position(p["epoch"], p["batch"], p["best_acc"], p["best_epoch"],
                            p["global_step"], dict(p["sums"]))
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
            raise CheckpointError(f"{where}: does not fit the run's recipe.yaml "
                                  f"({_first_line(err)}) — resume with the recipe the run "
                                  "started with, or start a new run") from None
        saved_opt = state.get("recipe", {}).get("optimizer", {})
        self._apply_optimizer_changes(saved_opt, fresh)
        self._saved = f"the state it was resumed from (epoch {pos.epoch}, batch {pos.batch})"
        return pos

    def _apply_optimizer_changes(self, saved: dict[str, Any], fresh: list[dict[str, Any]]) -> None:
        """Hyperparameters the resume overrides changed win over the restored optimizer's."""
        changed = {k for k, v in self.recipe.optimizer.items() if saved.get(k, v) != v}
        sched = self.exp.scheduler
        for i, group in enumerate(self.exp.optimizer.param_groups):
            for key in changed & set(group):
                group[key] = fresh[i][key]
            if "lr" in changed:
                group["initial_lr"] = fresh[i]["lr"]
                if sched is not None and hasattr(sched, "base_lrs"):
                    sched.base_lrs[i] = fresh[i]["lr"]

    def _open_writer(self, step: int) -> Any:
        if not self.recipe.output.tensorboard or not self.world.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=step or None)

    def _log_epoch(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        e = row["epoch"]
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            self.writer.add_scalar(f"epoch/{key}", row[key], e)
        for name, rate in row["firing_rates"].items():
            self.writer.add_scalar(f"firing_rate/{name}", rate, e)
        for name, param in self.exp.model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), e)
        self.writer.add_image("raster/output_layer", self._raster(), e)
        self.writer.flush()

    @torch.no_grad()
    def _raster(self) -> torch.Tensor:
        """Output-layer activity of test sample 0 as an image ``[1, classes, T]`` in [0, 1]."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the picture must not shift the run's RNG
            self.exp.model.eval()
            try:
                out = forward_batch(self.exp, self.test_x[:1])[:, 0].float().T
            finally:
                self.exp.model.train()
        span = (out.max() - out.min()).clamp_min(1e-12)
        return ((out - out.min()) / span).unsqueeze(0).cpu()

    def _autocast(self) -> Any:
        use = self.recipe.train.amp and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=use) if use else _null()


def evaluate_checkpoint(path: str | Path, *, device: str | None = None,
                        registry: Registry | None = None) -> dict[str, Any]:
    """Test-set loss and accuracy of a checkpoint (a .pt file or a run folder)."""
    from snnkit.plugins.loader import get_registry

    state = load_checkpoint(path)
    recipe = load_recipe(state["recipe"], [f"train.device={device}"] if device else None)
    seed_everything(recipe.seed)
    exp = assemble(recipe, registry or get_registry())
    try:
        exp.model.load_state_dict(state["model"])
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: the weights do not fit the checkpoint's own recipe "
                              f"({_first_line(err)}) — the file is damaged or was edited") from None
    seed_everything(recipe.seed)
    xs, ys = on_device(exp.test_data, exp.device)
    loss, acc, rates = evaluate(exp, xs, ys)
    return {"checkpoint": str(path), "epoch": state["position"]["epoch"] - 1, "test_loss": loss,
            "test_acc": acc, "firing_rates": rates}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


@contextmanager
def _null() -> Iterator[None]:
    yield
