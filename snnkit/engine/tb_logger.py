"""TensorBoard logging of a run: batch scalars, per-epoch scalars, weight histograms, a raster.

Written to ``<run folder>/tensorboard`` by the main process when ``output.tensorboard`` is on
(:func:`open_log` returns None otherwise). A resumed run purges the events after its
``global_step`` so the curves continue without duplicates. Per epoch: ``epoch/{train_loss,
train_acc, test_loss, test_acc, lr}``, ``firing_rate/<layer>``, ``costs/<layer>/<key>`` and
``costs/total/<key>`` (:func:`cost_scalars`), ``loss/<part>`` (:func:`loss_scalars`),
``weights/<parameter>`` histograms and ``raster/output_layer``: the output activity of test
sample 0 over time as an image ``[1, classes, T]`` scaled to [0, 1] (drawn under a forked RNG,
so logging does not change the run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snnkit.assembly.assemble import Experiment
from snnkit.assembly.forward import EncodedForward


class TensorBoardLog:
    """One run's TensorBoard writer."""

    def __init__(self, run_dir: Path, purge_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step or None)

    def batch(self, step: int, loss: float, correct: torch.Tensor, size: int) -> None:
        """``train/batch_loss`` and ``train/batch_acc`` at global step ``step``."""
        self.writer.add_scalar("train/batch_loss", loss, step)
        self.writer.add_scalar("train/batch_acc", int(correct) / size, step)

    def epoch(self, row: dict[str, Any], exp: Experiment, test_x: torch.Tensor) -> None:
        """An epoch's metrics ``row``, the weights and the raster of ``test_x[:1]``."""
        e = row["epoch"]
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            self.writer.add_scalar(f"epoch/{key}", row[key], e)
        for name, rate in row["firing_rates"].items():
            self.writer.add_scalar(f"firing_rate/{name}", rate, e)
        for tag, value in cost_scalars(row.get("costs")):
            self.writer.add_scalar(tag, value, e)
        for tag, value in loss_scalars(row):
            self.writer.add_scalar(tag, value, e)
        for name, param in exp.model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), e)
        self.writer.add_image("raster/output_layer", raster(exp, test_x[:1]), e)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def cost_scalars(costs: dict[str, Any] | None) -> list[tuple[str, float]]:
    """TensorBoard tags of a metrics row's ``costs`` (per test sample):
    ``costs/<layer>/<key>`` for each layer (its label with spaces as ``_``, e.g.
    ``costs/model.layers[1]_linear/sops``) and ``costs/total/<key>``, for the keys rate,
    silent, sops, macs, energy_pj and params that have a value."""
    if not costs:
        return []
    rows = [(r["layer"].replace(" ", "_"), r) for r in costs["layers"]]
    rows.append(("total", costs["totals"]))
    return [
        (f"costs/{label}/{key}", float(row[key]))
        for label, row in rows
        for key in ("rate", "silent", "sops", "macs", "energy_pj", "params")
        if row.get(key) is not None
    ]


def loss_scalars(row: dict[str, Any]) -> list[tuple[str, float]]:
    """``loss/<part>`` for each part of a composed loss (``train_loss_parts``), beside
    ``epoch/train_loss``, their sum."""
    return [(f"loss/{k}", float(v)) for k, v in (row.get("train_loss_parts") or {}).items()]


def open_log(run_dir: Path, purge_step: int, *, enabled: bool) -> TensorBoardLog | None:
    """A :class:`TensorBoardLog` for ``run_dir``, or None when logging is off."""
    return TensorBoardLog(run_dir, purge_step) if enabled else None


@torch.no_grad()
def raster(exp: Experiment, x: torch.Tensor) -> torch.Tensor:
    """Output-layer activity of one sample ``x [1, *]`` as an image ``[1, classes, T]`` in [0, 1].

    Runs the dense path (encoder, then the model), under a forked RNG.
    """
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the picture must not shift the run's RNG
        exp.model.eval()
        try:
            out = EncodedForward.dense(exp.encoder, exp.model)(x)[:, 0].float().T
        finally:
            exp.model.train()
    span = (out.max() - out.min()).clamp_min(1e-12)
    return ((out - out.min()) / span).unsqueeze(0).cpu()
