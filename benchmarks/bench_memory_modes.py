"""Memory and time per training batch of each ``train.memory`` mode beside ``full``, same run.

    python benchmarks/bench_memory_modes.py                          # zoo VGG-11, T=16, batch 32
    python benchmarks/bench_memory_modes.py --width 16 --batch 8     # a narrower VGG
    python benchmarks/bench_memory_modes.py --net rsnn --steps 784   # recurrent sMNIST network
    python benchmarks/bench_memory_modes.py --net mlp --steps 4 16 64 --modes full online

Networks: ``vgg`` is the zoo's ``spiking_vgg`` (depth 11, conv3×3-BN-LIF with five max pools,
global average pool, linear; ``--width`` 64 is the full VGG-11) on 3×32×32 direct input;
``rsnn`` is the model of ``recipes/rsnn_psmnist.yaml`` (two real ``recurrent`` layers of ALIF,
64 and 256, all-to-all, LI readout; one pixel per step; ``--rsnn-neuron lif`` swaps in LIF,
which the fused recurrent kernel runs); ``mlp`` a small feed-forward net.

Per mode: activation memory counted exactly (the peak of the bytes autograd keeps saved for
backward, ``torch.autograd.graph.saved_tensors_hooks`` in
:class:`snnkit.assembly.memory.meter.SavedTensorMeter`, recomputed segments included), the peak
resident set size above the one before the batch (sampled every 2 ms from ``/proc/self/statm``;
memory the allocator kept from an earlier batch does not show, so run one mode per process,
``--modes checkpoint``, for its own figure: the process's peak RSS is printed at the end),
on CUDA ``torch.cuda.max_memory_allocated``, and the median time of forward + backward over
``--repeats`` rounds after a warm-up; the modes run alternately within each round, so a load
change hits them alike. With SpikingJelly 2.0 importable (run this script with its Python),
the same VGG built from SpikingJelly layers runs in full and under ``memopt.optimize_memory``
(level 1: every conv-BN-LIF block checkpointed, spike inputs compressed).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnkit.assembly.assemble import make_builder
from snnkit.assembly.forward import EncodedForward
from snnkit.assembly.memory.meter import SavedTensorMeter
from snnkit.assembly.memory.norm_neuron import RECOMPUTE_MACS
from snnkit.assembly.memory.segmented import SegmentedForward, SegmentPlan, default_segment
from snnkit.components import layers as L
from snnkit.components import neurons as N
from snnkit.components.zoo import SpikingVGG
from snnkit.plugins.loader import get_registry
from snnkit.recipes.loader import load_recipe
from snnkit.registry import Kind

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def zoo_vgg11(width: int) -> nn.Sequential:
    """The zoo's spiking VGG-11 with LIF neurons (conv-BN-LIF), ``width`` channels first."""
    return SpikingVGG(make_builder(get_registry()), depth=11, width=width)


def rsnn(neuron: str) -> nn.Module:
    """The model of ``recipes/rsnn_psmnist.yaml`` (``neuron``: ``alif`` as there, or ``lif``)."""
    overrides = [] if neuron == "alif" else [f"model.neuron={{name: {neuron}, tau: 20.0}}"]
    recipe = load_recipe(RECIPES / "rsnn_psmnist.yaml", overrides)
    registry = get_registry()
    return registry.build(Kind.MODEL, recipe.model, at="model", build=make_builder(registry))


def mlp() -> nn.Sequential:
    return nn.Sequential(
        L.Linear(1, 256), N.LIF(), L.Linear(256, 256), N.LIF(), L.Linear(256, 10), N.LI()
    )


class Repeat(nn.Module):
    """Direct input: the same frame at every step, ``[B, *] -> [T, B, *]``."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.steps, *x.shape).contiguous()


class Pixels(nn.Module):
    """One pixel per step: ``[B, T] -> [T, B, 1]`` (the ``sequence`` encoder, flattened)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.t().unsqueeze(-1).contiguous()


