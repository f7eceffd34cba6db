"""Train and evaluate what a recipe assembles: the one training loop, checkpoints, logging.

Batches are drawn by index from datasets held in memory on the training device (one
``randperm`` per epoch from a seeded generator; no per-sample Python). Every random state
(Python, NumPy, torch CPU/CUDA, data order) is saved in ``last.pt`` after each epoch and on
SIGINT/SIGTERM, so ``--resume`` continues bit for bit where the run stopped.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snnkit import rundir
from snnkit.assemble import Experiment, assemble
from snnkit.checkpoint import load_checkpoint, save_checkpoint
from snnkit.errors import RecipeError, TrainingError
from snnkit.functional import reset_net
from snnkit.progress import Reporter, SilentReporter
from snnkit.recipe import Recipe, load_recipe
from snnkit.registry import Registry


class Interrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.exit_code = 128 + signum
        self.run_dir = run_dir


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
    from snnkit.plugins import get_registry

    registry = registry or get_registry()
    reporter = reporter or SilentReporter()
    if resume is not None:
        run_dir = Path(resume)
        state = load_checkpoint(run_dir / "last.pt")
        recipe = load_recipe(rundir.read_run_recipe(run_dir), overrides)
        exp = assemble(recipe, registry, device=device)
    else:
        if source is None:
            raise RecipeError("run: give a recipe, or --resume RUN_DIR")
        recipe = load_recipe(source, overrides)
        exp = assemble(recipe, registry, device=device)
        run_dir = rundir.new_run_dir(recipe, out)
        state = None
    rundir.write_run_info(run_dir, recipe, registry)
    return Trainer(exp, run_dir, reporter).fit(state)


class Trainer:
    """Runs the epochs of one Experiment into one run folder."""

    def __init__(self, exp: Experiment, run_dir: Path, reporter: Reporter) -> None:
        self.exp, self.run_dir, self.reporter = exp, run_dir, reporter
        self.recipe: Recipe = exp.recipe
        self.device = exp.device
        self.train_x, self.train_y = _on_device(exp.train_data, self.device)
        self.test_x, self.test_y = _on_device(exp.test_data, self.device)
        self.order = torch.Generator().manual_seed(self.recipe.seed)
        self.writer: Any = None
        self._signal: int | None = None

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, state: dict[str, Any] | None = None) -> RunResult:
        r = self.recipe
        if r.train.num_threads:
            torch.set_num_threads(r.train.num_threads)
        pos = self._restore(state) if state else self._start()
        metrics = rundir.read_metrics(self.run_dir)[: pos.epoch - 1]
        rundir.rewrite_metrics(self.run_dir, metrics)
        self.writer = self._open_writer(pos.global_step)
        try:
            with self._signals():
                for epoch in range(pos.epoch, r.train.epochs + 1):
                    row = self._epoch(pos, epoch)
                    metrics.append(row)
                    rundir.append_metrics(self.run_dir, row)
                    self.reporter.epoch_done(row)
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
        for b in range(pos.batch, batches):
            t0 = time.perf_counter()
            idx = perm[b * bs:(b + 1) * bs]
            x, y = self.train_x[idx], self.train_y[idx]
            loss, correct = self._train_step(x, y, epoch, b)
            pos.sums["seconds"] += time.perf_counter() - t0
            pos.sums["loss"] += loss * len(y)
            pos.sums["correct"] += correct
            pos.sums["seen"] += len(y)
            pos.global_step += 1
            pos.batch = b + 1
            if pos.global_step % r.train.log_every == 0 and self.writer is not None:
                self.writer.add_scalar("train/batch_loss", loss, pos.global_step)
                self.writer.add_scalar("train/batch_acc", correct / len(y), pos.global_step)
            s = pos.sums
            self.reporter.batch_done(b + 1, s["loss"] / s["seen"], s["correct"] / s["seen"],
                                     s["seen"] / max(s["seconds"], 1e-9))
            if self._signal is not None:
                self._save_last(pos)
                raise Interrupted(self._signal, self.run_dir)
        t0 = time.perf_counter()
        test_loss, test_acc, rates = self.evaluate()
        s = pos.sums
        row = {"epoch": epoch, "train_loss": s["loss"] / s["seen"], "train_acc": s["correct"] / s["seen"],
               "test_loss": test_loss, "test_acc": test_acc, "train_seconds": s["seconds"],
               "test_seconds": time.perf_counter() - t0,
               "samples_per_second": s["seen"] / max(s["seconds"], 1e-9),
               "lr": exp.optimizer.param_groups[0]["lr"], "firing_rates": rates}
        if exp.scheduler is not None:
            exp.scheduler.step()
        self._log_epoch(row)
        pos.epoch, pos.batch = epoch + 1, 0
        if test_acc > pos.best_acc:
            pos.best_acc, pos.best_epoch = test_acc, epoch
            self._save("best.pt", pos)
        self._save_last(pos)
        return row

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int, batch: int) -> tuple[float, int]:
        exp = self.exp
        exp.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.forward(x)
            loss = exp.loss(out.float(), y)
        value = loss.item()
        if not math.isfinite(value):
            lr = exp.optimizer.param_groups[0]["lr"]
            raise TrainingError(f"epoch {epoch}, batch {batch + 1}: the loss is {value} — lower "
                                f"optimizer.lr (now {lr:g}) or set train.grad_clip; last.pt holds "
                                f"the state after epoch {epoch - 1} (run folder {self.run_dir})")
        loss.backward()
        if self.recipe.train.grad_clip:
            nn.utils.clip_grad_norm_(exp.model.parameters(), self.recipe.train.grad_clip)
        exp.optimizer.step()
        with torch.no_grad():
            correct = int((predict(exp.loss, out) == y).sum())
        return value, correct

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward_batch(self.exp, x)

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """Test-set loss, accuracy and the mean firing rate of every spiking layer."""
        return evaluate(self.exp, self.test_x, self.test_y)

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
            "rng": _rng_state(),
            "order_state": self.order.get_state(),
            "order_epoch_start": getattr(self, "_order_state", self.order.get_state()),
        }

    def _save(self, name: str, pos: _Position) -> None:
        if self.recipe.output.checkpoints:
            save_checkpoint(self._state(pos), self.run_dir / name)

    def _save_last(self, pos: _Position) -> None:
        save_checkpoint(self._state(pos), self.run_dir / "last.pt")

    def _start(self) -> _Position:
        seed = self.recipe.seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        return _Position()

    def _restore(self, state: dict[str, Any]) -> _Position:
        exp = self.exp
        exp.model.load_state_dict(state["model"])
        exp.optimizer.load_state_dict(state["optimizer"])
        if exp.scheduler is not None and state.get("scheduler") is not None:
            exp.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        self.order.set_state(state["order_state"])
        self._order_state = state["order_epoch_start"]
        p = state["position"]
        return _Position(p["epoch"], p["batch"], p["best_acc"], p["best_epoch"], p["global_step"],
                         dict(p["sums"]))

    def _open_writer(self, step: int) -> Any:
        if not self.recipe.output.tensorboard:
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
        self.writer.flush()

    def _autocast(self) -> Any:
        use = self.recipe.train.amp and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=use) if use else _null()

    @contextmanager
    def _signals(self) -> Iterator[None]:
        def handler(signum: int, _frame: Any) -> None:
            self._signal = signum

        try:
            old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: no signal handling
            yield
            return
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def forward_batch(exp: Experiment, x: torch.Tensor) -> torch.Tensor:
    """Encode a batch and run the model over T steps: ``[B, *] -> [T, B, C]``.

    Multi-step models take the whole ``[T, B, *]`` sequence; single-step models are called once
    per step. Neuron state is cleared afterwards either way (``reset_net``).
    """
    seq = exp.encoder(x)
    if getattr(exp.model, "step_mode", "m") == "s":
        out = torch.stack([exp.model(seq[t]) for t in range(seq.shape[0])])
    else:
        out = exp.model(seq)
    reset_net(exp.model)
    return out


@torch.no_grad()
def evaluate(exp: Experiment, xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float, dict[str, float]]:
    """Loss, accuracy and per-layer firing rates of ``exp.model`` over ``(xs, ys)``."""
    exp.model.eval()
    rates: dict[str, list[float]] = {}
    hooks = [m.register_forward_hook(_rate_hook(name, rates))
             for name, m in exp.model.named_modules() if _is_spiking(m)]
    bs = exp.recipe.train.eval_batch_size or exp.recipe.train.batch_size
    total_loss, correct = 0.0, 0
    try:
        for i in range(0, len(ys), bs):
            x, y = xs[i:i + bs], ys[i:i + bs]
            out = forward_batch(exp, x)
            total_loss += float(exp.loss(out.float(), y)) * len(y)
            correct += int((predict(exp.loss, out) == y).sum())
    finally:
        for h in hooks:
            h.remove()
        exp.model.train()
    return total_loss / len(ys), correct / len(ys), {k: float(np.mean(v)) for k, v in rates.items()}


def predict(loss: nn.Module, out: torch.Tensor) -> torch.Tensor:
    """The loss's own ``predict`` if it has one, else the class with the highest mean output."""
    if hasattr(loss, "predict"):
        return loss.predict(out)
    return out.mean(0).argmax(-1)


