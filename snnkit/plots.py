"""PNG figures of a run folder and of surrogate functions (matplotlib, Agg backend).

- :func:`plot_run`: learning curves, per-layer firing rates over epochs, and for one test
  sample the output layer over T (spike raster, or a heat map for a non-spiking readout) and
  the membrane trace V(t) of the winning output neuron.
- :func:`plot_surrogate`: the primitive g(x) and the surrogate gradient g'(x) of a surrogate
  for several values of its shape parameter.

matplotlib is an optional dependency, imported on first use with the non-interactive Agg
backend; nothing is shown on screen.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.errors import SnnkitError

__all__ = ["plot_run", "plot_surrogate", "sample_trace"]

CURVES_FILE = "curves.png"
FIRING_RATES_FILE = "firing_rates.png"
OUTPUT_SPIKES_FILE = "output_spikes.png"
MEMBRANE_FILE = "membrane.png"
_SCALES = (0.5, 1.0, 2.0)


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - depends on the environment
        raise SnnkitError(
            "plot: the package 'matplotlib' is not installed — pip install "
            "'snnkit[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


# ============================================================================================
# run folders
# ============================================================================================
def plot_run(
    run_dir: str | Path, out_dir: str | Path | None = None, *, sample: int = 0
) -> list[Path]:
    """Write the figures of a run folder; return their paths (in the run folder by default).

    curves.png (train/test accuracy and loss per epoch), firing_rates.png (mean firing rate
    of every spiking layer per epoch, on the test set), output_spikes.png and membrane.png
    (test sample ``sample`` through the best checkpoint, else the last one).
    """
    from snnkit.engine import rundir

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SnnkitError(
            f"plot: {run_dir} is not a folder — pass a run folder written by snnkit run"
        )
    rows = rundir.read_metrics(run_dir)
    if not rows:
        raise SnnkitError(
            f"plot: {run_dir} has no {rundir.METRICS_FILE} rows yet — train at "
            "least one epoch first"
        )
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = [_plot_curves(rows, out / CURVES_FILE), _plot_rates(rows, out / FIRING_RATES_FILE)]
    trace = sample_trace(run_dir, sample)
    paths += [
        _plot_output(trace, out / OUTPUT_SPIKES_FILE),
        _plot_membrane(trace, out / MEMBRANE_FILE),
    ]
    return paths


def _plot_curves(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "test"):
        acc.plot(epochs, [r[f"{split}_acc"] for r in rows], marker="o", label=split)
        loss.plot(epochs, [r[f"{split}_loss"] for r in rows], marker="o", label=split)
    acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    loss.set(xlabel="epoch", ylabel="loss", title="loss")
    for ax in (acc, loss):
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)


def _plot_rates(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    layers: list[str] = []
    for row in rows:
        layers += [k for k in row.get("firing_rates", {}) if k not in layers]
    for layer in layers:
        points = [
            (r["epoch"], r["firing_rates"][layer])
            for r in rows
            if layer in r.get("firing_rates", {})
        ]
        ax.plot(*zip(*points), marker="o", label=f"layer {layer}")
    if layers:
        ax.legend()
    else:
        ax.text(
            0.5, 0.5, "no spiking layers recorded", ha="center", va="center", transform=ax.transAxes
        )
    ax.set(
        xlabel="epoch",
        ylabel="mean firing rate (spikes / neuron / step)",
        title="firing rate per layer (test set)",
    )
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sample_trace(run_dir: str | Path, sample: int = 0) -> dict[str, Any]:
    """Run test sample ``sample`` of a run through its checkpoint, recording the output neuron.

    Returns ``output`` ``[T, C]`` (the model's output), ``v`` ``[T, C]`` (the output neuron's
    membrane trace), ``label``, ``predicted``, ``spiking`` (whether the output neuron fires),
    ``v_threshold`` (or None), ``neuron`` (its class name) and ``checkpoint`` (file name).
    """
    from snnkit.components.functional import reset_net
    from snnkit.components.neurons import BaseNeuron, SpikingNeuron
    from snnkit.engine.evaluation import predict
    from snnkit.engine.restore import checkpoint_file, restore_experiment

    run_dir = Path(run_dir)
    checkpoint = checkpoint_file(run_dir, "best")
    exp, _ = restore_experiment(checkpoint, device="cpu")
    recipe = exp.recipe
    exp.model.eval()
    neurons = [m for m in exp.model.modules() if isinstance(m, BaseNeuron)]
    if not neurons:
        raise SnnkitError(f"plot: the model of {run_dir} has no neuron module to record")
    neuron = neurons[-1]
    n = len(exp.test_data.targets)
    if not 0 <= sample < n:
        raise SnnkitError(f"plot: sample must be in 0..{n - 1} (test-set index), got {sample}")
    x = torch.as_tensor(exp.test_data[sample][0]).unsqueeze(0)
    label = int(exp.test_data.targets[sample])
    torch.manual_seed(recipe.seed)
    recorded: list[torch.Tensor | None] = [None]  # the trace so far, kept before the reset
    hook = neuron.register_forward_hook(
        lambda module, _i, _o: recorded.__setitem__(0, module.v_seq)
    )
    neuron.record_v = True
    try:
        with torch.no_grad():
            out = exp.forward_module(x)  # the time loop of training, in the model's step mode
            predicted = int(predict(exp.loss, out)[0])
    finally:
        hook.remove()
        neuron.record_v = False
        reset_net(exp.model)
    v = recorded[0]
    if v is None:  # pragma: no cover - every BaseNeuron records when record_v is set
        raise SnnkitError(f"plot: the output neuron {type(neuron).__name__} recorded no voltage")
    spiking = isinstance(neuron, SpikingNeuron)
    return {
        "output": out[:, 0].reshape(out.shape[0], -1).float(),
        "v": v[:, 0].reshape(v.shape[0], -1).float(),
        "label": label,
        "predicted": predicted,
        "spiking": spiking,
        "v_threshold": neuron.v_threshold if spiking else None,
        "neuron": type(neuron).__name__,
        "checkpoint": checkpoint.name,
        "sample": sample,
    }


def _plot_output(trace: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    out: torch.Tensor = trace["output"]
    steps, classes = out.shape
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * classes + 1.5)))
    title = (
        f"output layer, test sample {trace['sample']} (label {trace['label']}, "
        f"predicted {trace['predicted']}, {trace['checkpoint']})"
    )
    if trace["spiking"]:
        times = [torch.nonzero(out[:, c] > 0).flatten().tolist() for c in range(classes)]
        colors = ["C3" if c == trace["predicted"] else "C0" for c in range(classes)]
        ax.eventplot(times, lineoffsets=list(range(classes)), linelengths=0.8, colors=colors)
        ax.set(xlim=(-0.5, steps - 0.5), ylim=(-0.5, classes - 0.5))
        if not any(times):
            ax.text(
                0.5,
                0.5,
                "no output spikes",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
            )
        ax.set_title("spike raster of the " + title, fontsize=9)
    else:
        image = ax.imshow(
            out.T.numpy(),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            extent=(-0.5, steps - 0.5, -0.5, classes - 0.5),
        )
        fig.colorbar(image, ax=ax, label=f"{trace['neuron']} output (membrane potential)")
        ax.set_title(f"{trace['neuron']} readout of the " + title, fontsize=9)
    ax.set(xlabel="time step t", ylabel="output neuron")
    ax.set_yticks(range(classes))
    ax.xaxis.set_major_locator(_integer_ticks())
    return _save(fig, path)


def _plot_membrane(trace: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    winner = trace["predicted"]
    v = trace["v"][:, winner].numpy()
    steps = list(range(len(v)))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(steps, v, marker=".", label=f"V(t) of neuron {winner} (after reset)")
    if trace["spiking"]:
        ax.axhline(trace["v_threshold"], color="C3", linestyle="--", label="V_threshold")
        fired = torch.nonzero(trace["output"][:, winner] > 0).flatten().tolist()
        if fired:
            ax.plot(fired, [trace["v_threshold"]] * len(fired), "v", color="C3", label="spike")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set(
        xlabel="time step t",
        ylabel="membrane potential",
        title=f"{trace['neuron']} membrane of the winning neuron {winner} "
        f"(test sample {trace['sample']}, label {trace['label']})",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


# ============================================================================================
# surrogates
# ============================================================================================
def plot_surrogate(
    surrogate: Callable[..., nn.Module] | str,
    out: str | Path,
    values: Sequence[float] | None = None,
    *,
    x_range: float = 2.0,
) -> Path:
    """Plot g(x) (with Θ) and g'(x) of a surrogate class or registered name into a PNG.

    The curves are drawn for ``values`` of its shape parameter (the first parameter besides
    ``spiking``, e.g. alpha), by default 0.5×, 1× and 2× its default (values the class
    rejects are skipped); a surrogate without one gets a single curve.
    """
    plt = _pyplot()
    cls, label = _surrogate_class(surrogate)
    param, default = _shape_parameter(cls)
    if param is None:
        instances = [(label, cls(spiking=False))]
    else:
        if values is None:
            values = [default * s for s in _SCALES] if isinstance(default, (int, float)) else []
        instances = []
        for value in values:
            try:
                instances.append((f"{param}={value:g}", cls(**{param: value}, spiking=False)))
            except ValueError:
                continue
        if not instances:
            raise SnnkitError(
                f"plot: no valid {param} among {list(values)} for surrogate "
                f"'{label}' — pass values it accepts"
            )
    x = torch.linspace(-x_range, x_range, 801, dtype=torch.float64)
    fig, (prim, grad) = plt.subplots(1, 2, figsize=(10, 4))
    prim.plot(x, (x >= 0).double(), color="k", linestyle="--", linewidth=1, label="Θ(x)")
    for name, s in instances:
        with torch.no_grad():
            prim.plot(x, s.primitive(x), label=name)
            grad.plot(x, s.derivative(x), label=name)
    prim.set(xlabel="x = H − V_threshold", ylabel="g(x)", title=f"{label}: primitive g(x)")
    grad.set(
        xlabel="x = H − V_threshold", ylabel="g'(x)", title=f"{label}: surrogate gradient g'(x)"
    )
    for ax in (prim, grad):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


def _surrogate_class(surrogate: Callable[..., nn.Module] | str) -> tuple[Any, str]:
    if isinstance(surrogate, str):
        from snnkit.plugins.loader import get_registry
        from snnkit.plugins.registry import Kind

        component = get_registry().get(Kind.SURROGATE, surrogate)
        return component.factory, component.name
    if not callable(surrogate):
        raise SnnkitError(f"plot: expected a surrogate class or name, got {surrogate!r}")
    return surrogate, getattr(surrogate, "__name__", str(surrogate))


def _shape_parameter(cls: Any) -> tuple[str | None, Any]:
    """The first parameter besides ``spiking`` and its default (None, None if there is none)."""
    for p in inspect.signature(cls).parameters.values():
        if p.name == "spiking" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else p.default
        if isinstance(default, (int, float)) and not math.isfinite(default):
            default = None
        return p.name, default
    return None, None
