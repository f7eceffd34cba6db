"""Plots: a tiny real run folder yields valid, non-empty PNG files; surrogate figures too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("matplotlib")

import snnkit
from snnkit.components.surrogates import FastSigmoid, Sigmoid, StraightThrough
from snnkit.errors import SnnkitError
from snnkit.plots import (
    _plot_output,
    _shape_parameter,
    plot_run,
    plot_surrogate,
    sample_trace,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return (
        len(data) > 1000
        and data.startswith(PNG_SIGNATURE)
        and data.rstrip().endswith(b"IEND\xaeB`\x82")
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    recipe = {
        "seed": 0,
        "time_steps": 4,
        "dataset": {"name": "synthetic", "num_samples": 32, "shape": [1, 6, 6], "num_classes": 4},
        "encoder": "poisson",
        "model": {
            "name": "sequential",
            "layers": [
                "flatten",
                {"name": "linear", "in_features": 36, "out_features": 12},
                {"name": "lif", "v_threshold": 0.5},
                {"name": "linear", "in_features": 12, "out_features": 4},
                {"name": "lif", "v_threshold": 0.5},
            ],
        },
        "loss": "mse_rate",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 8, "max_batches": 2, "device": "cpu"},
        "output": {"dir": str(out), "tensorboard": False},
    }
    return snnkit.run(recipe).run_dir


def test_plot_run_writes_png_files_into_the_run_folder(run_dir: Path) -> None:
    paths = plot_run(run_dir)
    names = sorted(p.name for p in paths)
    assert names == ["curves.png", "firing_rates.png", "membrane.png", "output_spikes.png"]
    for path in paths:
        assert path.parent == run_dir and _is_png(path), path


def test_plot_run_honours_out_dir(run_dir: Path, tmp_path: Path) -> None:
    paths = plot_run(run_dir, tmp_path / "figs", sample=3)
    assert len(paths) == 4 and all(p.parent == tmp_path / "figs" and _is_png(p) for p in paths)


def test_sample_trace_records_the_output_neuron(run_dir: Path) -> None:
    trace = sample_trace(run_dir, 0)
    assert trace["output"].shape == (4, 4) and trace["v"].shape == (4, 4)
    assert trace["spiking"] and trace["v_threshold"] == 0.5 and trace["neuron"] == "LIF"
    assert trace["checkpoint"] == "best.pt"
    # V(t) is recorded after reset: a step that spiked leaves V = V_reset = 0 exactly.
    spiked = trace["output"] > 0
    assert torch.all(trace["v"][spiked] == 0)
    with pytest.raises(SnnkitError, match="sample must be in 0..31"):
        sample_trace(run_dir, 32)


def test_sample_trace_of_a_single_step_model_matches_multi_step(
    run_dir: Path, tmp_path: Path
) -> None:
    """The trace runs through the engine's time loop in either step mode, with equal results."""
    import shutil

    single = tmp_path / "single"
    shutil.copytree(run_dir, single)
    for name in ("best.pt", "last.pt"):
        if (single / name).exists():
            state = torch.load(single / name, weights_only=False)
            state["recipe"]["model"]["step_mode"] = "s"
            torch.save(state, single / name)
    multi, one = sample_trace(run_dir, 5), sample_trace(single, 5)
    assert torch.equal(multi["output"], one["output"])
    torch.testing.assert_close(multi["v"], one["v"])  # fused vs reference kernel: rounding
    assert multi["predicted"] == one["predicted"]


def test_plot_run_refuses_a_folder_without_metrics(tmp_path: Path) -> None:
    with pytest.raises(SnnkitError, match="no metrics.jsonl rows"):
        plot_run(tmp_path)


def test_non_spiking_readout_is_drawn_as_a_heat_map(tmp_path: Path) -> None:
    trace = {
        "output": torch.randn(5, 3),
        "v": torch.randn(5, 3),
        "label": 1,
        "predicted": 2,
        "spiking": False,
        "v_threshold": None,
        "neuron": "LI",
        "checkpoint": "last.pt",
        "sample": 0,
    }
    assert _is_png(_plot_output(trace, tmp_path / "readout.png"))


@pytest.mark.parametrize("surrogate", [Sigmoid, "atan", "q_pseudo_spike", StraightThrough])
def test_plot_surrogate_writes_a_png(surrogate, tmp_path: Path) -> None:
    path = plot_surrogate(surrogate, tmp_path / "sub" / "surrogate.png")
    assert _is_png(path)


def test_plot_surrogate_explicit_values_and_refusals(tmp_path: Path) -> None:
    assert _is_png(plot_surrogate(FastSigmoid, tmp_path / "fs.png", values=[5, 25]))
    with pytest.raises(SnnkitError, match="no valid alpha"):
        plot_surrogate("sigmoid", tmp_path / "bad.png", values=[-1.0])
    with pytest.raises(SnnkitError, match="unknown surrogate"):
        plot_surrogate("sigmoidd", tmp_path / "bad.png")


def test_shape_parameter_is_the_first_non_spiking_parameter() -> None:
    assert _shape_parameter(Sigmoid) == ("alpha", 4.0)
    assert _shape_parameter(FastSigmoid) == ("slope", 25.0)
    assert _shape_parameter(StraightThrough) == (None, None)