class PeakRSS:
    """The peak resident set size above the one at entry, sampled every 2 ms (Linux)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss() - self._base)

    def __enter__(self) -> PeakRSS:
        self._base = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss() - self._base)


def one_batch(fwd: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, x: torch.Tensor):
    """(saved bytes peak, RSS peak, seconds) of one forward + backward."""
    model.zero_grad(set_to_none=True)
    if x.is_cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as rss:
        start = time.perf_counter()
        with SavedTensorMeter(model.parameters()) as meter:
            fwd(x).float().pow(2).mean().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        sec = time.perf_counter() - start
    return meter.peak, rss.peak, sec


def run_modes(
    modes: dict[str, tuple[Any, nn.Module]], x: torch.Tensor, repeats: int, inner: int = 1
) -> None:
    """Warm each mode up, then ``repeats`` rounds of all modes in turn, each mode ``inner``
    batches in a row of which the last counts (as in training, where one mode runs batch
    after batch and finds the memory its previous batch freed); print one row each."""
    results: dict[str, list[tuple[int, int, float]]] = {name: [] for name in modes}
    for fwd, model in modes.values():
        one_batch(fwd, model, x)
    for _ in range(repeats):
        for name, (fwd, model) in modes.items():
            for _ in range(inner - 1):
                one_batch(fwd, model, x)
            results[name].append(one_batch(fwd, model, x))
    base = None
    print(f"{'mode':<26}{'act. MiB':>10}{'vs full':>9}{'RSS MiB':>9}{'s/batch':>9}{'vs full':>9}")
    for name, rows in results.items():
        saved = max(r[0] for r in rows)
        rss = max(r[1] for r in rows)
        sec = statistics.median(r[2] for r in rows)
        if base is None or name.startswith("SJ full"):
            base = (saved, sec)
        print(
            f"{name:<26}{saved / 2**20:>10.1f}{base[0] / max(saved, 1):>8.1f}x"
            f"{rss / 2**20:>9.0f}{sec:>9.3f}{sec / base[1]:>8.2f}x  "
            f"(times: {', '.join(f'{r[2]:.2f}' for r in rows)})"
        )


def profile_modes(modes: dict[str, tuple[Any, nn.Module]], x: torch.Tensor, rows: int) -> None:
    """One batch of each mode under ``torch.profiler``: the ops with the most self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    for name, (fwd, model) in modes.items():
        one_batch(fwd, model, x)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            one_batch(fwd, model, x)
        print(f"-- {name}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def snnkit_modes(
    model: nn.Module,
    enc: nn.Module,
    steps: int,
    wanted: list[str],
    segment: int | None,
    recompute_macs: int = RECOMPUTE_MACS,
) -> dict[str, tuple[Any, nn.Module]]:
    """``wanted`` modes by name; ``checkpoint:L`` is checkpoint with segments of L steps (plain
    ``checkpoint``: ``segment``, default ⌈√T⌉), so several lengths run in the same rounds."""
    out: dict[str, tuple[Any, nn.Module]] = {}
    for m in wanted:
        name, _, length_text = m.partition(":")
        if name == "full":
            out[m] = (EncodedForward.dense(enc, model), model)
        elif name == "online":
            plan = SegmentPlan("online", 1, recompute_macs)
            out[m] = (SegmentedForward(enc, model, plan), model)
        elif name == "checkpoint":
            length = int(length_text) if length_text else segment or default_segment(steps)
            plan = SegmentPlan("checkpoint", length, recompute_macs)
            out[f"checkpoint L={length}"] = (SegmentedForward(enc, model, plan), model)
        else:
            raise SystemExit(f"unknown mode {m!r}: full, checkpoint[:L] or online")
    return out