def _is_spiking(module: nn.Module) -> bool:
    return hasattr(module, "surrogate") and hasattr(module, "step_mode")


def _rate_hook(name: str, rates: dict[str, list[float]]) -> Any:
    def hook(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        rates.setdefault(name, []).append(float(out.float().mean()))

    return hook


def _on_device(data: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return data.inputs.to(device), data.targets.to(device)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return _plain(state)


def _set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    """RNG states as tensors, lists and numbers only (loadable with weights_only=True)."""
    np_state = state["numpy"]
    out = dict(state)
    out["python"] = [state["python"][0], list(state["python"][1]), state["python"][2]]
    out["numpy"] = [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *[
        v.item() if hasattr(v, "item") else v for v in np_state[2:]]]
    return out


@contextmanager
def _null() -> Iterator[None]:
    yield


def evaluate_checkpoint(path: str | Path, *, device: str | None = None,
                        registry: Registry | None = None) -> dict[str, Any]:
    """Test-set loss and accuracy of a checkpoint (a .pt file or a run folder)."""
    from snnkit.plugins import get_registry

    state = load_checkpoint(path)
    recipe = load_recipe(state["recipe"])
    exp = assemble(recipe, registry or get_registry(), device=device)
    exp.model.load_state_dict(state["model"])
    torch.manual_seed(recipe.seed)
    xs, ys = _on_device(exp.test_data, exp.device)
    loss, acc, rates = evaluate(exp, xs, ys)
    return {"checkpoint": str(path), "epoch": state["position"]["epoch"] - 1, "test_loss": loss,
            "test_acc": acc, "firing_rates": rates}