def sj_modes(width: int, steps: int, x: torch.Tensor) -> dict[str, tuple[Any, nn.Module]]:
    """SpikingJelly's VGG-11 (same layers as the zoo's) in full and under memopt level 1; {}
    when SpikingJelly 2.0 with memopt is not importable."""
    try:
        from spikingjelly.activation_based import functional, layer, memopt, neuron
    except ImportError:
        return {}

    class Block(nn.Sequential):
        pass

    def build() -> nn.Sequential:
        blocks: list[nn.Module] = []
        c_in = 3
        for item in [1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"]:
            if item == "M":
                blocks.append(layer.MaxPool2d(2, step_mode="m"))
                continue
            c = width * int(item)
            blocks.append(
                Block(
                    layer.Conv2d(c_in, c, 3, padding=1, bias=False, step_mode="m"),
                    layer.BatchNorm2d(c, step_mode="m"),
                    neuron.LIFNode(tau=2.0, step_mode="m"),
                )
            )
            c_in = c
        blocks += [
            layer.AdaptiveAvgPool2d(1, step_mode="m"),
            layer.Flatten(step_mode="m"),
            layer.Linear(c_in, 10, step_mode="m"),
        ]
        return nn.Sequential(*blocks)

    enc = Repeat(steps)

    def forward_of(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def fwd(inp: torch.Tensor) -> torch.Tensor:
            functional.reset_net(net)
            return net(enc(inp))

        return fwd

    torch.manual_seed(0)
    full = build().to(x.device).train()
    opt = build().to(x.device).train()
    opt.load_state_dict(full.state_dict())
    memopt.optimize_memory(
        opt, Block, lambda m: forward_of(m)(x[:2]), level=1, checkpoint_budget="memory"
    )
    return {"SJ full": (forward_of(full), full), "SJ memopt level 1": (forward_of(opt), opt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=["vgg", "rsnn", "mlp"], default="vgg")
    ap.add_argument("--steps", type=int, nargs="+", default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--width", type=int, default=64, help="VGG channels of the first block")
    ap.add_argument("--rsnn-neuron", choices=["alif", "lif"], default="alif")
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["full", "checkpoint", "online"],
        help="full, checkpoint (checkpoint:L for segments of L steps), online",
    )
    ap.add_argument("--segment", type=int, default=None, help="checkpoint segment (default √T)")
    ap.add_argument(
        "--recompute-macs",
        type=int,
        default=RECOMPUTE_MACS,
        help="train.recompute_macs: convolutions on spikes with C_in·k_h·k_w up to this are "
        "recomputed in backward from their input bits (default %(default)s)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--inner", type=int, default=2, help="batches of one mode in a row per round (last counts)"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-sj", action="store_true", help="skip SpikingJelly even if importable")
    ap.add_argument("--profile", type=int, default=0, help="print the top N ops of each mode")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    steps_list = args.steps or {"vgg": [16], "rsnn": [784], "mlp": [4, 16, 64]}[args.net]
    batch = args.batch or {"vgg": 32, "rsnn": 128, "mlp": 32}[args.net]
    torch.manual_seed(0)
    if args.net == "vgg":
        model = zoo_vgg11(args.width)
    elif args.net == "rsnn":
        model = rsnn(args.rsnn_neuron)
    else:
        model = mlp()
    model = model.to(dev).train()
    print(
        f"{args.net} (width {args.width}) batch {batch}, {dev}, threads {torch.get_num_threads()},"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    for steps in steps_list:
        if args.net == "vgg":
            x, enc = torch.rand(batch, 3, 32, 32, device=dev) * 2, Repeat(steps)
        elif args.net == "rsnn":
            x, enc = torch.rand(batch, steps, device=dev), Pixels()
        else:
            x, enc = torch.rand(batch, 1, device=dev) * 2, Repeat(steps)
        print(f"T = {steps}")
        modes = snnkit_modes(model, enc, steps, args.modes, args.segment, args.recompute_macs)
        if args.net == "vgg" and not args.no_sj:
            sj = sj_modes(args.width, steps, x)
            if not sj:
                print("SpikingJelly memopt: not importable here (no SpikingJelly 2.0)")
            modes.update(sj)
        if args.profile:
            profile_modes(modes, x, args.profile)
        else:
            run_modes(modes, x, args.repeats, args.inner)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
    print(f"process peak RSS: {peak:.0f} MiB (all modes above)")


if __name__ == "__main__":
    main()
